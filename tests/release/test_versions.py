# SPDX-License-Identifier: MIT
"""Versions: __version__ is the one source, CHANGELOG.md and debian/changelog agree with it, and
scripts/version.py stamps every commit (and every changed tree) with its own version, in Debian's and
SemVer's spelling, below the release it leads to.
"""

from __future__ import annotations

import email.utils
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.utils.version import SemanticVersion
from sendmail_shim import __version__

REPO = Path(__file__).resolve().parents[2]


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


version_py = load("version", REPO / "scripts/version.py")
debian_version = load("debian_version", REPO / "filter_plugins/debian_version.py")


def changelog_sections() -> list[tuple[str, str]]:
    """(version, date or "unreleased") of each CHANGELOG.md section, in the file's order."""
    text = (REPO / "CHANGELOG.md").read_text()
    return re.findall(r"^## (\S+) - (unreleased|\d{4}-\d{2}-\d{2})$", text, re.MULTILINE)


def debian_entries() -> list[tuple[str, str]]:
    """(version, date or "unreleased") of each debian/changelog entry, in the file's order."""
    text = (REPO / "debian/changelog").read_text()
    heads = re.findall(r"^sendmail-shim \(([^)]+)\) ([^;]+);", text, re.MULTILINE)
    dates = re.findall(r"^ -- .+?  (.+)$", text, re.MULTILINE)
    assert len(heads) == len(dates)
    return [
        (
            version,
            "unreleased"
            if suite == "UNRELEASED"
            else email.utils.parsedate_to_datetime(date).date().isoformat(),
        )
        for (version, suite), date in zip(heads, dates)
    ]


def test_changelogs_agree_with_each_other_and_with_the_version():
    sections = changelog_sections()
    assert sections, "CHANGELOG.md has no `## VERSION - DATE` section"
    assert debian_entries() == sections
    assert sections[0][0] == __version__
    assert version_py.declared_version() == __version__
    versions = [v for v, _ in sections]
    for newer, older in zip(versions, versions[1:]):
        assert debian_version.compare_versions(newer, older) > 0, f"{newer} is not above {older}"
    for version, _date in sections:
        assert f"Release notes: CHANGELOG.md, section {version}." in (REPO / "debian/changelog").read_text()


@pytest.mark.parametrize(
    ("debian", "semantic"),
    [
        ("1.2.0~dev5+g1a2b3c4", "1.2.0-dev.5+g1a2b3c4"),
        ("1.2.0~dev5+g1a2b3c4+dirty0a1b2c3d", "1.2.0-dev.5+g1a2b3c4.dirty0a1b2c3d"),
        ("1.2.0", "1.2.0"),
    ],
)
def test_semver_spelling(debian, semantic):
    assert version_py.semver(debian) == semantic
    SemanticVersion(semantic)  # ansible-galaxy's parser takes it


def test_semver_refuses_what_it_cannot_spell():
    with pytest.raises(ValueError, match="neither"):
        version_py.semver("1.2~beta")


def test_development_versions_sort_between_the_last_release_and_the_next_in_both_spellings():
    ordered = [
        "1.1.0",
        version_py.dev_version("1.2.0", 5, "1a2b3c4"),
        version_py.dev_version("1.2.0", 5, "1a2b3c4", "0a1b2c3d"),
        version_py.dev_version("1.2.0", 6, "9f8e7d6"),
        "1.2.0",
    ]
    for older, newer in zip(ordered, ordered[1:]):
        assert debian_version.compare_versions(older, newer) < 0, (older, newer)
        if shutil.which("dpkg"):
            subprocess.run(["dpkg", "--compare-versions", older, "lt", newer], check=True)
    # SemVer ignores build metadata: the dirty build ties with its commit's, and both stay below 1.2.0.
    semantic = [SemanticVersion(version_py.semver(v)) for v in ordered]
    assert semantic[0] < semantic[1] == semantic[2] < semantic[3] < semantic[4]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    """A repository with scripts/version.py and a __version__ of 1.2.0, two commits, no tag."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts/version.py", tmp_path / "scripts/version.py")
    init = tmp_path / "files/sendmail_shim/__init__.py"
    init.parent.mkdir(parents=True)
    init.write_text('__version__ = "1.2.0"\n')
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "one")
    (tmp_path / "README").write_text("two\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "two")
    return tmp_path


def stamp(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(repo / "scripts/version.py"), *args], capture_output=True, text=True, check=check
    )


def test_each_commit_and_each_changed_tree_has_its_own_version(repo):
    head = git(repo, "rev-parse", "--short=7", "HEAD")
    assert stamp(repo).stdout == f"1.2.0~dev2+g{head}\n"
    assert stamp(repo, "--semver").stdout == f"1.2.0-dev.2+g{head}\n"
    assert stamp(repo, "--release").stdout == "1.2.0\n"

    (repo / "README").write_text("changed\n")
    first = stamp(repo).stdout
    assert re.fullmatch(rf"1\.2\.0~dev2\+g{head}\+dirty[0-9a-f]{{8}}\n", first)
    (repo / "README").write_text("changed again\n")
    assert stamp(repo).stdout not in (first, f"1.2.0~dev2+g{head}\n")
    (repo / "README").write_text("two\n")
    (repo / "new-file").write_text("untracked\n")
    assert "+dirty" in stamp(repo).stdout

    refused = stamp(repo, "--release", check=False)
    assert refused.returncode != 0 and refused.stdout == ""
    assert "a release is built from a committed tree" in refused.stderr


def test_the_count_starts_again_at_a_release_tag(repo):
    git(repo, "tag", "v1.1.0", "HEAD~1")
    head = git(repo, "rev-parse", "--short=7", "HEAD")
    assert stamp(repo).stdout == f"1.2.0~dev1+g{head}\n"


def test_outside_a_checkout_the_version_is_refused_with_the_reason(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts/version.py", tmp_path / "scripts/version.py")
    init = tmp_path / "files/sendmail_shim/__init__.py"
    init.parent.mkdir(parents=True)
    init.write_text('__version__ = "1.2.0"\n')
    refused = stamp(tmp_path, check=False)
    assert refused.returncode != 0
    assert "is not a git checkout" in refused.stderr


@pytest.mark.parametrize(
    ("make_args", "command"),
    [
        (["package"], "scripts/build-package.sh"),
        (["package", "ARCH=arm64"], "scripts/build-package.sh --arch arm64"),
        (["package", "RELEASE=1"], "scripts/build-package.sh --release"),
        (["collection", "RELEASE=1"], ".venv/bin/python scripts/build-collection.py --release"),
    ],
)
def test_make_passes_the_architecture_and_the_release_switch(make_args, command):
    # What the README tells a user to type; ARCH and RELEASE in the environment do not count.
    env = {**os.environ, "ARCH": "x86_64", "RELEASE": "1"} if make_args == ["package"] else dict(os.environ)
    printed = subprocess.run(
        ["make", "-n", "-s", "-C", str(REPO), *make_args], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert " ".join(printed.split()).endswith(command)
