# SPDX-License-Identifier: MIT
"""The Ansible collection as a user gets it: built from the checkout, installed offline from the tarball into
an empty collections path, and used by FQCN only, from a playbook that lives outside this repository.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "mailshim"
FQCN = f"{NAMESPACE}.sendmail_shim"
VENV_BIN = REPO / ".venv/bin"
# The collections the PyPI `ansible` package bundles (-I: not this checkout's ansible_collections/).
BUNDLED = Path(
    subprocess.run(
        [VENV_BIN / "python", "-I", "-c", "import ansible_collections as c; print(c.__path__[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
)
LAYOUT = json.loads((REPO / "files/sendmail_shim/layout.json").read_text())
BASE_IMAGE = "localhost/sendmail-shim-test/debian:bookworm"
# The version the build stamps: this tree's development version, in SemVer's spelling.
VERSION = subprocess.run(
    [sys.executable, REPO / "scripts/version.py", "--semver"], capture_output=True, text=True, check=True
).stdout.strip()


def tool_env(collections: Path | None = None) -> dict[str, str]:
    """A user's environment: the project's tools on PATH, no ansible.cfg of this checkout, and, when given,
    only `collections` to find collections in (nothing found by accident in site-packages or ~/.ansible).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_HOST_KEY_CHECKING"] = "False"
    env.setdefault("CONTAINERS_CONF", str(REPO / "containers/containers.conf"))
    if collections is not None:
        env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
        env["ANSIBLE_COLLECTIONS_SCAN_SYS_PATH"] = "false"
    return env


def run(*cmd, cwd: Path, env: dict[str, str], timeout: int = 300, check: bool = True, **kwargs):
    out = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **kwargs
    )
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))}: exit {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    printed = run(
        sys.executable, REPO / "scripts/build-collection.py", "--out", out, cwd=REPO, env=tool_env()
    )
    path = Path(printed.stdout.strip())
    assert path == out / f"{NAMESPACE}-sendmail_shim-{VERSION}.tar.gz"
    return path


@pytest.fixture(scope="module")
def installed(tarball, tmp_path_factory) -> Path:
    """A fresh collections path: the dependencies copied from the ones the `ansible` package bundles, then
    the tarball installed offline. Returns the path to give ANSIBLE_COLLECTIONS_PATH.
    """
    root = tmp_path_factory.mktemp("collections")
    galaxy = json.loads(member(tarball, "MANIFEST.json"))
    for dependency in galaxy["collection_info"]["dependencies"]:
        namespace, name = dependency.split(".")
        shutil.copytree(BUNDLED / namespace / name, root / "ansible_collections" / namespace / name)
    run(
        "ansible-galaxy", "collection", "install", "--offline", "-p", root, tarball,
        cwd=root, env=tool_env(root),
    )  # fmt: skip
    return root


def member(tarball: Path, name: str) -> bytes:
    with tarfile.open(tarball) as tar:
        return tar.extractfile(name).read()


def members(tarball: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(tarball) as tar:
        return tar.getmembers()


def tracked(directory: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", directory], cwd=REPO, capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if "__pycache__" not in line]


def test_tarball_holds_every_role_file_module_and_playbook(tarball):
    names = {m.name for m in members(tarball)}
    expected = {path for path in tracked("roles/sendmail_shim")}
    expected |= {f"plugins/modules/{Path(p).name}" for p in tracked("library") if p.endswith(".py")}
    expected |= {f"plugins/module_utils/{Path(p).name}" for p in tracked("module_utils") if p.endswith(".py")}
    expected |= set(tracked("playbooks"))
    expected |= {"meta/runtime.yml", "README.md", "LICENSE", "MANIFEST.json", "FILES.json"}
    assert expected, "git ls-files found nothing: not run from a checkout?"
    missing = sorted(expected - names)
    assert not missing, f"missing from {tarball.name}: {missing}"
    # ansible-galaxy keeps a link that points outside the collection only as a warning: none may be left.
    links = [m.name for m in members(tarball) if m.issym() or m.islnk()]
    assert links == []


def test_one_version_and_one_licence_for_collection_package_and_shim(tarball):
    manifest = json.loads(member(tarball, "MANIFEST.json"))
    assert manifest["collection_info"]["version"] == VERSION
    assert manifest["collection_info"]["license"] == ["MIT"]
    assert member(tarball, "LICENSE") == (REPO / "LICENSE").read_bytes()
    runtime = member(tarball, "meta/runtime.yml").decode()
    assert "requires_ansible:" in runtime


def test_installed_collection_resolves_by_fqcn_only(installed, tmp_path):
    for module in ("mta_facts", "sendmail_probe"):
        doc = run("ansible-doc", "--json", f"{FQCN}.{module}", cwd=tmp_path, env=tool_env(installed))
        assert json.loads(doc.stdout)[f"{FQCN}.{module}"]["doc"]["module"] == module
    role = run(
        "ansible-doc", "-t", "role", "--json", f"{FQCN}.sendmail_shim", cwd=tmp_path, env=tool_env(installed)
    )
    assert "main" in json.loads(role.stdout)[f"{FQCN}.sendmail_shim"]["entry_points"]
    for playbook in ("site", "verify", "report"):
        run(
            "ansible-playbook", "--syntax-check", "-i", "localhost,", f"{FQCN}.{playbook}",
            cwd=tmp_path, env=tool_env(installed),
        )  # fmt: skip


def test_role_without_a_package_path_fails_with_one_clear_line(installed, tmp_path):
    # Inside an installed collection there is no checkout dist/: the package's path must be given. The
    # check follows mta_facts (the host's architecture), which runs on this Debian host's own python3.
    playbook = tmp_path / "site.yml"
    playbook.write_text(
        f"- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: {FQCN}.sendmail_shim\n"
    )
    out = run(
        "ansible-playbook", "-i", "localhost,", "-c", "local",
        "-e", "ansible_python_interpreter=/usr/bin/python3", playbook,
        cwd=tmp_path, env=tool_env(installed), check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert "sendmail_shim_package_deb" in out.stdout + out.stderr


@pytest.mark.root
def test_ansible_test_sanity_passes(installed, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("ansible-test --venv writes its pip stand-in under root's ~/.ansible (bootstrap)")
    collection = installed / "ansible_collections" / NAMESPACE / "sendmail_shim"
    out = run(
        "ansible-test", "sanity", "--venv", "--python", f"{sys.version_info[0]}.{sys.version_info[1]}",
        "--color", "no",
        cwd=collection, env=tool_env(installed), timeout=1800, check=False,
    )  # fmt: skip
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("ERROR")]
    assert out.returncode == 0, "\n".join(errors) or out.stdout[-4000:] + out.stderr[-4000:]


# --- a user's playbook against a real host --------------------------------------------------------------


def host_deb() -> Path | None:
    """This tree's .deb for the test host, of the controller's architecture (dist/ holds every one)."""
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout
    debs = sorted((REPO / "dist").glob(f"{LAYOUT['package']}_*_{arch.strip()}.deb"))
    return debs[-1] if debs else None


def podman(*args, timeout: int = 300, check: bool = True, **kwargs):
    return run("podman", *args, cwd=REPO, env=tool_env(), timeout=timeout, check=check, **kwargs)


@pytest.fixture
def host():
    if os.geteuid() != 0 or shutil.which("podman") is None:
        pytest.skip("needs root and podman (scripts/bootstrap.sh installs it)")
    if podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        pytest.skip(f"needs {BASE_IMAGE}: make images")
    if not host_deb():
        pytest.skip("needs the package: make package")
    name = f"sst17-collection-{secrets.token_hex(3)}"
    podman("run", "-d", "--name", name, "--hostname", name, "--systemd=always", BASE_IMAGE, "/sbin/init")
    try:
        state = podman("exec", name, "systemctl", "is-system-running", "--wait", check=False, timeout=180)
        assert state.returncode in (0, 1), state.stdout + state.stderr  # 1: degraded, fine here
        yield name
    finally:
        podman("rm", "-f", "-t", "5", name, check=False)


def log_records(name: str) -> list[dict]:
    out = podman("exec", name, "cat", LAYOUT["log"], check=False)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def wait_for_record(name: str, token: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mine = [r for r in log_records(name) if token in json.dumps(r)]
        if mine:
            return mine[0]
        time.sleep(2)
    raise AssertionError(f"no record with {token} within {timeout} s; log: {log_records(name)}")


@pytest.mark.root
@pytest.mark.container
def test_fqcn_playbook_outside_the_repository_makes_sudo_and_cron_mail_land(installed, host, tmp_path):
    deb = host_deb()
    user = "sstapp"
    podman("exec", host, "useradd", "--create-home", "--shell", "/bin/sh", user)
    podman("exec", "-i", host, "chpasswd", input=f"{user}:sst-password\n")
    (tmp_path / "inventory.yml").write_text(
        json.dumps({"all": {"hosts": {host: {"ansible_connection": "containers.podman.podman"}}}})
    )
    # What a user writes: FQCNs only, the package's path given (there is no dist/ in a collection).
    (tmp_path / "site.yml").write_text(
        f"""---
- name: Replace the MTA with sendmail-shim
  hosts: all
  become: true
  roles:
    - role: {FQCN}.sendmail_shim
      vars:
        sendmail_shim_package_deb: {deb}

- name: Prove that mail lands
  ansible.builtin.import_playbook: {FQCN}.verify
"""
    )
    # The podman connection plugin is one more collection this playbook needs, from the bundled ones.
    shutil.copytree(BUNDLED / "containers/podman", installed / "ansible_collections/containers/podman")
    try:
        run(
            "ansible-playbook", "-i", tmp_path / "inventory.yml", tmp_path / "site.yml",
            cwd=tmp_path, env=tool_env(installed), timeout=900,
        )  # fmt: skip
    finally:
        shutil.rmtree(installed / "ansible_collections/containers/podman")

    token = f"sst17-{secrets.token_hex(6)}"
    crontab = f"* * * * * echo {token}-cron\n"
    podman("exec", "-i", host, "crontab", "-u", user, "-", input=crontab)
    # The right password of a user who is not in sudoers: sudo refuses and mails it.
    sudo = podman(
        "exec", "-i", host, "su", "-s", "/bin/sh", "-c", f"sudo -S -k /bin/echo {token}-sudo", user,
        input="sst-password\n", check=False,
    )  # fmt: skip
    assert sudo.returncode != 0
    refused = wait_for_record(host, f"{token}-sudo", timeout=30)
    assert "user NOT in sudoers" in refused["message"]
    uid = podman("exec", host, "id", "-u", user).stdout.strip()
    assert refused["user"]["id"] == uid
    cron = wait_for_record(host, f"{token}-cron", timeout=90)
    assert cron["user"]["id"] == uid
    assert cron["process"]["parent"]["name"] == "cron"
