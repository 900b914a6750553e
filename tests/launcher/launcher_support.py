"""Helpers shared by the launcher tests (a module of its own: conftest names clash across test dirs)."""

from __future__ import annotations

import dataclasses
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

from shimtest import serving

PYTHON = "/usr/bin/python3"
ACTIVATE = Path(__file__).resolve().parents[1] / "activate.py"
LIMITS = ["RLIMIT_FSIZE", "RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_NPROC", "RLIMIT_NOFILE",
          "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RTTIME"]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int


def has_cap_sys_resource() -> bool:
    """Whether root here may raise a hard limit (not in containers nor on the CI hosts)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 24 & 1)
    return False


def as_user(user: User, *argv: str | os.PathLike, nnp: bool = False) -> list[str]:
    """The command line that runs argv as user, with no supplementary group (a plain local user)."""
    extra = ["--no-new-privs"] if nnp else []
    return ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups", *extra, "--",
            *map(str, argv)]  # fmt: skip


def run(cmd: list[str], *, stdin: bytes = b"", env: dict | None = None, cwd=None, pass_fds=()):
    return subprocess.run(
        cmd, input=stdin, env={} if env is None else env, cwd=cwd, capture_output=True, timeout=60,
        pass_fds=pass_fds,
    )  # fmt: skip


def wait_for(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the process under test")


class Recorder:
    """The resident recorder as systemd runs it: the socket bound by root in a root-owned directory and
    given to the service user (tests/activate.py, as the socket unit does), the recorder started as that
    user with the socket as fd 3 (LISTEN_FDS)."""

    def __init__(self, lib: Path, socket: Path, svc: User, config: Path, errors: Path):
        self.lib = lib
        self.socket = socket
        self.svc = svc
        self.default_config = config
        self.errors = errors
        self.proc: subprocess.Popen | None = None
        self.config: Path | None = None

    def start(self, config: Path | None = None) -> None:
        """Starts a recorder with config (the suite's by default), stopping the one running first."""
        self.stop()
        # Outside systemd nobody else removes the socket of a recorder that was killed.
        self.socket.unlink(missing_ok=True)
        self.config = config or self.default_config
        with open(self.errors, "ab") as errors:
            self.proc = subprocess.Popen(
                [PYTHON, ACTIVATE, "--owner", f"{self.svc.uid}:{self.svc.gid}", self.socket,
                 *as_user(self.svc, PYTHON, "-I", "-S", self.lib / "sendmail_shim" / "recorder.py")],
                env={"SENDMAIL_SHIM_CONFIG": str(self.config)}, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=errors,
            )  # fmt: skip
        wait_for(self._listening, timeout=60)

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the recorder exited {self.proc.returncode}: {self.errors.read_text()}")
        try:
            info = self.socket.lstat()
        except FileNotFoundError:
            return False
        return stat.S_ISSOCK(info.st_mode) and info.st_uid == self.svc.uid and serving(self.proc.pid)

    def running(self) -> bool:
        """Whether the recorder with the suite's config is up."""
        return self.proc is not None and self.proc.poll() is None and self.config == self.default_config

    def ensure(self) -> None:
        if not self.running():
            self.start()

    def stop(self) -> None:
        """SIGTERM: it finishes the messages it holds and exits 0. Whatever a test left at the socket's
        place goes too."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=30) == 0, self.errors.read_text()
            self.proc = None
        self.socket.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL: whatever it holds is lost, and its socket stays behind, refusing."""
        assert self.proc is not None and self.proc.poll() is None
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc = None
