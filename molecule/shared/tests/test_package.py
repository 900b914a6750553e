# SPDX-License-Identifier: MIT
"""What only the package scenario shows: the package installed with plain apt, upgraded from an older
build (molecule/package/converge.yml) with the administrator's changes kept. Skipped elsewhere."""

import subprocess
from pathlib import Path

import pytest
from conftest import CONFIG, LAUNCHER, LAYOUT, LOG, PACKAGE, SERVICE_GROUP, SERVICE_USER, host_vars

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def package_host(shim_host):
    if not host_vars(shim_host).get("sst_package_scenario"):
        pytest.skip("the package scenario only")
    return shim_host


def test_the_upgrade_installed_the_release_version(package_host):
    (release_deb,) = (REPO / "dist" / "release").glob(f"{PACKAGE}_*_amd64.deb")
    version = subprocess.run(
        ["dpkg-deb", "--field", release_deb, "Version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    status = package_host.check_output(f"dpkg-query -W -f '${{Version}} ${{db:Status-Abbrev}}' {PACKAGE}")
    assert status.split() == [version, "ii"]


def test_privilege_comes_from_a_statoverride_on_the_launcher(package_host):
    override = package_host.check_output(f"dpkg-statoverride --list {LAUNCHER}")
    assert override.split() == ["root", SERVICE_GROUP, "6755", LAUNCHER]


def test_state_dir_names_the_service_user(package_host):
    state = package_host.file(LAYOUT["state_dir"])
    assert state.is_directory and not state.is_symlink
    assert (state.user, state.group) == (SERVICE_USER, SERVICE_GROUP)


def test_the_upgrade_kept_the_log_the_drop_in_and_the_edited_config(package_host):
    # test_installed.py forces a rotation: the record may be in a rotated file by now.
    kept = package_host.run(f"zcat -f {LOG}* | grep -c sst-before-upgrade")
    assert kept.stdout.strip() == "1"
    assert "# sst-kept-drop-in" in package_host.file(f"{LAYOUT['config_dir']}/60-local.conf").content_string
    assert "# sst-kept-edit" in package_host.file(CONFIG).content_string
    check = package_host.run(f"env PYTHONPATH={LAYOUT['libdir']} python3 -m sendmail_shim.config")
    assert (check.rc, check.stderr) == (0, "")


def test_config_and_logrotate_are_conffiles(package_host):
    conffiles = package_host.check_output(f"dpkg-query -W -f '${{Conffiles}}' {PACKAGE}")
    assert sorted(line.split()[0] for line in conffiles.splitlines() if line.strip()) == sorted(
        [CONFIG, LAYOUT["logrotate"]]
    )


def test_shim_is_byte_compiled_for_the_hosts_python(package_host):
    tag = package_host.check_output("python3 -c 'import sys; print(sys.implementation.cache_tag)'")
    cache = package_host.file(f"{LAYOUT['libdir']}/sendmail_shim/__pycache__")
    assert cache.is_directory and (cache.user, cache.group) == ("root", "root")
    assert any(name.endswith(f".{tag}.pyc") for name in cache.listdir())


def test_listener_units_are_shipped_disabled(package_host):
    for unit in (LAYOUT["listener_socket"], LAYOUT["listener_service"]):
        assert package_host.file(f"{LAYOUT['systemd_unit_dir']}/{unit}").is_file
    socket = LAYOUT["listener_socket"]
    assert package_host.run(f"systemctl is-enabled {socket}").stdout.strip() == "disabled"
    assert package_host.run(f"systemctl is-active {socket}").stdout.strip() == "inactive"
