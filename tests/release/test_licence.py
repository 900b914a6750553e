# SPDX-License-Identifier: MIT
"""One licence, MIT, said the same way everywhere: LICENSE (its one home), debian/copyright, the role's
meta, the collection's metadata and an SPDX header in every tracked file that takes comments. Any other
licence string anywhere in the tracked files fails.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SPDX = "SPDX-License-Identifier: MIT"
# How each kind of file spells a comment line, by name and then by suffix.
COMMENT_BY_NAME = {
    "Makefile": "#",
    "rules": "#",
    "control": "#",
    "run": "#",
    ".gitignore": "#",
    ".yamllint": "#",
    ".ansible-lint": "#",
}
COMMENT_BY_SUFFIX = {
    ".py": "#",
    ".sh": "#",
    ".yml": "#",
    ".yaml": "#",
    ".in": "#",
    ".hcl": "#",
    ".toml": "#",
    ".cfg": "#",
    ".conf": "#",
    ".lintian-overrides": "#",
    ".c": "/*",
    ".h": "/*",
    ".md": "<!--",
    ".j2": "{#",
}
# bootstrap.sh rebuilds the shared venv whenever this file changes: its header waits for the next change
# of the pinned tools.
HEADER_PENDING = {"requirements-dev.txt"}
# Names of other licences, in the forms they are written; this file is the one place that names them.
OTHER_LICENCES = re.compile(
    r"\b(?:A|L)?GPL|General Public License|Apache[- ]|BSD-\d|Mozilla Public|MPL-\d|ISC License|"
    r"Unlicense|CC-BY|CC0|Artistic License|all rights reserved",
    re.IGNORECASE,
)
# A licence field of any metadata format (YAML, JSON, DEP-5); LICENSE in capitals is the file's name.
# The name of an ansible-test check that the collection waives (scripts/build-collection.py): not a licence.
WAIVED_CHECK = "missing-gplv3-license"
LICENCE_FIELD = re.compile(r"""^\s*["']?[Ll]icen[sc]e["']?\s*[:=]\s*(?P<value>.+)$""", re.MULTILINE)
SPDX_FIELD = re.compile(r"SPDX-License-Identifier:\s*(?P<value>[^\s*>#`]+)")


def tracked_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    paths = [REPO / name for name in names if name]
    return [p for p in paths if p.is_file() and not p.is_symlink()]


def comment_marker(path: Path) -> str | None:
    return COMMENT_BY_NAME.get(path.name) or COMMENT_BY_SUFFIX.get(path.suffix)


def test_licence_file_is_mit():
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) ")
    assert "Permission is hereby granted, free of charge, to any person obtaining a copy" in text


def test_debian_copyright_is_dep5_with_the_licence_text():
    text = (REPO / "debian/copyright").read_text()
    assert text.startswith("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n")
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    files = next(p for p in paragraphs if p.startswith("Files: *\n"))
    assert "\nLicense: MIT" in files
    standalone = next(p for p in paragraphs if p.startswith("License: MIT\n"))
    body = [line[1:] if line != " ." else "" for line in standalone.splitlines()[1:]]
    licence = (REPO / "LICENSE").read_text().split("\n\n", 2)[2]
    assert "\n".join(body) + "\n" == licence


def test_role_and_collection_metadata_say_mit():
    meta = yaml.safe_load((REPO / "roles/sendmail_shim/meta/main.yml").read_text())
    assert meta["galaxy_info"]["license"] == "MIT"
    spec = importlib.util.spec_from_file_location("build_collection", REPO / "scripts/build-collection.py")
    build_collection = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_collection)
    assert json.loads(build_collection.galaxy_yml("acme", "1.0.0"))["license"] == ["MIT"]
    assert build_collection.CONTENT["LICENSE"] == "LICENSE"


def test_every_file_that_takes_comments_carries_the_spdx_header():
    missing = []
    for path in tracked_files():
        marker = comment_marker(path)
        name = str(path.relative_to(REPO))
        if marker is None or name in HEADER_PENDING:
            continue
        lines = [*path.read_text().splitlines()[:2], "", ""]
        # Line 1, or line 2 after a shebang.
        header = lines[1] if lines[0].startswith("#!") else lines[0]
        if not (header.startswith(marker) and SPDX in header):
            missing.append(name)
    assert not missing, f"no `{SPDX}` on line 1 (line 2 after a shebang): {missing}"


def test_no_other_licence_is_named_anywhere():
    found = []
    for path in tracked_files():
        if path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text().replace(WAIVED_CHECK, "")
        except UnicodeDecodeError:
            continue
        name = str(path.relative_to(REPO))
        found += [f"{name}: {m.group(0)}" for m in OTHER_LICENCES.finditer(text)]
        found += [f"{name}: {m.group(0)}" for m in SPDX_FIELD.finditer(text) if m.group("value") != "MIT"]
        for m in LICENCE_FIELD.finditer(text):
            if m.group("value").strip(" \"'[],") != "MIT":
                found.append(f"{name}: {m.group(0).strip()}")
    assert not found
