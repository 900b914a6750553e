# SPDX-License-Identifier: MIT
"""Helpers shared by the launcher tests (a module of its own: conftest names clash across test dirs)."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import stat
import struct
import subprocess
import threading
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


GREETING = b"SSHM" + struct.pack(">I", 2)


class Peer:
    """A listening socket at the launcher's recorder place. For each connection it accepts, it notes
    SO_PEERCRED and lets `answer(conn, got)` play the recorder and fill `got`; fds the answer put in
    got["fds"] are closed once it returns. A peer that is not accepting leaves connections in its backlog."""

    def __init__(self, path: Path, owner: int, answer, accepting: bool = True):
        self.path = path
        self.answer = answer
        self.connections: list[dict] = []
        self.errors: list[BaseException] = []
        path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        os.chown(path, owner, owner)
        path.chmod(0o666)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        if accepting:
            self.thread.start()

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    self.connections.append(self._handle(conn))
                except Exception as exc:  # noqa: BLE001 - reported by close(), in the test's thread
                    self.errors.append(exc)

    def _handle(self, conn: socket.socket) -> dict:
        conn.settimeout(30)
        pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        got = {"pid": pid, "uid": uid, "gid": gid, "fds": []}
        try:
            self.answer(conn, got)
        finally:
            for fd in got["fds"]:
                os.close(fd)
        return got

    def backlog(self) -> list[dict]:
        """What each connection still waiting in the backlog carries (the serving thread is stopped)."""
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        self.sock.setblocking(False)
        pending = []
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return pending
            with conn:
                conn.settimeout(5)
                pending.append(what_follows(conn))
                for fd in pending[-1]["fds"]:
                    os.close(fd)

    def close(self) -> list[dict]:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout=60)
        self.sock.close()
        self.path.unlink(missing_ok=True)
        if self.errors:
            raise self.errors[0]
        return self.connections


def what_follows(conn) -> dict:
    """Every byte and fd the launcher sends until it closes its end."""
    data, fds = b"", []
    while True:
        chunk, more, _, _ = socket.recv_fds(conn, 4096, 8)
        data, fds = data + chunk, fds + more
        if not chunk:
            return {"after": data, "fds": fds}


def handoff(conn, got):
    """A sound recorder's start: the greeting, then the header with the fds, then the argv block."""
    conn.sendall(GREETING)
    header, got["fds"], _, _ = socket.recv_fds(conn, 16, 8)
    magic, version, argc, size = struct.unpack(">4sIII", header)
    block = b""
    while len(block) < size:
        block += conn.recv(size - len(block))
    got.update(magic=magic, version=version, argc=argc, argv=block.split(b"\0")[:-1])


def records(status: int):
    """A sound recorder: greets, takes the hand-off, "A", waits for "G", reads the caller's stdin, writes to
    its stdout and stderr, replies status."""

    def answer(conn, got):
        handoff(conn, got)
        conn.sendall(b"A")
        got["go"] = conn.recv(1)
        fds = got["fds"]
        with open(os.dup(fds[0]), "rb") as stdin:
            got["stdin"] = stdin.read()
        os.write(fds[1], b"to the caller's stdout\n")
        os.write(fds[2], b"to the caller's stderr\n")
        conn.sendall(bytes([status]))

    return answer
