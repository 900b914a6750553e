#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Assembles the Ansible collection from this repository's layout and builds its tarball.

    scripts/build-collection.py [--namespace NS] [--out DIR] [--release]
    scripts/build-collection.py --layout-module    # rewrites module_utils/sendmail_shim_layout.py

The collection is assembled, never kept as a second copy: roles/ and playbooks/ are copied as they are,
library/ becomes plugins/modules/, module_utils/ plugins/module_utils/ and filter_plugins/
plugins/filter/ (links are followed, so the collection holds the files they point to), collection/ holds
the collection's own README, meta/runtime.yml and the molecule scenario users copy, and galaxy.yml is
written here with the version that scripts/version.py derives from the one version source (the shim's
__version__), in SemVer's spelling: a development build's by default, the plain release with --release.
The modules run on hosts where no layout.json is shipped: the build writes the layout's paths into
plugins/module_utils/sendmail_shim_layout.py (the checkout keeps the same file, which a test compares).
Prints the tarball's path.
"""

import argparse
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
NAME = "sendmail_shim"
# The namespace the repository's own FQCNs use (ansible_collections/<ns>/ in the checkout).
DEFAULT_NAMESPACE = "mailshim"

# What the collection ships: destination inside the collection -> source in the checkout.
CONTENT = {
    "README.md": "collection/README.md",
    "LICENSE": "LICENSE",
    "meta/runtime.yml": "collection/meta/runtime.yml",
    "roles/sendmail_shim": "roles/sendmail_shim",
    "plugins/modules": "library",
    "plugins/module_utils": "module_utils",
    "plugins/filter": "filter_plugins",
    "playbooks": "playbooks",
    "extensions/molecule/sendmail_shim_example": "collection/extensions/molecule/sendmail_shim_example",
}
LAYOUT_FILE = "files/sendmail_shim/layout.json"
LAYOUT_MODULE = "module_utils/sendmail_shim_layout.py"
LAYOUT_MODULE_HEADER = f"""# SPDX-License-Identifier: MIT
\"\"\"The installed layout for the modules, which run on hosts that have no {LAYOUT_FILE}.

Generated from it by scripts/build-collection.py --layout-module: edit the JSON, never this file.
\"\"\"

"""
# ansible-test's validate-modules asks every module for ansible-core's own licence header; these are MIT,
# so each ansible-core from requires_ansible (meta/runtime.yml) to 2.21 gets an ignore file that waives it.
RUNTIME_FILE = "collection/meta/runtime.yml"
NEWEST_SANITY_MINOR = 21
WAIVED_CHECK = "validate-modules:missing-gplv3-license"


def version(release):
    """The collection's version: scripts/version.py's, in SemVer's spelling."""
    argv = [sys.executable, str(ROOT / "scripts/version.py"), "--semver", *(["--release"] if release else [])]
    printed = subprocess.run(argv, check=False, stdout=subprocess.PIPE, text=True)
    if printed.returncode != 0:
        sys.exit(printed.returncode)
    return printed.stdout.strip()


def layout_module(layout):
    """The Python source of the layout's paths: each top-level string and the sendmail alternative's."""
    values = {key: value for key, value in layout.items() if isinstance(value, str)}
    values["alternative_name"] = layout["alternative"]["name"]
    values["alternative_link"] = layout["alternative"]["link"]
    lines = [f"{key.upper()} = {json.dumps(value)}\n" for key, value in values.items()]
    return LAYOUT_MODULE_HEADER + "".join(lines)


def oldest_core_minor():
    """The minor version of requires_ansible's lower bound: >=2.18.0 gives 18."""
    found = re.search(r'^requires_ansible: ">=2\.(\d+)', (ROOT / RUNTIME_FILE).read_text(), re.MULTILINE)
    if not found:
        sys.exit(f'build-collection: no requires_ansible ">=2.N" in {RUNTIME_FILE}')
    return int(found.group(1))


def galaxy_yml(namespace, collection_version):
    # JSON is YAML: no YAML writer is needed to produce galaxy.yml.
    return json.dumps(
        {
            "namespace": namespace,
            "name": NAME,
            "version": collection_version,
            "readme": "README.md",
            "authors": ["sendmail-shim maintainers"],
            "license": ["MIT"],
            "description": "Replace the MTA on every host by a sendmail that logs each message as JSON.",
            "tags": ["mail", "sendmail", "logging", "debian"],
            "dependencies": {},
            "build_ignore": ["**/__pycache__", "**/*.pyc"],
        },
        indent=2,
    )


def ignore_caches(_directory, names):
    return [n for n in names if n == "__pycache__" or n.endswith(".pyc")]


def links_leaving(root, source):
    """The links under source (or source itself) that resolve outside root: their content is not ours."""
    paths = [source, *source.rglob("*")] if source.is_dir() else [source]
    return [
        str(p.relative_to(root)) for p in paths if p.is_symlink() and not p.resolve().is_relative_to(root)
    ]


def stray_members(tarball):
    """Members that are links or whose path leaves the collection: an installed one must stand alone."""
    with tarfile.open(tarball) as tar:
        return [
            m.name
            for m in tar.getmembers()
            if m.issym() or m.islnk() or m.name.startswith("/") or ".." in pathlib.PurePosixPath(m.name).parts
        ]


def assemble(stage, namespace, collection_version):
    leaving = [link for src in CONTENT.values() for link in links_leaving(ROOT, ROOT / src)]
    if leaving:
        sys.exit(f"build-collection: links that point outside the repository: {', '.join(leaving)}")
    for dest, src in CONTENT.items():
        source, target = ROOT / src, stage / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore_caches)
        else:
            shutil.copy2(source, target)
    layout = json.loads((ROOT / LAYOUT_FILE).read_text())
    (stage / "plugins/module_utils" / pathlib.Path(LAYOUT_MODULE).name).write_text(layout_module(layout))
    (stage / "galaxy.yml").write_text(galaxy_yml(namespace, collection_version) + "\n")
    modules = sorted((stage / "plugins/modules").glob("*.py"))
    waivers = "".join(f"plugins/modules/{m.name} {WAIVED_CHECK}\n" for m in modules)
    (stage / "tests/sanity").mkdir(parents=True)
    for minor in range(oldest_core_minor(), NEWEST_SANITY_MINOR + 1):
        (stage / f"tests/sanity/ignore-2.{minor}.txt").write_text(waivers)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "dist")
    parser.add_argument("--release", action="store_true", help="the release version; the tree must be clean")
    parser.add_argument("--layout-module", action="store_true", help=f"only rewrite {LAYOUT_MODULE}")
    args = parser.parse_args()
    if args.layout_module:
        (ROOT / LAYOUT_MODULE).write_text(layout_module(json.loads((ROOT / LAYOUT_FILE).read_text())))
        return
    collection_version = version(args.release)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sendmail-shim-collection.") as tmp:
        stage = pathlib.Path(tmp) / NAME
        assemble(stage, args.namespace, collection_version)
        subprocess.run(
            ["ansible-galaxy", "collection", "build", "--force", "--output-path", str(args.out), str(stage)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    tarball = args.out / f"{args.namespace}-{NAME}-{collection_version}.tar.gz"
    if not tarball.is_file():
        sys.exit(f"build-collection: ansible-galaxy did not write {tarball}")
    stray = stray_members(tarball)
    if stray:
        tarball.unlink()
        sys.exit(
            f"build-collection: links or paths outside the collection in the tarball: {', '.join(stray)}"
        )
    print(tarball)


if __name__ == "__main__":
    main()
