# SPDX-License-Identifier: MIT
"""The resident recorder (docs/recorder.md) as the package runs it under systemd: its socket, the callers
that only it can serve, its fallback from inside the sandbox and the exec path when its socket is
stopped. All but the socket's state run where the scenario sets sst_recorder_callers (one host is
enough: the package, not the role, decides what they show)."""

import time

import pytest
from conftest import (
    LAYOUT,
    LOG,
    SERVICE_GROUP,
    SERVICE_USER,
    TEST_USER,
    as_user,
    host_vars,
    recorder_on,
    token,
    uid_of,
    wait_for_record,
)

SOCKET_PATH = LAYOUT["recorder_socket_path"]
SOCKET_UNIT = LAYOUT["recorder_socket"]
SERVICE_UNIT = LAYOUT["recorder_service"]


def message(subject):
    return f"printf 'Subject: {subject}\\n\\nbody\\n'"


def unit_state(host, unit):
    enabled = host.run(f"systemctl is-enabled {unit}").stdout.strip()
    active = host.run(f"systemctl is-active {unit}").stdout.strip()
    return enabled, active


@pytest.fixture
def caller_host(shim_host):
    if not host_vars(shim_host).get("sst_recorder_callers"):
        pytest.skip("the NoNewPrivileges callers are checked in the package scenario")
    return shim_host


def test_recorder_socket_is_enabled_active_and_trusted_where_it_is_on(shim_host):
    if not recorder_on(shim_host):
        pytest.skip("the role turned the recorder off here")
    assert unit_state(shim_host, SOCKET_UNIT) == ("enabled", "active")
    socket = shim_host.file(SOCKET_PATH)
    assert socket.is_socket and not socket.is_symlink
    assert (socket.user, socket.group, socket.mode) == (SERVICE_USER, SERVICE_GROUP, 0o666)
    # What the launcher trusts: a directory that only root can change.
    directory = shim_host.file(SOCKET_PATH.rsplit("/", 1)[0])
    assert (directory.user, directory.group, directory.mode) == ("root", "root", 0o755)


def test_recorder_socket_is_disabled_stopped_and_gone_where_the_role_turned_it_off(shim_host):
    if recorder_on(shim_host):
        pytest.skip("the recorder is on here")
    assert unit_state(shim_host, SOCKET_UNIT) == ("disabled", "inactive")
    assert unit_state(shim_host, SERVICE_UNIT)[1] == "inactive"
    assert not shim_host.file(SOCKET_PATH).exists


def test_setpriv_no_new_privs_caller_lands_with_its_uid(caller_host):
    subject = token("setpriv")
    sent = caller_host.run(
        f"{message(subject)} | setpriv --no-new-privs --reuid={TEST_USER} --regid={TEST_USER} --init-groups"
        " /usr/sbin/sendmail -i root"
    )
    assert sent.rc == 0, sent.stderr
    record = wait_for_record(caller_host, subject, timeout=10)
    assert record["user"]["id"] == str(uid_of(caller_host, TEST_USER))
    assert record["user"]["name"] == TEST_USER
    assert record["sendmail_shim"]["entry"] == "recorder"


def test_hardened_transient_unit_lands_with_its_uid(caller_host):
    # The bus that systemd-run talks to (installed by the scenario; Debian does not start it on installation).
    caller_host.check_output("systemctl start dbus.socket dbus.service")
    subject = token("systemd-run")
    sent = caller_host.run(
        f"{message(subject)} | systemd-run --quiet --wait --pipe -p NoNewPrivileges=yes -p User={TEST_USER}"
        " /usr/sbin/sendmail -i root"
    )
    assert sent.rc == 0, sent.stderr
    record = wait_for_record(caller_host, subject, timeout=10)
    assert record["user"]["id"] == str(uid_of(caller_host, TEST_USER))
    assert record["sendmail_shim"]["entry"] == "recorder"


def test_with_the_socket_stopped_mail_takes_the_exec_path(caller_host):
    caller_host.check_output(f"systemctl stop {SOCKET_UNIT}")
    try:
        # The service stops with its socket (Requires=), and the socket's file goes with it.
        assert unit_state(caller_host, SERVICE_UNIT)[1] == "inactive"
        assert not caller_host.file(SOCKET_PATH).exists
        subject = token("exec-path")
        sent = caller_host.run(as_user(TEST_USER, f"{message(subject)} | /usr/sbin/sendmail -i root"))
        assert sent.rc == 0, sent.stderr
        record = wait_for_record(caller_host, subject, timeout=10)
        assert record["user"]["id"] == str(uid_of(caller_host, TEST_USER))
        assert record["sendmail_shim"]["entry"] == "exec"
        # Without the recorder a caller that cannot gain privilege is told its message was not logged.
        refused = token("no-new-privs-exec")
        sent = caller_host.run(
            f"{message(refused)} | setpriv --no-new-privs --reuid={TEST_USER} --regid={TEST_USER}"
            " --init-groups /usr/sbin/sendmail -i root"
        )
        assert sent.rc == 75
    finally:
        caller_host.check_output(f"systemctl start {SOCKET_UNIT}")
    subject = token("restarted")
    caller_host.check_output(f"{message(subject)} | /usr/sbin/sendmail -i root")
    assert wait_for_record(caller_host, subject, timeout=10)["sendmail_shim"]["entry"] == "recorder"


def test_recorder_falls_back_to_syslog_from_inside_its_sandbox(caller_host):
    # The log refuses the dedicated user for a moment: the recorder's fallback must reach /dev/log
    # through its private /dev, and the caller learn that its message is not in the log.
    caller_host.check_output(f"chmod 0440 {LOG}")
    try:
        subject = token("recorder-fallback")
        sent = caller_host.run(as_user(TEST_USER, f"{message(subject)} | /usr/sbin/sendmail -i root"))
    finally:
        caller_host.check_output(f"chmod 0640 {LOG}")
    assert sent.rc == 75, sent.stderr
    assert "kept in syslog" in sent.stderr
    deadline = time.monotonic() + 10
    while True:
        journal = caller_host.check_output("journalctl -q -o cat --no-pager -t sendmail-shim")
        kept = [line for line in journal.splitlines() if subject in line]
        if kept or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert kept and all('"entry":"recorder"' in line for line in kept), journal[-2000:]
