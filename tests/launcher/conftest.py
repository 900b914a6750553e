# SPDX-License-Identifier: MIT
"""Fixtures for the setuid launcher tests: a test build installed as the package installs it, temporary users.

Everything here needs root (useradd, chown, the setuid bit). The launcher is compiled with the
repository's Makefile around a state directory of the test prefix (the dedicated uid is that directory's
owner) and installed root:<dedicated group> 6755, as the package's statoverride does: once around a
stand-in entry script that reports what the launcher handed it (identity, environment, fds, limits), once
around a root-owned copy of the real shim, once around a state directory that the tests spoil.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from launcher_support import LIMITS, PYTHON, Recorder, User
from shimtest import ShimLog
from syslog_stub import SyslogStub

REPO = Path(__file__).resolve().parents[2]
LAUNCHER_SRC = REPO / "files" / "launcher"

# The stand-in entry: run by the launcher exactly as the shim would be. It reports to a file (its
# stdout may be closed or /dev/null), then reads stdin to the end so that a test can keep it alive.
STANDIN = r"""
import fcntl, json, os, resource, signal, sys

def fd_target(fd):
    try:
        return os.readlink("/proc/self/fd/%d" % fd)
    except FileNotFoundError:
        return None

fds = {fd: fd_target(fd) for fd in range(256) if fd_target(fd) is not None}
modes = {fd: fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE for fd in fds}
report = {
    "resuid": os.getresuid(),
    "resgid": os.getresgid(),
    "groups": os.getgroups(),
    "env": dict(os.environ),
    "argv": sys.argv,
    "executable": sys.executable,
    "sys_path": sys.path,
    "fds": fds,
    "fd_modes": modes,
    "cwd": os.getcwd(),
    "umask": os.umask(0o027),
    "limits": {name: resource.getrlimit(getattr(resource, name)) for name in LIMITS},
    "modules": sorted(sys.modules),
    "signals": {k: int(v, 16) for k, v in (l.split(":", 1) for l in open("/proc/self/status"))
                if k in ("SigBlk", "SigIgn")},
    "itimers": [signal.getitimer(w) for w in (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF)],
    "sched": [os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0), sorted(os.sched_getaffinity(0))],
}
with open(os.path.join(REPORT_DIR, "report.json.tmp"), "w") as f:
    json.dump(report, f)
os.rename(os.path.join(REPORT_DIR, "report.json.tmp"), os.path.join(REPORT_DIR, "report.json"))
sys.stdin.buffer.read()
"""


def _suid_capable_dir() -> Path:
    """A directory everyone can traverse, on a mount without nosuid (/tmp often has it)."""
    for candidate in ("/var/tmp", "/usr/local/lib", "/opt"):
        out = subprocess.run(
            ["findmnt", "-n", "-o", "OPTIONS", "-T", candidate], capture_output=True, text=True
        )
        if out.returncode == 0 and "nosuid" not in out.stdout.strip().split(","):
            return Path(candidate)
    pytest.skip("no directory on a mount without nosuid to install a setuid test launcher")


def _make_user(prefix: str, shell: str) -> User:
    name = f"{prefix}-{secrets.token_hex(3)}"
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", shell, name],
        check=True,
    )  # fmt: skip
    pw = pwd.getpwnam(name)
    return User(name, pw.pw_uid, pw.pw_gid)


def _drop_user(user: User) -> None:
    subprocess.run(["userdel", user.name], check=False, capture_output=True)
    subprocess.run(["groupdel", user.name], check=False, capture_output=True)


def build_launcher(out: Path, svc: User, entry: Path, state_dir: Path, socket: Path) -> None:
    subprocess.run(
        ["make", "-s", "-C", str(LAUNCHER_SRC), f"OUT={out}", f"SHIM_PYTHON={PYTHON}", f"SHIM_ENTRY={entry}",
         f"SHIM_STATE_DIR={state_dir}", f"SHIM_RECORDER_SOCKET={socket}"],
        check=True,
    )  # fmt: skip
    os.chown(out, 0, svc.gid)  # chown clears the mode's set-id bits: chmod after it
    out.chmod(0o6755)


def make_state_dir(path: Path, svc: User) -> None:
    """What postinst creates: the launcher takes the dedicated uid from its owner."""
    path.mkdir(mode=0o750)
    os.chown(path, svc.uid, svc.gid)


@pytest.fixture(scope="session")
def root_required():
    if os.geteuid() != 0:
        pytest.skip("needs root: installs a setuid launcher and creates temporary users")
    for tool in ("setpriv", "useradd", "userdel", "findmnt", "make", "cc"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    if not Path(PYTHON).exists():
        pytest.skip(f"needs {PYTHON}")


@pytest.fixture(scope="session")
def prefix(root_required):
    path = Path(tempfile.mkdtemp(prefix="sst-launcher-", dir=_suid_capable_dir()))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture(scope="session")
def svc(root_required):
    user = _make_user("sst-svc", "/usr/sbin/nologin")
    yield user
    _drop_user(user)


@pytest.fixture(scope="session")
def caller(root_required):
    user = _make_user("sst-call", "/bin/sh")
    yield user
    _drop_user(user)


@pytest.fixture(scope="session")
def bystander(root_required):
    """A second local user, whose mail the caller must not be able to stall (test_shares.py)."""
    user = _make_user("sst-by", "/bin/sh")
    yield user
    _drop_user(user)


@dataclasses.dataclass(frozen=True)
class StandIn:
    launcher: Path
    report_dir: Path
    socket: Path  # where its recorder's socket would be: none but a test's own peer ever listens there

    def report(self) -> dict:
        return json.loads((self.report_dir / "report.json").read_text())

    def clear(self) -> None:
        (self.report_dir / "report.json").unlink(missing_ok=True)


@pytest.fixture(scope="session")
def state_dir(prefix, svc):
    path = prefix / "state"
    make_state_dir(path, svc)
    return path


@pytest.fixture(scope="session")
def standin(prefix, svc, state_dir):
    report_dir = prefix / "report"
    report_dir.mkdir()
    report_dir.chmod(0o1777)  # the entry runs as the dedicated user, or as the caller under no-new-privs
    entry_dir = prefix / "standin"
    entry_dir.mkdir(mode=0o755)
    entry = entry_dir / "entry.py"
    entry.write_text(f"REPORT_DIR = {str(report_dir)!r}\nLIMITS = {LIMITS!r}\n{STANDIN}")
    entry.chmod(0o644)
    bindir = prefix / "bin"
    bindir.mkdir(mode=0o755)
    launcher = bindir / "sendmail"
    socket_dir = prefix / "standin-run"
    socket_dir.mkdir(mode=0o755)
    build_launcher(launcher, svc, entry, state_dir, socket_dir / "recorder.sock")
    for name in ("mailq", "newaliases"):
        (bindir / name).symlink_to("sendmail")
    return StandIn(launcher, report_dir, socket_dir / "recorder.sock")


@dataclasses.dataclass(frozen=True)
class Spoilable:
    """A launcher around the stand-in whose state directory, in a root-owned parent, a test may spoil."""

    launcher: Path
    parent: Path
    state_dir: Path
    report_dir: Path

    def reported(self) -> bool:
        return (self.report_dir / "report.json").exists()


@pytest.fixture(scope="session")
def _spoilable_install(prefix, svc, standin):
    parent = prefix / "spoilable"
    parent.mkdir(mode=0o755)
    launcher = prefix / "bin" / "sendmail-spoilable"
    build_launcher(launcher, svc, prefix / "standin" / "entry.py", parent / "state", parent / "recorder.sock")
    return Spoilable(launcher, parent, parent / "state", standin.report_dir)


@pytest.fixture
def spoilable(_spoilable_install, svc, standin):
    """The spoilable launcher with a sound state directory, restored before each test."""
    standin.clear()
    state = _spoilable_install.state_dir
    if state.is_symlink() or state.is_file():
        state.unlink()
    elif state.exists():
        shutil.rmtree(state)
    _spoilable_install.parent.chmod(0o755)
    os.chown(_spoilable_install.parent, 0, 0)
    make_state_dir(state, svc)
    return _spoilable_install


@pytest.fixture
def report(standin):
    standin.clear()
    return standin


@dataclasses.dataclass(frozen=True)
class Hostile:
    """What a caller controls: its cwd full of planted modules, and an environment aimed at Python/ld.so."""

    home: Path
    markers: Path
    env_args: tuple[str, ...]

    def fired(self) -> list[str]:
        return sorted(os.listdir(self.markers))


PRELOAD = """
#include <fcntl.h>
__attribute__((constructor)) static void planted(void)
{
    open(MARKERS "/ld_preload", O_CREAT | O_WRONLY, 0666);
}
"""


@pytest.fixture(scope="session")
def _hostile_home(prefix, caller):
    home = prefix / "caller-home"
    markers = prefix / "markers"
    home.mkdir(mode=0o755)
    markers.mkdir()
    markers.chmod(0o1777)  # whoever runs planted code (root, the dedicated user, the caller) may leave a mark
    planted = "open({!r}, 'w').close()\n"
    for module in ("json", "resource", "sitecustomize", "usercustomize", "startup", "sendmail_shim/__init__",
                   "sendmail_shim/__main__", "sendmail_shim/config"):  # fmt: skip
        path = home / f"{module}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(planted.format(str(markers / module.replace("/", "."))))
    src = home / "preload.c"
    src.write_text(PRELOAD)
    subprocess.run(
        [
            "cc",
            "-shared",
            "-fPIC",
            f"-DMARKERS={json.dumps(str(markers))}",
            "-o",
            str(home / "preload.so"),
            str(src),
        ],
        check=True,
    )
    # Honoured, it would send the log into the caller's hands and trust a forged caller uid.
    (home / "evil.conf").write_text(f"log_path = {home}/evil.ndjson\nservice_user = {caller.name}\n")
    for path in [home, *home.rglob("*")]:
        os.chown(path, caller.uid, caller.gid)
    env = {
        "PYTHONPATH": str(home),
        "PYTHONSTARTUP": str(home / "startup.py"),
        "PYTHONINSPECT": "1",
        "PYTHONHOME": "/nonexistent",
        "PYTHONIOENCODING": "ascii",
        "PYTHONWARNINGS": "error",
        "LD_PRELOAD": str(home / "preload.so"),
        "LD_LIBRARY_PATH": str(home),
        "GCONV_PATH": str(home),
        "TZ": "UTC-13",
        "PATH": str(home),
        "LANG": "xx_XX.ISO-8859-1",
        "LC_ALL": "xx_XX.ISO-8859-1",
        "SENDMAIL_SHIM_CONFIG": str(home / "evil.conf"),
        "SENDMAIL_SHIM_CALLER_UID": "0",
        "SENDMAIL_SHIM_CALLER_GID": "0",
        "SENDMAIL_SHIM_INVOKED_AS": "mailq",
        "SENDMAIL_SHIM_UNPRIVILEGED": "1",
    }
    return Hostile(home, markers, tuple(f"{k}={v}" for k, v in env.items()))


@pytest.fixture
def hostile(_hostile_home):
    for marker in _hostile_home.markers.iterdir():
        marker.unlink()
    return _hostile_home


@dataclasses.dataclass(frozen=True)
class Shim(ShimLog):
    """The real shim behind a setuid launcher, with its own config, log directory and syslog stand-in.

    `path` is how messages go: "recorder" (the resident recorder is listening on the launcher's socket) or
    "exec" (it is not: the launcher execs the shim)."""

    launcher: Path
    lib: Path
    config: Path
    log_dir: Path
    log: Path
    syslog: SyslogStub
    recorder: Recorder
    path: str = "exec"

    def records(self) -> list[dict]:
        """The log's records, each checked to have come the way this fixture sends messages."""
        found = self.any_records()
        assert [r["sendmail_shim"]["entry"] for r in found] == [self.path] * len(found)
        return found

    def any_records(self) -> list[dict]:
        return super().records()

    def syslog_records(self) -> list[dict]:
        """Records the fallback sent, reassembled from their numbered parts."""
        return list(self.syslog.records().values())


@pytest.fixture(scope="session")
def _shim_install(prefix, svc, state_dir):
    lib = prefix / "lib"
    package = lib / "sendmail_shim"
    shutil.copytree(REPO / "files" / "sendmail_shim", package, ignore=shutil.ignore_patterns("__pycache__"))
    config = prefix / "etc" / "sendmail-shim.conf"
    # The launcher passes no config path (design.md): this copy's layout points at the test config.
    layout = json.loads((package / "layout.json").read_text())
    layout.update(config=str(config), config_dir=str(prefix / "etc" / "sendmail-shim.conf.d"))
    (package / "layout.json").write_text(json.dumps(layout))
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(lib)], check=True)
    for path in [lib, *lib.rglob("*")]:
        os.chown(path, 0, 0)
        path.chmod(0o755 if path.is_dir() else 0o644)

    log_dir = prefix / "log"
    log_dir.mkdir()
    os.chown(log_dir, svc.uid, svc.gid)
    log_dir.chmod(0o2750)
    syslog_dir = prefix / "syslog"
    syslog_dir.mkdir(mode=0o755)
    sock = SyslogStub(syslog_dir / "log", settle=0.05)

    config.parent.mkdir(mode=0o755)
    config.write_text(
        f"log_path = {log_dir}/mail.ndjson\nservice_user = {svc.name}\nfallback = syslog\n"
        f"syslog_socket = {syslog_dir}/log\n"
    )
    config.chmod(0o644)
    sbin = prefix / "sbin"
    sbin.mkdir(mode=0o755)
    socket_dir = prefix / "run"  # as /run/sendmail-shim: root's, nobody else writes it
    socket_dir.mkdir(mode=0o755)
    launcher = sbin / "sendmail"
    build_launcher(launcher, svc, package / "__main__.py", state_dir, socket_dir / "recorder.sock")
    for name in ("mailq", "newaliases"):
        (sbin / name).symlink_to("sendmail")
    recorder = Recorder(lib, socket_dir / "recorder.sock", svc, config, prefix / "recorder.stderr")
    yield Shim(launcher, lib, config, log_dir, log_dir / "mail.ndjson", sock, recorder)
    recorder.stop()
    sock.close()


@pytest.fixture(scope="session", params=["exec", "recorder"])
def shim_path(request):
    """Session-wide, so that pytest runs every test of one path before it switches the recorder."""
    return request.param


def _fresh(install: Shim) -> None:
    for path in install.log_dir.iterdir():
        path.unlink()
    install.syslog.received()
    install.syslog.datagrams.clear()


@pytest.fixture
def shim(_shim_install, shim_path):
    """The installed shim with an empty log and a drained syslog socket, through both paths."""
    if shim_path == "recorder":
        _shim_install.recorder.ensure()
    else:
        _shim_install.recorder.stop()
    _fresh(_shim_install)
    return dataclasses.replace(_shim_install, path=shim_path)


@pytest.fixture
def exec_shim(_shim_install):
    """The installed shim with no recorder: for what only the exec path does (the reason is in each test)."""
    _shim_install.recorder.stop()
    _fresh(_shim_install)
    return _shim_install


@pytest.fixture
def recorder_shim(_shim_install):
    """The installed shim with its recorder listening; a test may restart it with another config."""
    _shim_install.recorder.ensure()
    _fresh(_shim_install)
    yield dataclasses.replace(_shim_install, path="recorder")
    if not _shim_install.recorder.running():
        _shim_install.recorder.stop()
