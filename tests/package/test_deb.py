"""The built package, checked as a file: control fields, file list, modes, maintainer scripts, lintian.

`make package` builds it (make test does that first); these tests do not rebuild it.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from sendmail_shim import __version__

pytestmark = pytest.mark.container

REPO = Path(__file__).resolve().parents[2]
SHIM = REPO / "files" / "sendmail_shim"
LAYOUT = json.loads((SHIM / "layout.json").read_text())
VERSION = __version__
# Debian 11's glibc: the package is built there so that one .deb runs on 11, 12 and 13.
OLDEST_GLIBC = (2, 31)


@pytest.fixture(scope="module")
def deb() -> Path:
    found = sorted((REPO / "dist").glob(f"sendmail-shim_{VERSION}_*.deb"))
    if len(found) != 1:
        pytest.fail(f"expected one dist/sendmail-shim_{VERSION}_*.deb, found {found}: run `make package`")
    return found[0]


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
    assert (
        field(deb, "Architecture")
        == subprocess.check_output(["dpkg", "--print-architecture"], text=True).strip()
    )
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
        f"{units}/{LAYOUT['listener_socket']}",
        f"{units}/{LAYOUT['listener_service']}",
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


def test_launcher_runs_on_the_oldest_suite_and_is_hardened(extracted):
    launcher = extracted / LAYOUT["launcher"].lstrip("/")
    symbols = subprocess.run(
        ["objdump", "-T", str(launcher)], check=True, capture_output=True, text=True
    ).stdout
    needed = {tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_([0-9.]+)", symbols)}
    assert needed and max(needed) <= OLDEST_GLIBC
    dynamic = subprocess.run(
        ["readelf", "-d", "-h", str(launcher)], check=True, capture_output=True, text=True
    )
    assert (
        "DYN (Position-Independent Executable" in dynamic.stdout
        or "Type:                              DYN" in (dynamic.stdout)
    )
    assert re.search(r"FLAGS.*BIND_NOW", dynamic.stdout)
    segments = subprocess.run(["readelf", "-l", str(launcher)], check=True, capture_output=True, text=True)
    assert "GNU_RELRO" in segments.stdout
    strings = launcher.read_bytes()
    for path in (LAYOUT["python"], LAYOUT["entry"], LAYOUT["state_dir"]):
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


def test_listener_is_not_started_by_postinst(control):
    # dh_installsystemd --no-enable --no-start: only an administrator's earlier choice is re-applied.
    postinst = (control / "postinst").read_text()
    assert "deb-systemd-invoke start" not in postinst and "systemctl start" not in postinst
    assert postinst.count("deb-systemd-helper enable") == postinst.count(
        "deb-systemd-helper --quiet was-enabled"
    )


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
