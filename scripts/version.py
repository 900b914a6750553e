#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The version a build stamps: __version__ of files/sendmail_shim/__init__.py, and where git says the
tree stands relative to it.

    scripts/version.py [--release] [--semver]

A development build is NEXT~devN+gHASH: NEXT is __version__ (right after a release it names the next
one, so that development builds sort below it), N the commits since the last release tag vX.Y.Z (all
commits when there is none), HASH the commit; +dirty<digest> follows when files differ from the commit,
the digest being that of the differences, so that every rebuild of a changed tree has its own version.
--release prints __version__ itself and refuses a dirty tree. --semver prints the same version in
SemVer's spelling, which the collection needs: 1.2.0~dev5+g1a2b3c4 is 1.2.0-dev.5+g1a2b3c4.
"""

import argparse
import ast
import hashlib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INIT = ROOT / "files/sendmail_shim/__init__.py"
RELEASE_TAG = "v[0-9]*"
# NEXT~devN+gHASH[+dirtyDIGEST], as dev_version() writes it.
DEV_VERSION = re.compile(
    r"^(?P<next>[0-9][0-9.]*)~dev(?P<count>[0-9]+)\+g(?P<commit>[0-9a-f]+)(?:\+dirty(?P<dirty>[0-9a-f]+))?$"
)


def declared_version(init=INIT):
    """__version__, read without importing the shim."""
    for node in ast.parse(Path(init).read_text()).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["__version__"]:
            return node.value.value
    raise SystemExit(f"version: no __version__ in {init}")


def dev_version(next_version, count, commit, dirty_digest=None):
    """The Debian version of a development build."""
    version = f"{next_version}~dev{count}+g{commit}"
    return f"{version}+dirty{dirty_digest}" if dirty_digest else version


def semver(version):
    """A version of dev_version()'s form (or a plain release) in SemVer's spelling."""
    match = DEV_VERSION.match(version)
    if match is None:
        if not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", version):
            raise ValueError(f"{version} is neither X.Y.Z nor a development version")
        return version
    build = f"g{match['commit']}" + (f".dirty{match['dirty']}" if match["dirty"] else "")
    return f"{match['next']}-dev.{match['count']}+{build}"


def git(*args, root=ROOT):
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True).stdout


def dirty_digest(root=ROOT):
    """A digest of how the tree differs from its commit (tracked changes and untracked files), or None."""
    status = git("status", "--porcelain=v1", "-z", "--untracked-files=all", root=root)
    if not status:
        return None
    digest = hashlib.sha256(git("diff", "HEAD", "--binary", root=root))
    for name in sorted(git("ls-files", "-z", "--others", "--exclude-standard", root=root).split(b"\0")):
        path = root / name.decode()
        if name and path.is_file():
            digest.update(b"\0" + name + b"\0" + path.read_bytes())
    return digest.hexdigest()[:8]


def commits_since_release(root=ROOT):
    """Commits since the newest release tag reachable from HEAD, or all of them when there is none."""
    try:
        tag = git("describe", "--tags", "--abbrev=0", f"--match={RELEASE_TAG}", root=root).decode().strip()
    except subprocess.CalledProcessError:
        return int(git("rev-list", "--count", "HEAD", root=root))
    return int(git("rev-list", "--count", f"{tag}..HEAD", root=root))


def tree_version(root=ROOT):
    """The development version of the tree at root."""
    commit = git("rev-parse", "--short=7", "HEAD", root=root).decode().strip()
    init = root / INIT.relative_to(ROOT)
    return dev_version(declared_version(init), commits_since_release(root), commit, dirty_digest(root))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", action="store_true", help="__version__ itself; the tree must be clean")
    parser.add_argument("--semver", action="store_true", help="in SemVer's spelling (the collection)")
    args = parser.parse_args()
    try:
        if args.release:
            if dirty_digest() is not None:
                sys.exit(
                    "version: a release is built from a committed tree; this one has changes (git status)"
                )
            version = declared_version()
        else:
            version = tree_version()
    except (subprocess.CalledProcessError, FileNotFoundError):
        sys.exit(f"version: {ROOT} is not a git checkout: a development version names its commit")
    print(semver(version) if args.semver else version)


if __name__ == "__main__":
    main()
