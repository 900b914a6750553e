# SPDX-License-Identifier: MIT
"""What a host must show after the role ran with state absent."""

from conftest import LAUNCHER, LAYOUT, LOG, PACKAGE, ROLE_CONFIG, SERVICE_USER, host_vars


def test_package_and_role_files_are_gone(clean_host):
    assert not clean_host.package(PACKAGE).is_installed
    for path in (
        LAUNCHER,
        LAYOUT["libdir"],
        ROLE_CONFIG,
        "/etc/filebeat/inputs.d/sendmail-shim.yml",
        LAYOUT["apt_source"],
        LAYOUT["apt_preferences"],
        LAYOUT["apt_keyring"],
    ):
        assert not clean_host.file(path).exists, path


def test_launcher_left_no_alternative_or_statoverride(clean_host):
    query = clean_host.run(f"update-alternatives --query {LAYOUT['alternative']['name']}")
    assert LAUNCHER not in query.stdout
    assert LAUNCHER not in clean_host.run("dpkg-statoverride --list").stdout


def test_log_and_its_user_are_kept_until_purge(clean_host):
    assert clean_host.file(LOG).is_file
    assert clean_host.user(SERVICE_USER).exists


def test_named_mta_came_back_and_owns_sendmail(clean_host):
    restored = host_vars(clean_host)["sst_restore_mta"]
    assert clean_host.package(restored).is_installed
    owner = clean_host.check_output(f"dpkg-query -S {LAYOUT['alternative']['link']}")
    assert owner.split(":")[0].startswith(restored.split("-")[0])
    assert clean_host.run("printf 'Subject: back\\n\\nx\\n' | /usr/sbin/sendmail root").rc == 0
