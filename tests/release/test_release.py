# SPDX-License-Identifier: MIT
"""The signed release: scripts/release.sh on small stand-in packages (the pool keeps every version, a
release version refuses the throwaway key, a real key signs), then the release `make test` made in
dist/release, checked with docs/release.md's own commands as written."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAYOUT = json.loads((REPO / "files/sendmail_shim/layout.json").read_text())
RELEASE_SH = REPO / "scripts/release.sh"
DOC = (REPO / "docs/release.md").read_text()
DIST_RELEASE = REPO / "dist/release"


def doc_block(after: str) -> str:
    """The first ```sh block of docs/release.md after the line containing `after`."""
    tail = DOC[DOC.index(after) :]
    return re.search(r"```sh\n(.*?)```", tail, re.S).group(1)


def stand_in_deb(directory: Path, version: str, arch: str) -> Path:
    root = directory / f"root-{version}-{arch}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        f"Package: {LAYOUT['package']}\nVersion: {version}\nArchitecture: {arch}\n"
        "Maintainer: tests <tests@localhost>\nDescription: stand-in\n"
    )
    deb = directory / f"{LAYOUT['package']}_{version}_{arch}.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", root, deb], check=True, capture_output=True)
    return deb


def release(out: Path, *files: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RELEASE_SH, out, *files], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def gpgv(keyring: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["gpgv", "--keyring", keyring, *args], capture_output=True, text=True)


def packages_versions(out: Path, arch: str) -> list[str]:
    index = out / f"apt/dists/{LAYOUT['release_suite']}/{LAYOUT['release_component']}/binary-{arch}/Packages"
    return re.findall(r"^Version: (.*)$", index.read_text(), re.M)


def test_the_pool_keeps_every_version_and_the_top_level_only_the_newest(tmp_path):
    out = tmp_path / "release"
    first = stand_in_deb(tmp_path, "1.1.0~dev3+gaaaaaaa", "amd64")
    second = [stand_in_deb(tmp_path, "1.1.0~dev4+gbbbbbbb", arch) for arch in ("amd64", "arm64")]
    assert release(out, first).returncode == 0
    done = release(out, *second)
    assert done.returncode == 0, done.stderr
    assert "throwaway key" in done.stdout
    assert sorted(packages_versions(out, "amd64")) == ["1.1.0~dev3+gaaaaaaa", "1.1.0~dev4+gbbbbbbb"]
    assert packages_versions(out, "arm64") == ["1.1.0~dev4+gbbbbbbb"]
    assert sorted(p.name for p in out.glob("*.deb")) == sorted(d.name for d in second)


def test_a_release_version_refuses_the_throwaway_key(tmp_path):
    done = release(tmp_path / "release", stand_in_deb(tmp_path, "1.1.0", "amd64"))
    assert done.returncode == 64
    assert "RELEASE_GNUPGHOME and RELEASE_KEY" in done.stderr
    assert not (tmp_path / "release/SHA256SUMS").exists()


def test_the_documented_key_signs_a_release_version(tmp_path):
    """docs/release.md's key creation, as written but for the GnuPG home, then a release signed with it."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    script = doc_block("create it once, offline").replace("/secure/sendmail-shim-gnupg", str(home))
    # gpg asks for a passphrase on a terminal; here none is wanted.
    script = script.replace("gpg --quick-gen-key", "gpg --batch --passphrase '' --quick-gen-key")
    made = subprocess.run(["bash", "-euc", script], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    fingerprint = re.search(r"([0-9A-F]{4}(?: {1,2}[0-9A-F]{4}){9})", made.stdout).group(1).replace(" ", "")
    out = tmp_path / "release"
    done = release(
        out,
        stand_in_deb(tmp_path, "1.1.0", "amd64"),
        env={"RELEASE_GNUPGHOME": str(home), "RELEASE_KEY": fingerprint},
    )
    assert done.returncode == 0, done.stderr
    keyring = out / LAYOUT["release_keyring"]
    assert gpgv(keyring, out / "SHA256SUMS.gpg", out / "SHA256SUMS").returncode == 0
    assert (
        fingerprint
        in subprocess.run(
            ["gpg", "--show-keys", "--with-colons", keyring], capture_output=True, text=True, check=True
        ).stdout
    )


@pytest.fixture(scope="module")
def made_release() -> Path:
    assert (DIST_RELEASE / "SHA256SUMS").is_file(), "no dist/release: run `make release` (make test does)"
    return DIST_RELEASE


@pytest.mark.container
def test_the_documented_check_passes_on_the_release(made_release):
    script = doc_block("Checking a release by hand").replace("cd dist/release", f"cd {made_release}")
    done = subprocess.run(
        ["bash", "-euc", script],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "Good signature" in done.stderr


@pytest.mark.container
def test_the_release_holds_both_architectures_the_collection_and_signed_indexes(made_release):
    names = {p.name for p in made_release.iterdir()}
    debs = sorted(n for n in names if n.endswith(".deb"))
    assert [d.rsplit("_", 1)[1] for d in debs] == ["amd64.deb", "arm64.deb"]
    version = debs[0].split("_")[1]
    assert {f"{d[:-4]}.buildinfo" for d in debs} <= names
    assert any(n.startswith("mailshim-sendmail_shim-") and n.endswith(".tar.gz") for n in names)
    dist = made_release / f"apt/dists/{LAYOUT['release_suite']}"
    fields = dict(re.findall(r"^(\w+): (.+)$", (dist / "Release").read_text(), re.M))
    assert fields["Origin"] == fields["Label"] == LAYOUT["release_origin"]
    assert fields["Codename"] == LAYOUT["release_codename"]
    assert fields["Suite"] == LAYOUT["release_suite"]
    assert fields["Architectures"].split() == ["amd64", "arm64"]
    keyring = made_release / LAYOUT["release_keyring"]
    assert gpgv(keyring, dist / "InRelease").returncode == 0
    assert gpgv(keyring, dist / "Release.gpg", dist / "Release").returncode == 0
    for arch in ("amd64", "arm64"):
        assert version in packages_versions(made_release, arch)


@pytest.mark.container
def test_buildinfo_carries_the_changelog_date_as_source_date_epoch(made_release, tmp_path):
    """The date of the changelog each package was built from (a development build's own top entry)."""
    for buildinfo in made_release.glob("*.buildinfo"):
        deb = buildinfo.with_suffix(".deb")
        subprocess.run(["dpkg-deb", "-x", deb, tmp_path / deb.stem], check=True)
        changelog = tmp_path / deb.stem / f"usr/share/doc/{LAYOUT['package']}/changelog.gz"
        timestamp = subprocess.run(
            ["dpkg-parsechangelog", "-l-", "-S", "Timestamp"],
            input=gzip.decompress(changelog.read_bytes()),
            capture_output=True,
            check=True,
        ).stdout
        timestamp = timestamp.decode().strip()
        assert f'SOURCE_DATE_EPOCH="{timestamp}"' in buildinfo.read_text(), buildinfo.name


def test_the_unattended_upgrades_pattern_names_the_repository():
    pattern = re.search(r'"origin=([^,]+),codename=([^"]+)"', DOC)
    assert pattern.groups() == (LAYOUT["release_origin"], LAYOUT["release_codename"])
