#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Assembles the Ansible collection from this repository's layout and builds its tarball.

    scripts/build-collection.py [--namespace NS] [--out DIR]

The collection is assembled, never kept as a second copy: roles/ and playbooks/ are copied as they are,
library/ becomes plugins/modules/, module_utils/ plugins/module_utils/ and filter_plugins/
plugins/filter/ (links are followed, so the collection holds the files they point to), collection/ holds
the collection's own README and meta/runtime.yml, and galaxy.yml is written here with the version from
the one version source (the shim's __version__).
Prints the tarball's path.
"""

import argparse
import ast
import json
import pathlib
import shutil
import subprocess
import sys
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
}
# Collections the role and playbooks call by FQCN, beyond ansible.builtin.
DEPENDENCIES_FILE = "collection/dependencies.json"


def version():
    """The shim's __version__, read without importing the shim."""
    tree = ast.parse((ROOT / "files/sendmail_shim/__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["__version__"]:
            return node.value.value
    raise SystemExit("build-collection: no __version__ in files/sendmail_shim/__init__.py")


def galaxy_yml(namespace):
    dependencies = json.loads((ROOT / DEPENDENCIES_FILE).read_text())
    # JSON is YAML: no YAML writer is needed to produce galaxy.yml.
    return json.dumps(
        {
            "namespace": namespace,
            "name": NAME,
            "version": version(),
            "readme": "README.md",
            "authors": ["sendmail-shim maintainers"],
            "license": ["MIT"],
            "description": "Replace the MTA on every host by a sendmail that logs each message as JSON.",
            "tags": ["mail", "sendmail", "logging", "debian"],
            "dependencies": dependencies,
            "build_ignore": ["**/__pycache__", "**/*.pyc"],
        },
        indent=2,
    )


def ignore_caches(_directory, names):
    return [n for n in names if n == "__pycache__" or n.endswith(".pyc")]


def assemble(stage, namespace):
    for dest, src in CONTENT.items():
        source, target = ROOT / src, stage / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore_caches)
        else:
            shutil.copy2(source, target)
    (stage / "galaxy.yml").write_text(galaxy_yml(namespace) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "dist")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sendmail-shim-collection.") as tmp:
        stage = pathlib.Path(tmp) / NAME
        assemble(stage, args.namespace)
        subprocess.run(
            ["ansible-galaxy", "collection", "build", "--force", "--output-path", str(args.out), str(stage)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    tarball = args.out / f"{args.namespace}-{NAME}-{version()}.tar.gz"
    if not tarball.is_file():
        sys.exit(f"build-collection: ansible-galaxy did not write {tarball}")
    print(tarball)


if __name__ == "__main__":
    main()
