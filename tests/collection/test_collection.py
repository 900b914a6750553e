# SPDX-License-Identifier: MIT
"""The Ansible collection as a user gets it: built from the checkout, installed offline from the tarball into
an empty collections path, and used by FQCN only, from a project that lives outside this repository, with
each supported ansible-core (2.19 in .venv, 2.18 in .venv-ansible-2.18: collection/meta/runtime.yml).
"""

from __future__ import annotations

import ast
import functools
import http.server
import importlib.util
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "mailshim"
FQCN = f"{NAMESPACE}.sendmail_shim"
VENV_BIN = REPO / ".venv/bin"
# Each supported ansible-core and where its commands are (scripts/bootstrap.sh makes both venvs).
CORES = {"2.19": VENV_BIN, "2.18": REPO / ".venv-ansible-2.18/bin"}
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
README = REPO / "collection/README.md"
# The URL the README's group_vars shows, which the test replaces with the release served in the host.
DOC_REPOSITORY_URL = "https://downloads.example.org/sendmail-shim/apt"


def build_script():
    spec = importlib.util.spec_from_file_location("build_collection", REPO / "scripts/build-collection.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def core_bin(core: str) -> Path:
    bin_dir = CORES[core]
    assert (bin_dir / "ansible-playbook").exists(), f"no {bin_dir}/ansible-playbook: run scripts/bootstrap.sh"
    return bin_dir


def tool_env(collections: Path | None = None, core: str = "2.19") -> dict[str, str]:
    """A user's environment: one ansible-core's commands on PATH, no ansible.cfg of this checkout, and, when
    given, only `collections` to find collections in (nothing found by accident in site-packages or
    ~/.ansible).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["PATH"] = f"{core_bin(core)}:{VENV_BIN}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    env["ANSIBLE_FORCE_COLOR"] = "0"
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


def install(tarball: Path, root: Path, core: str) -> Path:
    """The tarball installed offline by that ansible-core into root, an empty collections path."""
    root.mkdir(parents=True, exist_ok=True)
    run(
        "ansible-galaxy", "collection", "install", "--offline", "-p", root, tarball,
        cwd=root, env=tool_env(root, core),
    )  # fmt: skip
    return root


@pytest.fixture(scope="module", params=sorted(CORES))
def installed(request, tarball, tmp_path_factory) -> tuple[str, Path]:
    """(core, collections path) for each supported ansible-core."""
    return request.param, install(
        tarball, tmp_path_factory.mktemp(f"collections-{request.param}"), request.param
    )


def member(tarball: Path, name: str) -> bytes:
    with tarfile.open(tarball) as tar:
        return tar.extractfile(name).read()


def members(tarball: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(tarball) as tar:
        return tar.getmembers()


def tracked(directory: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", directory], cwd=REPO, capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if "__pycache__" not in line]


def test_tarball_holds_every_role_file_module_playbook_and_the_molecule_example(tarball):
    names = {m.name for m in members(tarball)}
    expected = {path for path in tracked("roles/sendmail_shim")}
    expected |= {f"plugins/modules/{Path(p).name}" for p in tracked("library") if p.endswith(".py")}
    expected |= {f"plugins/module_utils/{Path(p).name}" for p in tracked("module_utils") if p.endswith(".py")}
    expected |= {f"plugins/filter/{Path(p).name}" for p in tracked("filter_plugins") if p.endswith(".py")}
    expected |= set(tracked("playbooks"))
    expected |= {p.removeprefix("collection/") for p in tracked("collection/extensions")}
    expected |= {"meta/runtime.yml", "README.md", "LICENSE", "MANIFEST.json", "FILES.json"}
    assert expected, "git ls-files found nothing: not run from a checkout?"
    missing = sorted(expected - names)
    assert not missing, f"missing from {tarball.name}: {missing}"
    # The build refuses these; ansible-galaxy alone keeps a link that points outside only as a warning.
    assert build_script().stray_members(tarball) == []


def test_build_refuses_links_and_paths_that_leave_the_collection(tmp_path):
    build = build_script()
    crafted = tmp_path / "crafted.tar.gz"
    with tarfile.open(crafted, "w:gz") as tar:
        crafted_members = [
            ("README.md", tarfile.REGTYPE),
            ("roles/x", tarfile.SYMTYPE),
            ("../up", tarfile.REGTYPE),
        ]
        for name, kind in crafted_members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
            tar.addfile(info, io.BytesIO(b""))
    assert build.stray_members(crafted) == ["roles/x", "../up"]
    root = tmp_path / "repo"
    (root / "roles").mkdir(parents=True)
    (root / "roles/inside").symlink_to(root / "roles")
    (root / "roles/outside").symlink_to("/etc/hostname")
    assert build.links_leaving(root, root / "roles") == ["roles/outside"]


def test_the_modules_layout_is_the_installed_layout(tarball):
    generated = build_script().layout_module(LAYOUT)
    assert (REPO / "module_utils/sendmail_shim_layout.py").read_text() == generated, (
        "run scripts/build-collection.py --layout-module"
    )
    assert member(tarball, "plugins/module_utils/sendmail_shim_layout.py").decode() == generated


def test_one_version_one_licence_one_ansible_range_and_no_dependency(tarball):
    manifest = json.loads(member(tarball, "MANIFEST.json"))["collection_info"]
    assert manifest["version"] == VERSION
    assert manifest["license"] == ["MIT"]
    assert manifest["dependencies"] == {}
    assert member(tarball, "LICENSE") == (REPO / "LICENSE").read_bytes()
    runtime = yaml.safe_load(member(tarball, "meta/runtime.yml"))
    assert runtime["requires_ansible"] == f">={min(CORES)}.0"
    role_meta = yaml.safe_load(member(tarball, "roles/sendmail_shim/meta/main.yml"))["galaxy_info"]
    assert role_meta["min_ansible_version"] == min(CORES)
    assert role_meta["namespace"] == NAMESPACE


def test_installed_collection_resolves_by_fqcn_only(installed, tmp_path):
    core, root = installed
    env = tool_env(root, core)
    assert f"[core {core}." in run("ansible", "--version", cwd=tmp_path, env=env).stdout
    for module in ("mta_facts", "sendmail_probe"):
        doc = run("ansible-doc", "--json", f"{FQCN}.{module}", cwd=tmp_path, env=env)
        assert json.loads(doc.stdout)[f"{FQCN}.{module}"]["doc"]["module"] == module
    role = run("ansible-doc", "-t", "role", "--json", f"{FQCN}.sendmail_shim", cwd=tmp_path, env=env)
    assert "main" in json.loads(role.stdout)[f"{FQCN}.sendmail_shim"]["entry_points"]
    for playbook in ("site", "verify", "report"):
        run(
            "ansible-playbook",
            "--syntax-check",
            "-i",
            "localhost,",
            f"{FQCN}.{playbook}",
            cwd=tmp_path,
            env=env,
        )


def test_role_without_a_package_fails_naming_both_ways_to_one(installed, tmp_path):
    core, root = installed
    playbook = tmp_path / "site.yml"
    playbook.write_text(
        f"- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: {FQCN}.sendmail_shim\n"
    )
    out = run(
        "ansible-playbook", "-i", "localhost,", "-c", "local", playbook,
        "-e", "ansible_python_interpreter=/usr/bin/python3",
        cwd=tmp_path, env=tool_env(root, core), check=False,
    )  # fmt: skip
    assert out.returncode != 0
    said = out.stdout + out.stderr
    assert "sendmail_shim_package_source: repository" in said and "sendmail_shim_package_deb" in said


@pytest.mark.root
def test_ansible_test_sanity_passes(tarball, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("ansible-test --venv writes its pip stand-in under root's ~/.ansible (bootstrap)")
    # ansible-test comes with the tools' ansible-core.
    root = install(tarball, tmp_path / "collections", "2.19")
    collection = root / "ansible_collections" / NAMESPACE / "sendmail_shim"
    out = run(
        "ansible-test", "sanity", "--venv", "--python", f"{sys.version_info[0]}.{sys.version_info[1]}",
        "--color", "no",
        cwd=collection, env=tool_env(root), timeout=1800, check=False,
    )  # fmt: skip
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("ERROR")]
    assert out.returncode == 0, "\n".join(errors) or out.stdout[-4000:] + out.stderr[-4000:]


# --- a user's project against a real host ----------------------------------------------------------------


def doc_blocks(language: str) -> list[str]:
    """The README's fenced blocks of one language, in order: what a user copies."""
    return re.findall(rf"^```{language}\n(.*?)^```$", README.read_text(), flags=re.MULTILINE | re.DOTALL)


def podman(*args, timeout: int = 300, check: bool = True, **kwargs):
    return run("podman", *args, cwd=REPO, env=tool_env(), timeout=timeout, check=check, **kwargs)


@pytest.fixture
def host():
    if os.geteuid() != 0 or shutil.which("podman") is None:
        pytest.skip("needs root and podman (scripts/bootstrap.sh installs it)")
    if podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        pytest.skip(f"needs {BASE_IMAGE}: make images")
    name = f"sst26-user-{secrets.token_hex(3)}"
    podman("run", "-d", "--name", name, "--hostname", name, "--systemd=always", BASE_IMAGE, "/sbin/init")
    try:
        state = podman("exec", name, "systemctl", "is-system-running", "--wait", check=False, timeout=180)
        assert state.returncode in (0, 1), state.stdout + state.stderr  # 1: degraded, fine here
        yield name
    finally:
        podman("rm", "-f", "-t", "5", name, check=False)


@pytest.fixture
def release():
    """dist/release served over HTTP on the controller's loopback, as a user's download site."""
    directory = REPO / "dist/release"
    if not (directory / "SHA256SUMS").is_file():
        pytest.skip("needs the release: make release")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=directory))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield directory, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def only(directory: Path, pattern: str) -> re.Match:
    found = [m for m in (re.fullmatch(pattern, p.name) for p in directory.iterdir()) if m]
    assert len(found) == 1, f"{directory} holds {len(found)} files matching {pattern}"
    return found[0]


def serve_release_in(host: str, directory: Path) -> str:
    """The release served on the host's own loopback (as molecule/shared/serve-release.yml does)."""
    podman("cp", directory, f"{host}:/srv/release")
    podman(
        "exec", host, "systemd-run", "--unit", "sst-release-http",
        "python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", "/srv", "8080",
    )  # fmt: skip
    wait = (
        "import socket, time\n"
        "for _ in range(100):\n"
        "    try:\n        socket.create_connection(('127.0.0.1', 8080)); break\n"
        "    except OSError:\n        time.sleep(0.1)\n"
    )
    podman("exec", host, "python3", "-c", wait)
    return "http://127.0.0.1:8080/release"


def examples_playbook(collection: Path) -> list[dict]:
    """Every EXAMPLES task of the installed modules, as written, in one play."""
    tasks = []
    for module in ("mta_facts", "sendmail_probe"):
        tree = ast.parse((collection / f"plugins/modules/{module}.py").read_text())
        examples = next(
            node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["EXAMPLES"]
        )
        tasks += yaml.safe_load(examples)
    return [{"name": "The modules' EXAMPLES", "hosts": "all", "gather_facts": False, "tasks": tasks}]


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


def shell(script: str, *, cwd: Path, env: dict[str, str], timeout: int = 600):
    return run("bash", "-euo", "pipefail", "-c", script, cwd=cwd, env=env, timeout=timeout)


@pytest.mark.root
@pytest.mark.container
def test_a_users_project_with_only_the_release(host, release, tmp_path):
    """The README's commands as written, in an empty project outside the repository: fetch and check the
    tarball, install it, converge with the role from the release's signed repository and verify, report,
    call each module with no arguments and run its EXAMPLES; again with ansible-core 2.18; then the
    shipped molecule scenario. Mail from sudo and cron lands meanwhile.
    """
    directory, url = release
    semver = only(directory, r"mailshim-sendmail_shim-(.+)\.tar\.gz").group(1)
    # A release spells its version once; a development build's package and collection spell it apart.
    deb_version = only(directory, r"sendmail-shim_(.+)_amd64\.deb").group(1)
    (ini,) = doc_blocks("ini")
    install, playbooks, modules, molecule = doc_blocks("sh")
    group_vars, site = doc_blocks("yaml")
    assert DOC_REPOSITORY_URL in group_vars

    project = tmp_path / "project"
    project.mkdir()
    env = {**tool_env(), "RELEASE": url, "VERSION": semver, "SENDMAIL_SHIM_EXAMPLE_IMAGE": BASE_IMAGE}
    (project / "ansible.cfg").write_text(ini)
    shell(install, cwd=project, env=env)
    collection = project / "collections/ansible_collections" / NAMESPACE / "sendmail_shim"
    assert json.loads((collection / "MANIFEST.json").read_text())["collection_info"]["version"] == semver

    (project / "group_vars").mkdir()
    in_host = serve_release_in(host, directory)
    (project / "group_vars/all.yml").write_text(group_vars.replace(DOC_REPOSITORY_URL, f"{in_host}/apt"))
    (project / "site.yml").write_text(site)
    (project / "inventory").write_text(f"{host} ansible_connection=containers.podman.podman\n")
    ran = shell(playbooks, cwd=project, env=env, timeout=900).stdout
    assert f"{host}  ok: nobody" in ran
    assert re.search(r"records on 1 hosts", ran), ran
    assert "no answer from" not in ran
    assert podman("exec", host, "apt-cache", "policy", LAYOUT["package"]).stdout.count("127.0.0.1:8080") >= 1

    # Mail from sudo and from cron, while the other steps run.
    user, token = "sstapp", f"sst26-{secrets.token_hex(6)}"
    podman("exec", host, "useradd", "--create-home", "--shell", "/bin/sh", user)
    podman("exec", "-i", host, "chpasswd", input=f"{user}:sst-password\n")
    podman("exec", "-i", host, "crontab", "-u", user, "-", input=f"* * * * * echo {token}-cron\n")
    sudo = podman(
        "exec", "-i", host, "su", "-s", "/bin/sh", "-c", f"sudo -S -k /bin/echo {token}-sudo", user,
        input="sst-password\n", check=False,
    )  # fmt: skip
    assert sudo.returncode != 0

    called = shell(modules, cwd=project, env=env).stdout
    assert called.count(f"{host} | SUCCESS") == 2, called
    assert '"summary": "ok: nobody' in called and LAYOUT["launcher"] in called
    (project / "examples.yml").write_text(yaml.safe_dump(examples_playbook(collection), sort_keys=False))
    run("ansible-playbook", "-i", "inventory", "examples.yml", cwd=project, env=env)

    # ansible-core 2.18 (no bundled collections): the podman connection is the harness's, not the user's.
    harness = tmp_path / "harness/ansible_collections/containers"
    shutil.copytree(BUNDLED / "containers/podman", harness / "podman")
    old = tool_env(Path(f"{project / 'collections'}:{tmp_path / 'harness'}"), "2.18")
    converged = run("ansible-playbook", "-i", "inventory", "site.yml", cwd=project, env=old, timeout=900)
    assert re.search(rf"{re.escape(host)}\s+: ok=\d+\s+changed=0\s", converged.stdout), converged.stdout
    reported = run("ansible-playbook", "-i", "inventory", f"{FQCN}.report", cwd=project, env=old).stdout
    assert "records on 1 hosts" in reported
    for module in ("mta_facts", "sendmail_probe"):
        run("ansible", "all", "-i", "inventory", "-b", "-m", f"{FQCN}.{module}", cwd=project, env=old)

    refused = wait_for_record(host, f"{token}-sudo", timeout=30)
    assert "user NOT in sudoers" in refused["message"]
    uid = podman("exec", host, "id", "-u", user).stdout.strip()
    assert refused["user"]["id"] == uid
    cron = wait_for_record(host, f"{token}-cron", timeout=90)
    assert cron["user"]["id"] == uid
    assert cron["process"]["parent"]["name"] == "cron"

    try:
        plain = {"VERSION": deb_version, "PY_COLORS": "0", "NO_COLOR": "1"}
        tested = shell(molecule, cwd=project, env={**env, **plain}, timeout=1200)
    finally:
        podman("rm", "-f", "-t", "5", "sendmail-shim-example", check=False)
    assert "sendmail-shim-example  ok: nobody" in tested.stdout + tested.stderr
