"""What a host must show after the role ran with state absent."""

from conftest import CONFIG, LAUNCHER, LOG, SERVICE_USER, SHIM_DIR, host_vars


def test_role_files_are_gone(clean_host):
    for path in (LAUNCHER, SHIM_DIR, CONFIG, "/etc/logrotate.d/sendmail-shim"):
        assert not clean_host.file(path).exists, path


def test_sendmail_alternative_is_gone(clean_host):
    assert clean_host.run("update-alternatives --query sendmail").rc != 0


def test_swap_package_and_service_user_are_gone(clean_host):
    assert not clean_host.package("sendmail-shim-mta").is_installed
    assert not clean_host.user(SERVICE_USER).exists


def test_log_is_kept(clean_host):
    assert clean_host.file(LOG).is_file


def test_named_mta_came_back_and_owns_sendmail(clean_host):
    restored = host_vars(clean_host)["sst_restore_mta"]
    assert clean_host.package(restored).is_installed
    owner = clean_host.check_output("dpkg-query -S /usr/sbin/sendmail")
    assert owner.split(":")[0].startswith(restored.split("-")[0])
    assert clean_host.run("printf 'Subject: back\\n\\nx\\n' | /usr/sbin/sendmail root").rc == 0
