# SPDX-License-Identifier: MIT
"""The setuid launcher alone, around a stand-in entry script that reports what it was handed.

These tests show the launcher's own promises (docs/design.md, start-up chain): the identity it runs the
entry as, the exact environment, fds, cwd, umask, limits, arguments, and that it stops with 71 rather
than run on when the drop fails. They are about the exec path alone, which is what runs an entry: no
recorder listens at the stand-in launcher's socket place (test_handoff.py puts its own peers there;
the recorder's path through the real shim is in test_shim_privileges.py).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest
from launcher_support import PYTHON, as_user, has_cap_sys_resource, run, wait_for

LAUNCHER_SRC = Path(__file__).resolve().parents[2] / "files" / "launcher"

pytestmark = pytest.mark.root

PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
INF = resource.RLIM_INFINITY
# What the launcher aims for (files/launcher/repair.c), and a lowered value each that
# still lets the stand-in start and report.
TARGETS = {
    "RLIMIT_FSIZE": (INF, 1 << 20),
    "RLIMIT_CPU": (INF, 100),
    "RLIMIT_AS": (INF, 2 << 30),
    "RLIMIT_DATA": (INF, 1 << 30),
    "RLIMIT_NPROC": (INF, 1000),
    "RLIMIT_RTTIME": (INF, 10**6),
    "RLIMIT_NOFILE": (1024, 64),
    "RLIMIT_STACK": (8 << 20, 1 << 20),
}


def contract_env(caller, invoked_as, unprivileged=False):
    env = {
        "PATH": PATH,
        "LANG": "C.UTF-8",
        "SENDMAIL_SHIM_CALLER_UID": str(caller.uid),
        "SENDMAIL_SHIM_CALLER_GID": str(caller.gid),
        "SENDMAIL_SHIM_INVOKED_AS": invoked_as,
    }
    if unprivileged:
        env["SENDMAIL_SHIM_UNPRIVILEGED"] = "1"
    return env


def exec_as(argv0, launcher, args=(), setup=""):
    """Python code for a caller that runs setup, then execs the launcher with a chosen argv[0]."""
    return textwrap.dedent(f"""\
        import os, resource
        {setup}
        os.execv({str(launcher)!r}, {[argv0, *args]!r})
        """)


def test_runs_entry_as_dedicated_user_with_no_way_back(report, caller, svc):
    proc = run(as_user(caller, report.launcher))
    assert proc.returncode == 0, proc.stderr
    got = report.report()
    assert got["resuid"] == [svc.uid] * 3
    assert got["resgid"] == [svc.gid] * 3
    assert got["groups"] == []


def test_root_caller_goes_through_the_same_drop(report, svc):
    proc = run([str(report.launcher)])
    assert proc.returncode == 0, proc.stderr
    got = report.report()
    assert got["resuid"] == [svc.uid] * 3
    assert got["env"]["SENDMAIL_SHIM_CALLER_UID"] == "0"


def test_environment_is_exactly_the_contract_whatever_the_caller_sets(report, caller, hostile):
    proc = run(as_user(caller, "/usr/bin/env", "-i", *hostile.env_args, report.launcher), cwd=hostile.home)
    assert proc.returncode == 0, proc.stderr
    got = report.report()
    assert got["env"] == contract_env(caller, str(report.launcher))
    assert got["executable"] == PYTHON
    assert not [p for p in got["sys_path"] if p in ("", ".") or p.startswith(str(hostile.home))]
    assert "site" not in got["modules"]
    assert hostile.fired() == []


def test_caller_identity_is_the_real_ids_not_argv0_nor_env(report, caller):
    code = exec_as("/usr/sbin/newaliases", report.launcher, ["-f", "root@localhost"])
    env = {
        "SENDMAIL_SHIM_CALLER_UID": "0",
        "SENDMAIL_SHIM_CALLER_GID": "0",
        "USER": "root",
        "LOGNAME": "root",
    }
    proc = run(as_user(caller, PYTHON, "-I", "-S", "-c", code), env=env)
    assert proc.returncode == 0, proc.stderr
    got = report.report()
    assert got["env"]["SENDMAIL_SHIM_CALLER_UID"] == str(caller.uid)
    assert got["env"]["SENDMAIL_SHIM_CALLER_GID"] == str(caller.gid)
    assert got["env"]["SENDMAIL_SHIM_INVOKED_AS"] == "/usr/sbin/newaliases"


@pytest.mark.parametrize("name", ["mailq", "newaliases"])
def test_symlinked_names_reach_the_entry(report, caller, name):
    link = report.launcher.parent / name
    proc = run(as_user(caller, link))
    assert proc.returncode == 0, proc.stderr
    assert report.report()["env"]["SENDMAIL_SHIM_INVOKED_AS"] == str(link)


def test_arguments_are_passed_unchanged(report, caller):
    args = ["-C", "/etc/shadow", "", "-oi", "a b", "x\ny", "--", "-bp", "caf\u00e9", "\udcff", "-X/tmp/x"]
    proc = run(as_user(caller, report.launcher, *args))
    assert proc.returncode == 0, proc.stderr
    got = report.report()["argv"]
    assert got[1:] == args
    assert got[0].endswith("/entry.py")


def test_cwd_and_umask_are_fixed(report, caller, hostile):
    os.umask(0o022)
    proc = run(
        as_user(caller, "/bin/sh", "-c", 'umask 000; exec "$@"', "sh", report.launcher), cwd=hostile.home
    )
    assert proc.returncode == 0, proc.stderr
    got = report.report()
    assert got["cwd"] == "/"
    assert got["umask"] == 0o027


@pytest.mark.parametrize("fd", [0, 1, 2])
def test_closed_standard_fd_is_reopened_on_dev_null(report, caller, fd):
    proc = run(as_user(caller, "/bin/sh", "-c", f'exec "$@" {fd}>&-', "sh", report.launcher))
    assert proc.returncode == 0, proc.stderr
    got = report.report()
    fds = got["fds"]
    assert sorted(fds) == ["0", "1", "2"]
    assert fds[str(fd)] == "/dev/null"
    # glibc reopens a setuid program's closed stdin write-only: the shim must still read it.
    assert got["fd_modes"][str(fd)] == (os.O_RDONLY if fd == 0 else os.O_WRONLY)
    assert all(fds[str(other)].startswith("pipe:") for other in {0, 1, 2} - {fd})


def test_other_fds_are_closed(report, caller):
    """An fd the caller holds (here root's /etc/shadow, as a leaked fd would be) never reaches the entry."""
    with open("/etc/shadow", "rb") as shadow:
        os.dup2(shadow.fileno(), 200)
        try:
            proc = run(as_user(caller, report.launcher), pass_fds=(shadow.fileno(), 200))
        finally:
            os.close(200)
    assert proc.returncode == 0, proc.stderr
    assert sorted(report.report()["fds"]) == ["0", "1", "2"]


def _fits(hard, target):
    return hard == INF or (target != INF and hard >= target)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_lowered_hard_limit_is_raised_back_where_root_may(report, caller, name):
    target, low = TARGETS[name]
    code = exec_as("sendmail", report.launcher, setup=f"resource.setrlimit(resource.{name}, ({low}, {low}))")
    proc = run(as_user(caller, PYTHON, "-I", "-S", "-c", code))
    assert proc.returncode == 0, proc.stderr
    # Without CAP_SYS_RESOURCE (containers, the CI hosts) nothing can raise it: the shim copes (its tests).
    expected = [target, target] if has_cap_sys_resource() else [low, low]
    assert report.report()["limits"][name] == expected


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_lowered_soft_limit_is_raised(report, caller, name):
    target, low = TARGETS[name]
    hard = resource.getrlimit(getattr(resource, name))[1]
    code = exec_as("sendmail", report.launcher, setup=f"resource.setrlimit(resource.{name}, ({low}, {hard}))")
    proc = run(as_user(caller, PYTHON, "-I", "-S", "-c", code))
    assert proc.returncode == 0, proc.stderr
    expected = [target, target] if has_cap_sys_resource() or _fits(hard, target) else [hard, hard]
    assert report.report()["limits"][name] == expected


def test_core_dumps_are_off(report, caller):
    code = exec_as("sendmail", report.launcher, setup="resource.setrlimit(resource.RLIMIT_CORE, (-1, -1))")
    proc = run(as_user(caller, PYTHON, "-I", "-S", "-c", code))
    assert proc.returncode == 0, proc.stderr
    assert report.report()["limits"]["RLIMIT_CORE"] == [0, 0]


def test_caller_cannot_signal_trace_or_limit_the_entry(report, caller, svc):
    proc = subprocess.Popen(as_user(caller, report.launcher), stdin=subprocess.PIPE, env={})
    try:
        wait_for((report.report_dir / "report.json").exists)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert f"Uid:\t{svc.uid}\t{svc.uid}\t{svc.uid}\t" in status
        # SIGCONT is left out: the kernel allows it within a session, and it only resumes the process.
        signals = [
            signal.SIGTERM,
            signal.SIGKILL,
            signal.SIGSTOP,
            signal.SIGINT,
            signal.SIGXFSZ,
            signal.SIGPIPE,
        ]
        code = textwrap.dedent(f"""\
            import os
            for sig in {[int(s) for s in signals]!r}:
                try:
                    os.kill({proc.pid}, sig)
                except PermissionError:
                    continue
                raise SystemExit("signal %d was delivered" % sig)
            """)
        kill = run(as_user(caller, PYTHON, "-I", "-S", "-c", code))
        assert kill.returncode == 0, kill.stderr
        limit = run(as_user(caller, "prlimit", f"--pid={proc.pid}", "--fsize=1:1"), env={"PATH": PATH})
        assert limit.returncode != 0
        environ = run(as_user(caller, "cat", f"/proc/{proc.pid}/environ"), env={"PATH": PATH})
        assert environ.returncode != 0
        assert environ.stdout == b""
        assert proc.poll() is None
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0


def test_no_new_privs_runs_entry_as_the_caller_and_says_so(report, caller):
    proc = run(as_user(caller, report.launcher, nnp=True))
    assert proc.returncode == 0, proc.stderr
    got = report.report()
    assert got["resuid"] == [caller.uid] * 3
    assert got["resgid"] == [caller.gid] * 3
    assert got["env"] == contract_env(caller, str(report.launcher), unprivileged=True)
    assert got["cwd"] == "/"
    assert sorted(got["fds"]) == ["0", "1", "2"]


def test_root_of_a_user_namespace_stops_with_71_and_runs_nothing(report, caller):
    """A user namespace mapping the caller to root: euid 0, but no real privilege.

    There the state directory's root-owned parent shows the unmapped overflow uid, so the launcher
    refuses before any switch (which setgroups would refuse next).
    """
    probe = run(as_user(caller, "unshare", "--user", "--map-root-user", "true"), env={"PATH": PATH})
    if probe.returncode != 0:
        pytest.skip("unprivileged user namespaces are not available here")
    proc = run(as_user(caller, "unshare", "--user", "--map-root-user", report.launcher), env={"PATH": PATH})
    assert proc.returncode == 71
    assert proc.stderr.decode().count("\n") == 1
    assert b"only root can write" in proc.stderr
    assert not (report.report_dir / "report.json").exists()


def test_exec_refused_after_the_drop_exits_71(report, caller):
    """RLIMIT_NPROC counts the dedicated user's processes at execve; a caller may lower it to 0.

    With another shim process alive, the kernel then refuses the interpreter's execve (EAGAIN). Where
    root cannot raise the limit back, the launcher can only say so and exit 71: the message was not
    accepted, and 75 would wrongly claim that it was kept.
    """
    first = subprocess.Popen(as_user(caller, report.launcher), stdin=subprocess.PIPE, env={})
    try:
        wait_for((report.report_dir / "report.json").exists)
        report.clear()
        code = exec_as("sendmail", report.launcher, setup="resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))")
        proc = run(as_user(caller, PYTHON, "-I", "-S", "-c", code))
    finally:
        first.stdin.close()
        assert first.wait(timeout=30) == 0
    if has_cap_sys_resource():
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode == 71
        assert b"cannot exec" in proc.stderr
        assert not (report.report_dir / "report.json").exists()


def _mask(*signums) -> int:
    return sum(1 << (int(sig) - 1) for sig in signums)


def test_inherited_signal_timer_and_scheduling_state_is_reset(report, caller):
    """What survives execve and is the caller's to choose: ignored and blocked signals, armed interval
    timers, SCHED_IDLE and a CPU affinity. The nice value stays the caller's."""
    stopping = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGALRM, signal.SIGTSTP)
    setup = textwrap.dedent(f"""\
        import signal
        for sig in {[int(s) for s in stopping]!r}:
            signal.signal(sig, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, {[int(s) for s in stopping]!r})
        signal.setitimer(signal.ITIMER_REAL, 300)
        signal.setitimer(signal.ITIMER_VIRTUAL, 300)
        signal.setitimer(signal.ITIMER_PROF, 300)
        os.nice(5)
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        os.sched_setaffinity(0, {{0}})
        """).replace("\n", "\n        ")
    code = exec_as("sendmail", report.launcher, setup=setup)
    proc = run(as_user(caller, PYTHON, "-I", "-S", "-c", code))
    assert proc.returncode == 0, proc.stderr
    got = report.report()
    assert got["signals"]["SigBlk"] == 0
    # Python itself ignores SIGPIPE and SIGXFSZ at start-up; nothing the caller ignored is left.
    assert got["signals"]["SigIgn"] & _mask(*stopping) == 0
    assert got["itimers"] == [[0.0, 0.0]] * 3
    policy, nice, cpus = got["sched"]
    assert policy == os.SCHED_OTHER
    assert nice == os.getpriority(os.PRIO_PROCESS, 0) + 5
    assert cpus == sorted(os.sched_getaffinity(0))


def test_build_compiles_in_the_layouts_paths(tmp_path):
    """Nothing given on make's command line: every path comes from layout.json, through the header."""
    out = tmp_path / "sendmail"
    subprocess.run(["make", "-s", "-C", str(LAUNCHER_SRC), f"OUT={out}"], check=True, capture_output=True)
    layout = json.loads((LAUNCHER_SRC.parent / "sendmail_shim" / "layout.json").read_text())
    binary = out.read_bytes()
    for key in ("python", "entry", "state_dir", "recorder_socket_path"):
        assert os.fsencode(layout[key]) + b"\0" in binary, key


def test_build_refuses_a_path_it_cannot_compile_in(tmp_path):
    out = tmp_path / "sendmail"
    proc = subprocess.run(
        ["make", "-s", "-C", str(LAUNCHER_SRC), f"OUT={out}", "SHIM_ENTRY=lib/x.py"], capture_output=True
    )
    assert proc.returncode != 0
    assert (
        "paths_header.py: SHIM_ENTRY='lib/x.py' is not an absolute path of letters, digits and . _ + - /\n"
    ) in proc.stderr.decode()
    assert not out.exists()
