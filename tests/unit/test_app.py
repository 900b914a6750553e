# SPDX-License-Identifier: MIT
"""The shim end to end, run the way the launcher runs it: exit statuses, callers, config, trust, guard."""

import builtins
import io
import os
import pwd
import subprocess
import sys

import pytest
from sendmail_shim import app, headers
from shimtest import CRON_MESSAGE, FILES, PYTHON, config_environ, message_bytes

PHP_MESSAGE = (
    b"To: dev@example.org\nSubject: =?UTF-8?B?w6l0w6k=?=\nX-Mailer: PHP/8.2\nCc: ops@example.org\n\nHi\n"
)


def test_cron(shim):
    result = shim.run("-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root", stdin=CRON_MESSAGE)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    rec = shim.record()
    assert rec["message"] == CRON_MESSAGE.decode()
    assert rec["sendmail_shim"]["envelope"]["recipients"] == ["root"]
    assert rec["email"]["subject"] == "Cron <root@host> run-parts --report /etc/cron.daily"
    assert rec["process"]["parent"]["pid"] > 0


@pytest.mark.parametrize("args", [("-t",), ("-i", "-t"), ("-t", "-i")], ids=["sudo", "bsd-mailx", "php"])
def test_t_callers(shim, args):
    result = shim.run(*args, stdin=PHP_MESSAGE)
    assert result.returncode == 0, result.stderr
    rec = shim.record()
    assert rec["sendmail_shim"]["envelope"]["recipients"] == ["dev@example.org", "ops@example.org"]
    assert rec["email"]["subject"] == "été"
    assert rec["email"]["x_mailer"] == "PHP/8.2"


def test_t_adds_header_recipients_to_the_command_line(shim):
    shim.run("-t", "-i", "extra@x", "dev@example.org", stdin=PHP_MESSAGE)
    assert shim.record()["sendmail_shim"]["envelope"]["recipients"] == [
        "extra@x",
        "dev@example.org",
        "ops@example.org",
    ]


def test_git_send_email_and_sender(shim):
    result = shim.run("-i", "-f", "me@example.org", "a@x, B <b@y>", "c@z", stdin=b"Subject: [PATCH]\n\nx\n")
    assert result.returncode == 0, result.stderr
    envelope = shim.record()["sendmail_shim"]["envelope"]
    assert envelope == {"sender": "me@example.org", "recipients": ["a@x", "b@y", "c@z"]}


def test_default_sender_is_user_at_host(shim):
    shim.configure(hostname="box.example")
    shim.run("-i", "root", stdin=b"x")
    name = pwd.getpwuid(os.getuid()).pw_name
    assert shim.record()["sendmail_shim"]["envelope"]["sender"] == f"{name}@box.example"


def test_no_recipient_is_recorded_with_exit_0(shim):
    result = shim.run("-i", stdin=b"Subject: to nobody\n\nx\n")
    assert result.returncode == 0
    assert shim.record()["sendmail_shim"]["envelope"]["recipients"] == []


def test_unknown_option_never_fails(shim):
    result = shim.run("-Zsomething", "--long", "-i", "root", stdin=b"x")
    assert result.returncode == 0
    assert shim.record()["sendmail_shim"]["options"]["unknown"] == ["-Zsomething", "--long"]


def test_missing_option_argument_is_64_but_recorded(shim):
    result = shim.run("root", "-f", stdin=b"x")
    assert result.returncode == 64
    assert b"requires an argument" in result.stderr
    assert shim.record()["sendmail_shim"]["usage_errors"]


def test_invalid_mode_is_64(shim):
    result = shim.run("-bz", stdin=b"x")
    assert result.returncode == 64
    assert shim.records() == []


@pytest.mark.exec_only(
    reason="the launcher's SENDMAIL_SHIM_INVOKED_AS; the recorder's argv[0] is in test_recorder"
)
def test_queue_aliases_and_queue_runs(shim):
    assert shim.run("-bp").stdout == b"Mail queue is empty\n"
    mailq = shim.run(env={"SENDMAIL_SHIM_INVOKED_AS": "/usr/bin/mailq"})
    assert (mailq.returncode, mailq.stdout) == (0, b"Mail queue is empty\n")
    for args in (("-bi",), ("-q",), ("-q1h",), ("-I",)):
        result = shim.run(*args)
        assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    newaliases = shim.run(env={"SENDMAIL_SHIM_INVOKED_AS": "newaliases"})
    assert (newaliases.returncode, newaliases.stdout) == (0, b"")
    assert shim.records() == []


def test_verify(shim):
    result = shim.run("-bv", "a@x", "B <b@y>")
    assert result.returncode == 0
    assert (
        result.stdout
        == b"a@x... deliverable: mailer sendmail-shim\nb@y... deliverable: mailer sendmail-shim\n"
    )
    assert shim.run("-bv").returncode == 64


@pytest.mark.exec_only(reason="the launcher's SENDMAIL_SHIM_INVOKED_AS variable")
def test_invoked_as_is_argv0(shim):
    shim.run("-i", "root", stdin=b"x", env={"SENDMAIL_SHIM_INVOKED_AS": "/usr/sbin/sendmail"})
    assert shim.record()["process"]["args"] == ["/usr/sbin/sendmail", "-i", "root"]


def test_missing_config_file_means_defaults(tmp_path):
    inv = app.invocation(["sendmail"], {})
    assert inv.config_problems == () or inv.cfg.path == "/etc/sendmail-shim.conf"
    if not os.path.exists("/etc/sendmail-shim.conf"):
        assert inv.cfg.log_path == "/var/log/sendmail-shim/mail.ndjson"
        assert inv.cfg.max_message_bytes == 8 << 20


def test_the_core_values_are_frozen(tmp_path):
    """The entry point's values reach the core as built: no field is set after (options are passed down)."""
    inv = app.invocation(["sendmail", "-i", "root"], config_environ(tmp_path, hostname="mail.example"))
    assert (inv.origin.argv, inv.origin.hostname, inv.origin.entry) == (
        ("sendmail", "-i", "root"),
        "mail.example",
        "exec",
    )
    for value, name in ((inv, "cfg"), (inv, "options"), (inv.origin, "argv"), (inv.origin.caller, "uid"),
                        (inv.fds, "stdin")):  # fmt: skip
        with pytest.raises(AttributeError, match="frozen"):
            setattr(value, name, None)


def test_config_error_keeps_the_message_in_syslog_and_exits_75(shim):
    shim.config.write_text(
        f"log_path = {shim.log}\nsyslog_socket = {shim.syslog.path}\nlog_fromat = classic\nfallback = maybe\n"
    )
    result = shim.run("-i", "root", stdin=CRON_MESSAGE)
    assert result.returncode == 75
    lines = result.stderr.decode().splitlines()
    assert f"{shim.config} line 3: unknown key 'log_fromat'" in lines[0]
    assert f"{shim.config} line 4: bad value 'maybe' for key 'fallback'" in lines[1]
    assert "kept in syslog" in lines[-1]
    assert not shim.log.exists()
    assert shim.syslog.record()["message"] == CRON_MESSAGE.decode()


@pytest.mark.exec_only(reason="the caller's SENDMAIL_SHIM_CONFIG; the recorder reads its own")
def test_missing_explicit_config_is_an_error(shim):
    result = shim.run(
        "-i", "root", stdin=b"x", env={"SENDMAIL_SHIM_CONFIG": str(shim.config.parent / "absent.conf")}
    )
    assert result.returncode == 75
    assert b"absent.conf: no such file" in result.stderr


def test_missing_log_directory_is_not_created(shim):
    shim.configure(log_path=str(shim.config.parent / "nodir" / "mail.ndjson"))
    result = shim.run("-i", "root", stdin=CRON_MESSAGE)
    assert result.returncode == 75
    assert not (shim.config.parent / "nodir").exists()
    assert b"No such file or directory" in result.stderr
    assert shim.syslog.record()["message"] == CRON_MESSAGE.decode()


def test_unwritable_log_falls_back(shim):
    # A directory where the log should be: unwritable even for root.
    shim.log.mkdir()
    result = shim.run("-i", "root", stdin=CRON_MESSAGE)
    assert result.returncode == 75
    assert len(result.stderr.splitlines()) == 1
    assert shim.syslog.record()["message"] == CRON_MESSAGE.decode()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file permissions")
def test_log_without_write_permission_falls_back(shim):
    shim.log.write_bytes(b"")
    shim.log.chmod(0o400)
    assert shim.run("-i", "root", stdin=CRON_MESSAGE).returncode == 75
    assert shim.syslog.record()["message"] == CRON_MESSAGE.decode()


def test_no_syslog_either_prints_the_record_on_stderr(shim):
    shim.configure(
        log_path=str(shim.config.parent / "nodir" / "x"), syslog_socket=str(shim.config.parent / "no-socket")
    )
    result = shim.run("-i", "root", stdin=b"precious")
    assert result.returncode == 75
    err = result.stderr.decode().splitlines()
    assert '"message":"precious"' in err[0]
    assert "on stderr" in err[1]


@pytest.mark.exec_only(reason="the launcher's SENDMAIL_SHIM_UNPRIVILEGED variable")
def test_unprivileged_launcher_goes_straight_to_the_fallback(shim):
    result = shim.run("-i", "root", stdin=b"x", env={"SENDMAIL_SHIM_UNPRIVILEGED": "1"})
    assert result.returncode == 75
    assert b"no privilege" in result.stderr
    assert not shim.log.exists()
    assert shim.syslog.record()["message"] == "x"


def test_caller_ids_from_the_environment_are_ignored_for_others(shim):
    shim.run(
        "-i", "root", stdin=b"x", env={"SENDMAIL_SHIM_CALLER_UID": "4242", "SENDMAIL_SHIM_CALLER_GID": "4343"}
    )
    rec = shim.record()
    assert rec["user"]["id"] == str(os.getuid())
    assert rec["group"]["id"] == str(os.getgid())


@pytest.mark.exec_only(reason="the launcher's caller-id variables; the recorder takes SO_PEERCRED")
def test_caller_ids_are_believed_from_the_service_user(shim):
    shim.configure(service_user=pwd.getpwuid(os.getuid()).pw_name)
    shim.run(
        "-i", "root", stdin=b"x", env={"SENDMAIL_SHIM_CALLER_UID": "4242", "SENDMAIL_SHIM_CALLER_GID": "4343"}
    )
    rec = shim.record()
    assert (rec["user"], rec["group"]) == ({"id": "4242", "name": "4242"}, {"id": "4343"})


def test_classic_format_end_to_end(shim):
    shim.configure(log_format="classic")
    shim.run("-i", "root", stdin=b"Subject: x\n\nhi\n")
    rec = shim.record()
    assert list(rec) == ["time", "uid", "username", "arguments", "body"]
    assert rec["arguments"] == ["-i", "root"]


@pytest.mark.parametrize("option", ["-C", "-X", "-D"])
def test_dangerous_options_never_open_their_file(tmp_path, monkeypatch, option):
    target = tmp_path / "target"
    opened = []
    real_open, real_os_open, real_io_open = builtins.open, os.open, io.open

    def spy(real):
        def wrapper(file, *args, **kwargs):
            opened.append(os.fsdecode(file) if isinstance(file, (str, bytes, os.PathLike)) else file)
            return real(file, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(builtins, "open", spy(real_open))
    monkeypatch.setattr(io, "open", spy(real_io_open))
    monkeypatch.setattr(os, "open", spy(real_os_open))
    environ = config_environ(tmp_path)
    r, w = os.pipe()
    os.write(w, b"Subject: x\n\nbody\n")
    os.close(w)
    monkeypatch.setattr(app, "STDIN_FD", r)
    status = app.main(["sendmail", option, str(target), "-d0-99.127", "-i", "root"], environ)
    os.close(r)
    assert status == 0
    assert str(target) not in opened
    assert str(tmp_path / "mail.ndjson") in opened  # the spy did see the shim's own opens
    assert not target.exists()


def test_unexpected_error_keeps_the_message(tmp_path, monkeypatch, syslog, capfd):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    environ = config_environ(tmp_path, syslog_socket=syslog.path)
    monkeypatch.setattr(headers, "parse", broken)
    r, w = os.pipe()
    os.write(w, b"Subject: keep me\n\nbody\n")
    os.close(w)
    monkeypatch.setattr(app, "STDIN_FD", r)
    status = app.main(["sendmail", "-i", "root"], environ)
    os.close(r)
    assert status == 75
    err = capfd.readouterr().err
    assert "internal error (RuntimeError: boom)" in err and "Traceback" not in err
    assert message_bytes(syslog.record()) == b"Subject: keep me\n\nbody\n"


def test_error_before_reading_still_reads_and_keeps_the_message(tmp_path, monkeypatch, syslog, capfd):
    environ = config_environ(tmp_path, syslog_socket=syslog.path)

    def broken(*args, **kwargs):
        raise OSError("identity lookup failed")

    monkeypatch.setattr(app.identity, "caller_ids", broken)
    r, w = os.pipe()
    os.write(w, b"early")
    os.close(w)
    monkeypatch.setattr(app, "STDIN_FD", r)
    assert app.main(["sendmail", "root"], environ) == 75
    os.close(r)
    assert message_bytes(syslog.record()) == b"early"


@pytest.mark.exec_only(reason="python3 -m sendmail_shim is the exec entry point")
def test_runs_as_a_module_without_install(shim):
    result = subprocess.run(
        [sys.executable, "-m", "sendmail_shim", "-i", "root"],
        input=b"via -m",
        capture_output=True,
        env={**shim.env(), "PYTHONPATH": str(FILES)},
    )
    assert result.returncode == 0, result.stderr
    assert shim.record()["message"] == "via -m"


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        ("# defaults\n\nlog_format = classic\nmax_message_bytes = 16M\n", 0, b""),
        ("log_format = xml\n", 78, b"line 1: bad value 'xml' for key 'log_format'"),
        ("bogus = 1\n", 78, b"line 1: unknown key 'bogus'"),
        ("log_path relative\n", 78, b"expected 'key = value'"),
        ("max_line_bytes = 10\n", 78, b"must be at least 65536"),
    ],
)
def test_config_validator(tmp_path, content, status, message):
    conf = tmp_path / "c.conf"
    conf.write_text(content)
    result = subprocess.run(
        [PYTHON, "-m", "sendmail_shim.config", str(conf)],
        capture_output=True,
        env={"PYTHONPATH": str(FILES)},
    )
    assert result.returncode == status
    assert message in result.stderr


def test_config_validator_usage_and_missing_file(tmp_path):
    env = {"PYTHONPATH": str(FILES)}
    assert (
        subprocess.run(
            [PYTHON, "-m", "sendmail_shim.config", "a", "b"], capture_output=True, env=env
        ).returncode
        == 64
    )
    missing = subprocess.run(
        [PYTHON, "-m", "sendmail_shim.config", str(tmp_path / "x")], capture_output=True, env=env
    )
    assert missing.returncode == 78


@pytest.mark.exec_only(reason="systemd's REMOTE_ADDR of an Accept=yes service")
def test_socket_activated_smtp_session_records_the_client_address(shim):
    shim.run("-i", "root", stdin=b"x", env={"REMOTE_ADDR": "::1", "REMOTE_PORT": "40000"})
    assert shim.record()["source"] == {"address": "::1", "ip": "::1", "port": 40000}


def test_peer_address_is_not_taken_from_a_launcher_caller(shim):
    shim.configure(service_user=pwd.getpwuid(os.getuid()).pw_name)
    env = {"SENDMAIL_SHIM_CALLER_UID": "4242", "SENDMAIL_SHIM_CALLER_GID": "4343", "REMOTE_ADDR": "10.9.9.9"}
    shim.run("-i", "root", stdin=b"x", env=env)
    assert "source" not in shim.record()
