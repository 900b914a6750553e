# SPDX-License-Identifier: MIT
"""A host that the role's release before the package converged is on the package, with nothing of the old
set-up left (the migrate scenario)."""

import pytest
from conftest import LAUNCHER, LAYOUT, PACKAGE, host_vars


@pytest.fixture
def migrated_host(shim_host):
    if not host_vars(shim_host).get("sst_migrated_from"):
        pytest.skip("this scenario's host was not converged by an earlier release")
    return shim_host


def test_old_swap_package_is_gone(migrated_host):
    assert not migrated_host.package("sendmail-shim-mta").is_installed


def test_only_the_package_launcher_is_a_sendmail_alternative(migrated_host):
    query = migrated_host.check_output(f"update-alternatives --query {LAYOUT['alternative']['name']}")
    choices = [line.split(": ", 1)[1] for line in query.splitlines() if line.startswith("Alternative: ")]
    assert choices == [LAUNCHER]
    assert "Status: auto" in query


def test_old_launcher_path_is_now_the_package_admin_command(migrated_host):
    admin = migrated_host.file(LAYOUT["admin_command"])
    assert migrated_host.check_output(f"dpkg-query --search {admin.path}").split(":")[0] == PACKAGE
    assert admin.mode & 0o6000 == 0


def test_build_and_swap_leftovers_are_gone(migrated_host):
    state_dir = LAYOUT["state_dir"]
    for path in (
        f"{state_dir}/launcher.stamp",
        f"{state_dir}/launcher-build",
        f"{state_dir}/mta-package",
        f"{state_dir}/sendmail-shim-mta.deb",
        f"/etc/systemd/system/{LAYOUT['listener_socket']}",
        f"/etc/systemd/system/{LAYOUT['listener_service']}",
    ):
        assert not migrated_host.file(path).exists, path


def test_every_shim_module_and_package_file_is_the_package_own(migrated_host):
    modules = migrated_host.check_output(f"find {LAYOUT['libdir']} -name '*.py'").split()
    owned = set(migrated_host.check_output(f"dpkg-query --listfiles {PACKAGE}").split())
    assert modules
    assert sorted(set(modules) - owned) == []
    # Checksums of every file, the conffiles included: the old role's config and logrotate file were
    # not kept in place of the package's.
    assert migrated_host.check_output(f"dpkg --verify {PACKAGE}") == ""
