# SPDX-License-Identifier: MIT
"""The built package, checked as a file: control fields, file list, modes, maintainer scripts, lintian;
and the launcher of every built architecture, read with readelf.

`make packages` builds them, for the host's architecture and arm64 (make test does that first); these
tests do not rebuild them.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.container

REPO = Path(__file__).resolve().parents[2]
SHIM = REPO / "files" / "sendmail_shim"
LAYOUT = json.loads((SHIM / "layout.json").read_text())
# The development version make package stamps on this tree.
VERSION = subprocess.run(
    [sys.executable, REPO / "scripts" / "version.py"], check=True, capture_output=True, text=True
).stdout.strip()
HOST_ARCH = subprocess.run(
    ["dpkg", "--print-architecture"], check=True, capture_output=True, text=True
).stdout.strip()
# The architectures make test builds, and how readelf names each one's machine.
MACHINES = {"amd64": "Advanced Micro Devices X86-64", "arm64": "AArch64"}
BUILT = sorted((REPO / "dist").glob("sendmail-shim_*.deb"))
# Debian 11's glibc: the package is built there so that one .deb runs on 11, 12 and 13.
OLDEST_GLIBC = (2, 31)
# Each unit the package ships (its layout key) and the template it is rendered from.
UNIT_TEMPLATES = {
    "listener_socket": "listener.socket.in",
    "listener_service": "listener.service.in",
    "recorder_socket": "recorder.socket.in",
    "recorder_service": "recorder.service.in",
}


@pytest.fixture(scope="module")
def deb() -> Path:
    path = REPO / "dist" / f"sendmail-shim_{VERSION}_{HOST_ARCH}.deb"
    if not path.is_file():
        pytest.fail(f"no {path.relative_to(REPO)}, this tree's build: run `make package`")
    return path


def dpkg_deb(*args) -> str:
    return subprocess.run(["dpkg-deb", *map(str, args)], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def members(deb) -> dict[str, tarfile.TarInfo]:
    archive = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name.removeprefix(".").rstrip("/") or "/": m for m in tar}


@pytest.fixture(scope="module")
def control(deb, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("control")
    subprocess.run(["dpkg-deb", "--control", str(deb), str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def extracted(deb, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data")
    subprocess.run(["dpkg-deb", "--extract", str(deb), str(path)], check=True)
    return path


def field(deb, name) -> str:
    return dpkg_deb("--field", deb, name).strip()


def test_control_fields(deb):
    assert field(deb, "Package") == LAYOUT["package"]
    assert field(deb, "Version") == VERSION
    assert field(deb, "Architecture") == HOST_ARCH
    for relation in ("Provides", "Conflicts", "Replaces"):
        assert field(deb, relation) == "mail-transport-agent"
    depends = [d.strip().split()[0] for d in field(deb, "Depends").split(",")]
    assert {"adduser", "python3", "libc6"} <= set(depends)


def expected_files() -> set[str]:
    package_dir = f"{LAYOUT['libdir']}/sendmail_shim"
    files = {f"{package_dir}/{p.name}" for p in [*SHIM.glob("*.py"), SHIM / "layout.json"]}
    units = LAYOUT["systemd_unit_dir"]
    files |= {
        LAYOUT["launcher"],
        LAYOUT["admin_command"],
        LAYOUT["config"],
        LAYOUT["logrotate"],
        *(f"{units}/{LAYOUT[unit]}" for unit in UNIT_TEMPLATES),
        "/usr/share/doc/sendmail-shim/changelog.gz",
        "/usr/share/doc/sendmail-shim/copyright",
        "/usr/share/lintian/overrides/sendmail-shim",
    }
    return files


def test_file_list_is_exactly_the_layout(members):
    files = {name for name, m in members.items() if not m.isdir()}
    assert files == expected_files()
    dirs = {name for name, m in members.items() if m.isdir()}
    # The drop-in directory is shipped (empty) so that dpkg owns it; state and log are made in postinst.
    assert LAYOUT["config_dir"] in dirs
    assert not {LAYOUT["state_dir"], LAYOUT["log_dir"]} & (dirs | files)


def test_everything_is_root_owned_and_nothing_is_set_id_in_the_archive(members):
    # The launcher's privilege is a statoverride of postinst: the group does not exist at build time.
    for name, m in members.items():
        assert (m.uname, m.gname, m.uid, m.gid) == ("root", "root", 0, 0), name
        assert m.mode & 0o7000 == 0, name
        executable = {LAYOUT["launcher"], LAYOUT["admin_command"]}
        want = 0o755 if m.isdir() or name in executable else 0o644
        assert m.mode == want, f"{name}: {oct(m.mode)}"


def test_conffiles_are_the_config_and_logrotate_only(control):
    assert sorted((control / "conffiles").read_text().split()) == sorted(
        [LAYOUT["config"], LAYOUT["logrotate"]]
    )


def test_both_architectures_are_built_from_this_tree():
    built = {deb.name for deb in BUILT}
    want = {f"sendmail-shim_{VERSION}_{arch}.deb" for arch in {HOST_ARCH, "arm64"}}
    assert want <= built, f"dist/ holds {sorted(built)}: run `make packages`"


def readelf(*args) -> str:
    return subprocess.run(
        ["readelf", "-W", *map(str, args)], check=True, capture_output=True, text=True
    ).stdout


@pytest.mark.parametrize("built_deb", BUILT, ids=[deb.name for deb in BUILT])
def test_every_launcher_is_hardened_for_its_architecture_and_runs_on_the_oldest_suite(built_deb, tmp_path):
    # readelf reads every architecture's ELF files: an x86 launcher in an arm64 package fails here.
    subprocess.run(["dpkg-deb", "--extract", str(built_deb), str(tmp_path)], check=True)
    launcher = tmp_path / LAYOUT["launcher"].lstrip("/")
    header = readelf("-h", launcher)
    machine = re.search(r"^\s*Machine:\s*(.+)$", header, re.MULTILINE).group(1).strip()
    assert machine == MACHINES[field(built_deb, "Architecture")]
    assert re.search(r"^\s*Type:\s*DYN ", header, re.MULTILINE)
    assert re.search(r"\(FLAGS\).*BIND_NOW", readelf("-d", launcher))
    assert "GNU_RELRO" in readelf("-l", launcher)
    symbols = readelf("--dyn-syms", launcher)
    imports = re.findall(r" UND (\S+?)@", symbols)
    assert "__stack_chk_fail" in imports
    assert [name for name in imports if re.fullmatch(r"__\w+_chk", name) and name != "__stack_chk_fail"]
    needed = {
        tuple(map(int, v.split(".")))
        for v in re.findall(r"@GLIBC_([0-9.]+)", readelf("--dyn-syms", launcher))
    }
    assert needed and max(needed) <= OLDEST_GLIBC


def test_launcher_has_the_layout_compiled_in(extracted):
    launcher = extracted / LAYOUT["launcher"].lstrip("/")
    strings = launcher.read_bytes()
    for path in (LAYOUT["python"], LAYOUT["entry"], LAYOUT["state_dir"], LAYOUT["recorder_socket_path"]):
        assert path.encode() + b"\0" in strings, path


def test_maintainer_scripts_parse_and_carry_the_layout(control):
    for script in ("postinst", "prerm", "postrm"):
        path = control / script
        assert path.stat().st_mode & 0o777 == 0o755
        subprocess.run(["sh", "-n", str(path)], check=True)
        assert "@" + "maintainer_functions@" not in path.read_text()
    postinst = (control / "postinst").read_text()
    alternative = LAYOUT["alternative"]
    slaves = " ".join(f"--slave {s['link']} {s['name']} {LAYOUT['launcher']}" for s in alternative["slaves"])
    master = f"{alternative['link']} {alternative['name']} {LAYOUT['launcher']} {alternative['priority']}"
    assert f"--install {master}" in postinst
    assert slaves in postinst
    assert f"dpkg-statoverride --update --add root {LAYOUT['group']} 6755 {LAYOUT['launcher']}" in postinst


def test_purge_removes_the_log_before_the_user(control):
    postrm = (control / "postrm").read_text()
    purge = postrm[postrm.index("sendmail_shim_purge() {") :]
    assert purge.index(f"rm -rf {LAYOUT['log_dir']}") < purge.index("deluser")


def debhelper_blocks(script: str) -> list[str]:
    """The blocks that dh_installsystemd added to a maintainer script, each as its text."""
    return re.findall(
        r"# Automatically added by dh_installsystemd[^\n]*\n(.*?)# End automatically added", script, re.S
    )


def test_listener_is_neither_enabled_nor_started_by_postinst(control):
    # dh_installsystemd --no-enable --no-start: only an administrator's earlier choice is re-applied.
    socket = LAYOUT["listener_socket"]
    postinst = (control / "postinst").read_text()
    assert f"deb-systemd-helper --quiet was-enabled '{socket}'" in postinst
    for block in debhelper_blocks(postinst):
        if f"'{socket}'" in block:
            assert "deb-systemd-invoke" not in block
            assert block.count("deb-systemd-helper enable") == block.count("--quiet was-enabled")
            assert "debian-installed" in block
    assert f"start '{socket}'" not in postinst and "systemctl start" not in postinst


def test_recorder_socket_is_enabled_and_started_on_installation_and_its_service_is_not(control):
    socket, service = LAYOUT["recorder_socket"], LAYOUT["recorder_service"]
    postinst = (control / "postinst").read_text()
    (enable,) = [b for b in debhelper_blocks(postinst) if f"deb-systemd-helper enable '{socket}'" in b]
    # was-enabled answers yes on a first installation; an administrator's disable outlives upgrades.
    assert "debian-installed" not in enable
    (start,) = [b for b in debhelper_blocks(postinst) if "deb-systemd-invoke start" in b]
    # Only where systemd runs: image builds and init-less containers install without starting anything.
    assert start.lstrip().startswith('if [ "$1" = "configure" ]')
    assert "if [ -d /run/systemd/system ]; then" in start
    assert f"deb-systemd-invoke start '{socket}'" in start
    # The service starts on the first connection, not on installation.
    assert service not in postinst


def test_recorder_socket_is_stopped_before_removal_and_before_an_upgrade_unpacks(control):
    # The service Requires= its socket and stops with it; the launcher meanwhile takes the exec path.
    prerm = (control / "prerm").read_text()
    (stop,) = [b for b in debhelper_blocks(prerm) if "deb-systemd-invoke stop" in b]
    assert stop.strip().splitlines() == [
        "if [ -d /run/systemd/system ]; then",
        f"\tdeb-systemd-invoke stop '{LAYOUT['recorder_socket']}' >/dev/null || true",
        "fi",
    ]


def test_purge_forgets_the_recorder_socket_and_removes_its_directory(control):
    postrm = (control / "postrm").read_text()
    assert f"deb-systemd-helper purge '{LAYOUT['recorder_socket']}'" in postrm
    purge = postrm[postrm.index("sendmail_shim_purge() {") :]
    directory = LAYOUT["recorder_socket_path"].rsplit("/", 1)[0]
    assert f"rmdir {directory} " in purge


def test_unit_files_are_the_rendered_templates(extracted):
    units = extracted / LAYOUT["systemd_unit_dir"].lstrip("/")
    for key, template in UNIT_TEMPLATES.items():
        rendered = subprocess.run(
            [
                sys.executable,
                REPO / "scripts" / "install-tree.py",
                "render",
                REPO / "files" / "package" / template,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert (units / LAYOUT[key]).read_text() == rendered, key


def test_lintian_reports_no_error(deb):
    if shutil.which("lintian") is None:
        pytest.fail("lintian is missing: scripts/bootstrap.sh installs it")
    proc = subprocess.run(["lintian", "--fail-on", "error", str(deb)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    assert not [line for line in proc.stdout.splitlines() if line.startswith("E:")]


def test_every_lintian_override_says_why():
    commented = False
    for line in (REPO / "debian" / "sendmail-shim.lintian-overrides").read_text().splitlines():
        if line.startswith("#"):
            commented = True
        elif not line.strip():
            commented = False
        else:
            assert commented, f"lintian override without a comment above it: {line}"


def test_the_package_says_mit_and_carries_its_stamped_version(extracted):
    copyright_file = extracted / "usr/share/doc/sendmail-shim/copyright"
    assert copyright_file.read_text() == (REPO / "debian" / "copyright").read_text()
    init = extracted / LAYOUT["libdir"].lstrip("/") / "sendmail_shim" / "__init__.py"
    assert f'\n__version__ = "{VERSION}"\n' in init.read_text()


def test_a_plain_git_archive_export_builds_with_debian_tools():
    # The README's commands on HEAD's export, in make package's Debian 11 builder (its build dependencies
    # are in place, so apt-get build-dep has nothing to fetch).
    builder = re.search(r"^builder=(\S+)$", (REPO / "scripts/build-package.sh").read_text(), re.MULTILINE)[1]
    export = ["git", "-C", str(REPO), "archive", "--prefix=sendmail-shim/", "HEAD"]
    archive = subprocess.run(export, check=True, capture_output=True).stdout
    script = (
        "tar -x -C /tmp && cd /tmp/sendmail-shim\n"
        "apt-get build-dep -y ./ && dpkg-buildpackage -us -uc -b\n"
        "dpkg-deb --field ../sendmail-shim_*.deb Version Architecture"
    )
    build = subprocess.run(
        ["podman", "run", "--rm", "-i", builder, "sh", "-ec", script], input=archive, capture_output=True
    )
    assert build.returncode == 0, build.stderr.decode(errors="replace")[-3000:]
    committed = re.match(r"sendmail-shim \(([^)]+)\)", (REPO / "debian/changelog").read_text())[1]
    assert build.stdout.decode().splitlines()[-2:] == [f"Version: {committed}", f"Architecture: {HOST_ARCH}"]
