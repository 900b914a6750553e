# SPDX-License-Identifier: MIT
"""What every converged host must show, whatever MTA it had before (issue 6's verify list)."""

import json

import pytest
import yaml
from conftest import (
    CONFIG,
    LAUNCHER,
    LAYOUT,
    LOG,
    LOG_DIR,
    PACKAGE,
    READER_GROUP,
    ROLE_CONFIG,
    SERVICE_GROUP,
    SERVICE_USER,
    SHIM_DIR,
    TEST_PASSWORD,
    TEST_USER,
    as_user,
    debian_version,
    expected_arch,
    expected_entry,
    host_vars,
    listening_tcp_ports,
    newest_deb,
    process_names,
    read_records,
    token,
    uid_of,
    wait_for_record,
)


def subject_of(record):
    return record.get("email", {}).get("subject", "")


MTA_DAEMONS = ("exim4", "master", "sendmail-mta", "nullmailer-send", "opensmtpd", "smtpd")


def test_previous_mta_packages_are_gone(shim_host):
    for package in host_vars(shim_host).get("sst_previous_mta_packages", []):
        assert not shim_host.package(package).is_installed, package


def test_no_mta_daemon_runs(shim_host):
    running = process_names(shim_host)
    assert "systemd" in running or "init" in running
    assert not set(running) & set(MTA_DAEMONS)


def test_port_25_listens_only_for_the_role_listener(shim_host):
    listening = listening_tcp_ports(shim_host)
    assert (25 in listening) == bool(host_vars(shim_host).get("sendmail_shim_listener_enabled"))


def test_mail_clients_are_still_installed(shim_host):
    for package in host_vars(shim_host).get("sst_mail_client_packages", []):
        assert shim_host.package(package).is_installed, package


def test_the_package_is_installed_for_the_hosts_architecture_and_owns_the_shim_and_the_launcher(shim_host):
    assert shim_host.check_output("dpkg --print-architecture") == expected_arch(shim_host)
    assert shim_host.package(PACKAGE).is_installed
    installed_arch = shim_host.check_output(f"dpkg-query --showformat '${{Architecture}}' --show {PACKAGE}")
    assert installed_arch == expected_arch(shim_host)
    for path in (LAUNCHER, f"{SHIM_DIR}/__main__.py", CONFIG):
        assert shim_host.check_output(f"dpkg-query --search {path}").split(":")[0] == PACKAGE, path


def test_the_package_came_from_the_source_the_role_was_given(shim_host):
    if host_vars(shim_host).get("sst_package_scenario"):
        pytest.skip("the package was installed without the role here")
    installed = shim_host.check_output(f"dpkg-query --showformat '${{Version}}' --show {PACKAGE}")
    if host_vars(shim_host).get("sendmail_shim_package_source") == "repository":
        # The signed release's version, pinned to that repository; apt trusts it by the role's key only.
        policy = shim_host.check_output(f"apt-cache policy {PACKAGE}")
        assert f"Candidate: {installed}" in policy
        assert f"*** {installed} 990" in policy
        assert f"{host_vars(shim_host)['sst_release_url']}/release/apt" in policy
        source = shim_host.file(LAYOUT["apt_source"]).content_string
        assert f"Signed-By: {LAYOUT['apt_keyring']}" in source
        assert not [line for line in source.splitlines() if line.lower().startswith("trusted:")]
        key = shim_host.file(LAYOUT["apt_keyring"])
        assert (key.user, key.group, key.mode) == ("root", "root", 0o644)
    else:
        # The newest .deb of dist/ for the host's architecture, the role's default.
        assert installed == debian_version.deb_version(newest_deb(expected_arch(shim_host)))


def test_no_other_repository_supplies_the_package_under_the_pin(shim_host):
    if host_vars(shim_host).get("sendmail_shim_package_source") != "repository":
        pytest.skip("the role pins the package only to its signed repository")
    # Another repository offering a higher version: an index is enough for apt's choice.
    stanza = f"Package: {PACKAGE}\\nVersion: 99.0\\nArchitecture: all\\nFilename: ./x.deb\\nSize: 1\\n"
    other = "/etc/apt/sources.list.d/sst-other.list"
    shim_host.check_output(
        f"mkdir -p /srv/sst-other && printf '{stanza}' >/srv/sst-other/Packages"
        f" && echo 'deb [trusted=yes] file:/srv/sst-other ./' >{other} && apt-get update -qq"
    )
    try:
        policy = shim_host.check_output(f"apt-cache policy {PACKAGE}")
    finally:
        shim_host.check_output(f"rm -rf {other} /srv/sst-other && apt-get update -qq")
    assert "99.0 -1" in policy
    assert "Candidate: 99.0" not in policy


def test_sendmail_names_resolve_through_alternatives_to_the_launcher(shim_host):
    alternative = LAYOUT["alternative"]
    query = shim_host.check_output(f"update-alternatives --query {alternative['name']}")
    assert f"Value: {LAUNCHER}" in query
    for link in [alternative["link"]] + [slave["link"] for slave in alternative["slaves"]]:
        assert shim_host.file(link).is_symlink, link
        assert shim_host.check_output(f"readlink -f {link}") == LAUNCHER, link


def test_launcher_is_setuid_root_setgid_service_group_and_not_writable_by_others(shim_host):
    launcher = shim_host.file(LAUNCHER)
    assert (launcher.user, launcher.group, launcher.mode) == ("root", SERVICE_GROUP, 0o6755)


def test_shim_and_config_are_root_owned_read_only_for_others(shim_host):
    for path in (f"{SHIM_DIR}/__main__.py", CONFIG):
        f = shim_host.file(path)
        assert (f.user, f.group, f.mode) == ("root", "root", 0o644), path
    writable = shim_host.check_output(f"find {SHIM_DIR} -perm /022 -o ! -user root")
    assert writable == ""


def test_role_config_drop_in_is_root_owned_and_holds_the_role_values(shim_host):
    if host_vars(shim_host).get("sst_package_scenario"):
        pytest.skip("the package was installed without the role here")
    drop_in = shim_host.file(ROLE_CONFIG)
    assert (drop_in.user, drop_in.group, drop_in.mode) == ("root", "root", 0o644)
    assert "max_line_bytes = 10000000" in drop_in.content_string.splitlines()
    # Without a file argument the shim's checker reads the whole set: the package's file and the drop-ins.
    check = shim_host.run(f"env PYTHONPATH={LAYOUT['libdir']} python3 -m sendmail_shim.config")
    assert (check.rc, check.stderr) == (0, "")


def test_log_is_readable_by_owner_reader_group_and_root_only(shim_host):
    log_dir, log = shim_host.file(LOG_DIR), shim_host.file(LOG)
    assert (log_dir.user, log_dir.group, log_dir.mode) == (SERVICE_USER, READER_GROUP, 0o2750)
    assert (log.user, log.group, log.mode) == (SERVICE_USER, READER_GROUP, 0o640)


def test_unprivileged_user_cannot_read_the_log(shim_host):
    result = shim_host.run(as_user(TEST_USER, f"cat {LOG}"))
    assert result.rc != 0
    assert "Permission denied" in result.stderr


def test_sudo_refusal_is_mailed_with_the_callers_identity(shim_host, mail_entry):
    refused = token("sudo")
    shim_host.run(as_user(TEST_USER, f"echo {TEST_PASSWORD} | sudo -S -k /bin/echo {refused}"))
    record = wait_for_record(shim_host, refused, entry=mail_entry)
    assert "user NOT in sudoers" in record["message"]
    assert TEST_USER in record["message"]
    assert record["process"]["parent"]["name"] == "sudo"
    assert record["user"]["id"] == str(uid_of(shim_host, TEST_USER))
    assert record["user"]["name"] == TEST_USER
    assert "-t" in record["process"]["args"]


def test_cron_job_output_is_mailed_as_the_jobs_user(shim_host, cron_tokens, mail_entry):
    cron_token = cron_tokens[host_vars(shim_host)["inventory_hostname"]]
    record = wait_for_record(shim_host, cron_token, timeout=90, entry=mail_entry)
    assert record["user"]["id"] == str(uid_of(shim_host, TEST_USER))
    assert record["process"]["parent"]["name"] == "cron"
    assert record["email"]["subject"].startswith(f"Cron <{TEST_USER}@")
    assert "-FCronDaemon" in record["process"]["args"]


def test_mail_command_records_subject_and_user(shim_host):
    if not host_vars(shim_host).get("sst_mail_client_packages"):
        pytest.skip("this scenario's host has no mail(1)")
    subject = token("mailx")
    shim_host.check_output(as_user(TEST_USER, f"echo body | mail -s {subject} root"))
    record = wait_for_record(shim_host, subject, timeout=10)
    assert record["email"]["subject"] == subject
    assert record["user"]["name"] == TEST_USER
    assert record["sendmail_shim"]["entry"] == expected_entry(shim_host)
    assert "root" in record["sendmail_shim"]["envelope"]["recipients"]


def test_smtp_dialogue_on_stdio_records_the_envelope(shim_host):
    subject = token("smtp")
    dialogue = (
        "EHLO client.example\\r\\nMAIL FROM:<app@example.org>\\r\\nRCPT TO:<ops@example.org>\\r\\n"
        f"DATA\\r\\nSubject: {subject}\\r\\n\\r\\nhello\\r\\n.\\r\\nQUIT\\r\\n"
    )
    replies = shim_host.check_output(as_user(TEST_USER, f"printf '{dialogue}' | /usr/sbin/sendmail -bs"))
    codes = [line[:3] for line in replies.splitlines() if line[3:4] == " "]
    assert codes == ["220", "250", "250", "250", "354", "250", "221"]
    record = wait_for_record(shim_host, subject, timeout=10)
    assert record["sendmail_shim"]["envelope"]["sender"] == "app@example.org"
    assert record["sendmail_shim"]["envelope"]["recipients"] == ["ops@example.org"]
    # -bs through the passed fds: the recorder holds the dialogue on the caller's stdin and stdout.
    assert record["sendmail_shim"]["entry"] == expected_entry(shim_host)


def test_mailq_says_the_queue_is_empty_and_newaliases_succeeds(shim_host):
    mailq = shim_host.run(as_user(TEST_USER, "mailq"))
    assert mailq.rc == 0
    assert "empty" in mailq.stdout.lower()
    assert shim_host.run("newaliases").rc == 0


def test_forced_rotation_loses_nothing(shim_host):
    before = token("before-rotate")
    shim_host.check_output(f"printf 'Subject: {before}\\n\\nx\\n' | /usr/sbin/sendmail root")
    shim_host.check_output(f"logrotate -f {LAYOUT['logrotate']}")
    after = token("after-rotate")
    shim_host.check_output(f"printf 'Subject: {after}\\n\\nx\\n' | /usr/sbin/sendmail root")
    current = [subject_of(r) for r in read_records(shim_host)]
    rotated = [subject_of(r) for r in read_records(shim_host, f"{LOG}.1")]
    assert after in current
    assert before not in current
    assert before in rotated
    assert shim_host.file(LOG).mode == 0o640


def test_filebeat_input_has_the_required_keys(shim_host):
    if host_vars(shim_host).get("sst_package_scenario"):
        pytest.skip("the package was installed without the role here")
    path = host_vars(shim_host).get("sst_filebeat_input", "/etc/filebeat/inputs.d/sendmail-shim.yml")
    inputs = yaml.safe_load(shim_host.file(path).content_string)
    assert isinstance(inputs, list)
    (stream,) = [i for i in inputs if i["type"] == "filestream"]
    assert stream["id"]
    assert stream["paths"] == [LOG]
    (parser,) = stream["parsers"]
    assert parser["ndjson"]["target"] == ""
    assert parser["ndjson"]["add_error_key"] is True


def test_records_are_strict_json_with_the_ecs_core_fields(shim_host):
    records = read_records(shim_host)
    assert records
    for record in records:
        json.dumps(record, allow_nan=False)
        assert record["event"]["dataset"]
        assert record["host"]["hostname"]
        assert record["email"]["direction"] == "outbound"
