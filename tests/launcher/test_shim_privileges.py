# SPDX-License-Identifier: MIT
"""The real shim behind the setuid launcher: what a local caller can and cannot do to the log.

The shim copy is installed root-owned in a temporary prefix, its default config path pointed at a test
config (the launcher passes none); the fallback goes to a syslog socket the test reads. Every test that
takes `shim` runs through both paths: the resident recorder listening on the launcher's socket, and no
recorder (the launcher execs the shim). `exec_shim` and `recorder_shim` are for what only one path does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest
from launcher_support import PYTHON, User, as_user, has_cap_sys_resource, run, wait_for

pytestmark = pytest.mark.root

PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
MESSAGE = b"From: app@example.org\nTo: ops@example.org\nSubject: disk full\n\nsda1 is at 99%\n"


def one_stderr_line(proc) -> str:
    text = proc.stderr.decode()
    assert text.count("\n") == 1 and text.endswith("\n"), text
    return text


def test_record_names_the_caller_whatever_it_claims(shim, caller):
    code = textwrap.dedent(f"""\
        import os
        os.execv({str(shim.launcher)!r}, ["root", "-f", "root@localhost", "-F", "Root", "ops@example.org"])
        """)
    env = {
        "SENDMAIL_SHIM_CALLER_UID": "0",
        "SENDMAIL_SHIM_CALLER_GID": "0",
        "USER": "root",
        "LOGNAME": "root",
    }
    proc = run(as_user(caller, PYTHON, "-I", "-S", "-c", code), stdin=MESSAGE, env=env)
    assert proc.returncode == 0, proc.stderr
    [rec] = shim.records()
    assert rec["user"] == {"id": str(caller.uid), "name": caller.name}
    assert rec["group"] == {"id": str(caller.gid)}
    assert rec["sendmail_shim"]["envelope"]["sender"] == "root@localhost"  # recorded as a claim, nothing more


def test_mailq_through_its_symlink_lists_the_queue(shim, caller):
    proc = run(as_user(caller, shim.launcher.parent / "mailq"))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"Mail queue is empty\n", b"")
    assert shim.records() == []


def test_newaliases_through_its_symlink_succeeds_silently(shim, caller):
    proc = run(as_user(caller, shim.launcher.parent / "newaliases"))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    assert shim.records() == []


def test_hostile_environment_and_cwd_have_no_effect(shim, caller, hostile):
    cmd = as_user(caller, "/usr/bin/env", "-i", *hostile.env_args, shim.launcher, "ops@example.org")
    proc = run(cmd, stdin=MESSAGE, cwd=hostile.home)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    [rec] = shim.records()
    assert rec["user"]["id"] == str(caller.uid)
    assert rec["process"]["name"] == "sendmail"  # SENDMAIL_SHIM_INVOKED_AS=mailq was the caller's
    assert rec["@timestamp"].endswith("Z")
    assert hostile.fired() == []
    assert not (hostile.home / "evil.ndjson").exists()


def test_file_options_open_create_and_print_nothing(shim, caller, prefix):
    """-C/-O/-o name a FIFO: opening it would block until the timeout. -X names a file to create."""
    scratch = prefix / "scratch"
    scratch.mkdir(exist_ok=True)
    scratch.chmod(0o1777)
    fifo = scratch / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo, 0o666)
    traffic = scratch / "traffic.log"
    args = ["-C", str(fifo), "-X", str(traffic), "-d0-99.127", f"-oA{fifo}", "-O", f"AliasFile={fifo}",
            f"-oL{fifo}", "-C/etc/shadow", "ops@example.org"]  # fmt: skip
    proc = run(as_user(caller, shim.launcher, *args), stdin=MESSAGE)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    assert not traffic.exists()
    [rec] = shim.records()
    assert rec["sendmail_shim"]["options"]["never_acted_on"]
    shadow_hashes = [
        f.split(":")[1] for f in Path("/etc/shadow").read_text().splitlines() if f.count(":") > 1
    ]
    log = shim.log_bytes().decode()
    assert not [h for h in shadow_hashes if len(h) > 2 and h in log]


@pytest.mark.parametrize("fd", [0, 1, 2])
def test_closed_standard_fd_neither_fails_nor_reaches_the_log(shim, caller, fd):
    cmd = as_user(caller, "/bin/sh", "-c", f'exec "$@" {fd}>&-', "sh", shim.launcher, "ops@example.org")
    proc = run(cmd, stdin=MESSAGE)
    assert proc.returncode == 0, proc.stderr
    [rec] = shim.records()  # one whole record, nothing else: no stdout or stderr text in the log
    assert rec["message"] == ("" if fd == 0 else MESSAGE.decode())
    assert rec["user"]["id"] == str(caller.uid)


def test_mailq_with_stdout_closed_writes_nothing_into_the_log(shim, caller):
    proc = run(as_user(caller, "/bin/sh", "-c", 'exec "$@" 1>&-', "sh", shim.launcher.parent / "mailq"))
    assert proc.returncode == 0, proc.stderr
    assert shim.log_bytes() == b""


def test_shim_runs_as_the_service_user_and_the_caller_cannot_signal_it(exec_shim, caller, svc):
    """Exec path only: on the recorder's path no shim process of the caller's exists (next test)."""
    shim = exec_shim
    proc = subprocess.Popen(as_user(caller, shim.launcher, "ops@example.org"), stdin=subprocess.PIPE, env={})
    status = Path(f"/proc/{proc.pid}/status")
    try:
        # The same pid goes setpriv -> launcher -> python; wait until it is the shim, blocked on stdin.
        wait_for(lambda: f"Uid:\t{svc.uid}\t" in status.read_text() and "python" in status.read_text())
        lines = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
        assert lines["Uid"].split() == [str(svc.uid)] * 4  # real, effective, saved, filesystem
        assert lines["Gid"].split() == [str(svc.gid)] * 4
        assert lines["Groups"].strip() == ""
        assert lines["CapEff"].strip("0\n") == ""
        code = f"import os\nos.kill({proc.pid}, {int(signal.SIGKILL)})"
        kill = run(as_user(caller, PYTHON, "-I", "-S", "-c", code))
        assert b"PermissionError" in kill.stderr
        proc.stdin.write(MESSAGE)
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    [rec] = shim.records()
    assert rec["user"]["id"] == str(caller.uid)


def test_recorder_runs_as_the_service_user_and_the_caller_cannot_signal_it(recorder_shim, caller, svc):
    shim = recorder_shim
    status = Path(f"/proc/{shim.recorder.proc.pid}/status").read_text()
    lines = dict(line.split(":\t", 1) for line in status.splitlines())
    assert lines["Uid"].split() == [str(svc.uid)] * 4
    assert lines["Gid"].split() == [str(svc.gid)] * 4
    assert lines["Groups"].strip() == ""
    assert lines["CapEff"].strip("0\n") == ""
    code = f"import os\nos.kill({shim.recorder.proc.pid}, {int(signal.SIGKILL)})"
    kill = run(as_user(caller, PYTHON, "-I", "-S", "-c", code))
    assert b"PermissionError" in kill.stderr
    proc = run(as_user(caller, shim.launcher, "ops@example.org"), stdin=MESSAGE)
    assert proc.returncode == 0, proc.stderr
    assert shim.records()[0]["user"]["id"] == str(caller.uid)


def test_caller_can_neither_read_the_log_nor_write_into_its_directory(shim, caller, svc):
    assert run(as_user(caller, shim.launcher, "ops@example.org"), stdin=MESSAGE).returncode == 0
    info = shim.log.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (svc.uid, svc.gid, 0o640)
    env = {"PATH": PATH}
    assert run(as_user(caller, "cat", shim.log), env=env).returncode != 0
    assert run(as_user(caller, "ls", shim.log_dir), env=env).returncode != 0
    assert run(as_user(caller, "touch", shim.log_dir / "planted"), env=env).returncode != 0
    assert sorted(p.name for p in shim.log_dir.iterdir()) == ["mail.ndjson"]


def test_symlink_planted_at_the_log_path_is_not_followed(shim, caller, svc, prefix):
    target = prefix / "symlink-target"
    target.write_bytes(b"")
    os.chown(target, svc.uid, svc.gid)  # writable by the shim: only O_NOFOLLOW keeps it out
    shim.log.symlink_to(target)
    proc = run(as_user(caller, shim.launcher, "ops@example.org"), stdin=MESSAGE)
    assert proc.returncode == 75
    assert "kept in syslog" in one_stderr_line(proc)
    assert target.read_bytes() == b""
    [kept] = shim.syslog_records()
    assert kept["message"] == MESSAGE.decode()


def test_ulimit_f_1_leaves_no_partial_line_and_keeps_the_message(shim, caller):
    run(as_user(caller, shim.launcher, "first@example.org"), stdin=MESSAGE)
    before = shim.log_bytes()
    assert before.count(b"\n") == 1
    cmd = as_user(caller, "/bin/sh", "-c", 'ulimit -f 1 && exec "$@"', "sh", shim.launcher, "ops@example.org")
    proc = run(cmd, stdin=MESSAGE)
    after = shim.log_bytes()
    assert after.startswith(before)
    records = shim.records()  # fails on a partial line
    # The caller's limits reach the recorder not at all, the exec path's shim where root cannot lift them.
    if has_cap_sys_resource() or shim.path == "recorder":
        assert proc.returncode == 0, proc.stderr
        assert len(records) == 2
    else:
        assert proc.returncode == 75
        assert "RLIMIT_FSIZE" in one_stderr_line(proc)
        assert after == before
        [kept] = shim.syslog_records()
        assert kept["message"] == MESSAGE.decode()
        assert kept["user"]["id"] == str(caller.uid)


def test_no_new_privs_caller_lands_in_the_log_through_the_recorder(recorder_shim, caller):
    shim = recorder_shim
    proc = run(as_user(caller, shim.launcher, "ops@example.org", nnp=True), stdin=MESSAGE)
    assert (proc.returncode, proc.stderr) == (0, b"")
    [rec] = shim.records()
    assert rec["user"] == {"id": str(caller.uid), "name": caller.name}
    assert rec["group"] == {"id": str(caller.gid)}
    assert rec["message"] == MESSAGE.decode()


def test_nosuid_mount_caller_lands_in_the_log_through_the_recorder(recorder_shim, caller, prefix):
    """The same launcher copied onto a nosuid mount: no privilege, but the socket is as good."""
    shim = recorder_shim
    with nosuid_copy(shim.launcher, prefix) as launcher:
        proc = run(as_user(caller, launcher, "ops@example.org"), stdin=MESSAGE)
        assert (proc.returncode, proc.stderr) == (0, b"")
        [rec] = shim.records()
        assert rec["user"]["id"] == str(caller.uid)
        # Recorder stopped: the caller keeps today's behaviour, the message in the fallback.
        shim.recorder.stop()
        proc = run(as_user(caller, launcher, "ops@example.org"), stdin=MESSAGE)
        assert proc.returncode == 75
        assert "could not switch to the service user" in one_stderr_line(proc)
        assert len(shim.syslog_records()) == 1


@contextlib.contextmanager
def nosuid_copy(launcher: Path, prefix: Path):
    mountpoint = prefix / "nosuid"
    mountpoint.mkdir(mode=0o755, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "nosuid,mode=0755", "sst-lch-nosuid", mountpoint],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        copy = mountpoint / "sendmail"
        shutil.copy2(launcher, copy)
        os.chown(copy, 0, launcher.stat().st_gid)
        copy.chmod(0o6755)
        yield copy
    finally:
        subprocess.run(["umount", "-l", mountpoint], check=False)


def test_no_new_privs_caller_keeps_its_message_in_the_fallback(exec_shim, caller):
    """Exec path only: the recorder stopped, a caller without privilege still keeps its message."""
    shim = exec_shim
    proc = run(as_user(caller, shim.launcher, "ops@example.org", nnp=True), stdin=MESSAGE)
    assert proc.returncode == 75
    assert "could not switch to the service user" in one_stderr_line(proc)
    assert shim.log_bytes() == b""
    [kept] = shim.syslog_records()
    assert kept["message"] == MESSAGE.decode()
    assert kept["user"]["id"] == str(caller.uid)


def test_record_has_the_real_ids_when_the_effective_ones_differ(shim, caller):
    """Root that lowered only its effective ids is recorded as root: the real ids are the caller."""
    code = (
        f"import os\nos.setresgid(-1, {caller.gid}, -1)\nos.setresuid(-1, {caller.uid}, -1)\n"
        f"os.execv({str(shim.launcher)!r}, ['sendmail', 'ops@example.org'])\n"
    )
    proc = run([PYTHON, "-I", "-S", "-c", code], stdin=MESSAGE)
    assert proc.returncode == 0, proc.stderr
    [rec] = shim.records()
    assert (rec["user"]["id"], rec["group"]["id"]) == ("0", "0")


def test_record_has_the_callers_primary_group(shim, caller, svc):
    in_another_group = User(caller.name, caller.uid, svc.gid)
    proc = run(as_user(in_another_group, shim.launcher, "ops@example.org"), stdin=MESSAGE)
    assert proc.returncode == 0, proc.stderr
    [rec] = shim.records()
    assert (rec["user"]["id"], rec["group"]["id"]) == (str(caller.uid), str(svc.gid))


def test_smtp_on_stdio_through_the_launcher(shim, caller):
    """-bs: the dialogue runs over the caller's own fds 0 and 1, which on the recorder's path were passed."""
    script = (
        b"EHLO app\r\nMAIL FROM:<app@example.org>\r\nRCPT TO:<ops@example.org>\r\nDATA\r\n"
        b"Subject: over stdio\r\n\r\nHello\r\n.\r\nQUIT\r\n"
    )
    proc = run(as_user(caller, shim.launcher, "-bs"), stdin=script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(b"220 ")
    assert proc.stdout.endswith(b"221 2.0.0 Bye\r\n")
    [rec] = shim.records()
    assert rec["sendmail_shim"]["mode"] == "smtp"
    assert rec["email"]["subject"] == "over stdio"
    assert rec["user"]["id"] == str(caller.uid)
    assert f"queued as {rec['event']['id']}".encode() in proc.stdout


def test_newline_followed_by_json_adds_exactly_one_record(shim, caller):
    forged = b'{"user": {"id": "0", "name": "root"}, "message": "forged"}'
    body = MESSAGE + b"\n" + forged + b"\n" + forged + b"\r\n"
    proc = run(as_user(caller, shim.launcher, "ops@example.org"), stdin=body)
    assert proc.returncode == 0, proc.stderr
    [rec] = shim.records()
    assert rec["user"]["id"] == str(caller.uid)
    assert rec["message"] == body.decode()


def _assert_root_owned_not_writable(path: Path):
    info = path.lstat()
    assert info.st_uid == 0, f"{path} is not owned by root"
    writable = stat.S_IMODE(info.st_mode) & 0o022
    # A sticky world-writable ancestor (/var/tmp) is fine: others cannot rename what root owns in it.
    assert not writable or (stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX), f"{path} is writable"


def test_installed_files_are_root_owned_and_not_writable_by_others(shim, svc):
    paths = [shim.launcher, shim.config, *shim.lib.rglob("*")]
    for path in paths:
        _assert_root_owned_not_writable(path)
    for ancestor in {a for p in paths for a in p.parents}:
        _assert_root_owned_not_writable(ancestor)
    # As the package's statoverride sets it: setuid root, setgid to the dedicated group.
    assert stat.S_IMODE(shim.launcher.stat().st_mode) == 0o6755
    assert shim.launcher.stat().st_gid == svc.gid


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_SEQPACKET], ids=["dgram", "seqpacket"])
def test_the_recorder_lends_its_credentials_to_no_datagram_stdout(recorder_shim, caller, kind):
    """A stdout or stderr connected to /dev/log would have the journal stamp the caller's text with the
    recorder's uid: the recorder writes nothing there."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, kind)
    with mine:
        with theirs:
            proc = subprocess.run(
                as_user(caller, recorder_shim.launcher, "-bv", "ops@example.org"), stdin=subprocess.DEVNULL,
                stdout=theirs, stderr=theirs, env={}, timeout=60,
            )  # fmt: skip
        assert proc.returncode == 0
        mine.setblocking(False)
        try:
            got = mine.recv(4096)
        except BlockingIOError:
            got = b""
    assert got == b""
    assert recorder_shim.any_records() == []
