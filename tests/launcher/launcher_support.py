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

PYTHON = "/usr/bin/python3"
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
    """The resident recorder outside systemd, as the host's suites run it: started as root with --socket in
    a root-owned directory, it hands the socket to the config's service_user and drops to that user."""

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
                [PYTHON, "-I", "-S", self.lib / "sendmail_shim" / "recorder.py", "--socket", self.socket],
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
        return stat.S_ISSOCK(info.st_mode) and info.st_uid == self.svc.uid

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


class Peer:
    """A listening socket at the launcher's recorder place; `answer(conn, fds)` plays the recorder."""

    def __init__(self, path: Path, owner: int, answer):
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
        header, fds, _, _ = socket.recv_fds(conn, 16, 8)
        magic, version, argc, size = struct.unpack(">4sIII", header)
        block = b""
        while len(block) < size:
            block += conn.recv(size - len(block))
        got = {"pid": pid, "uid": uid, "gid": gid, "magic": magic, "version": version, "argc": argc,
               "argv": block.split(b"\0")[:-1], "fds": fds}  # fmt: skip
        try:
            got.update(self.answer(conn, fds) or {})
        finally:
            for fd in fds:
                os.close(fd)
        return got

    def close(self) -> list[dict]:
        self.stopping.set()
        self.thread.join(timeout=60)
        self.sock.close()
        self.path.unlink(missing_ok=True)
        if self.errors:
            raise self.errors[0]
        return self.connections


def records(status: int):
    """A sound recorder: "A", waits for "G", reads the caller's stdin, writes to its stdout and stderr."""

    def answer(conn, fds):
        conn.sendall(b"A")
        go = conn.recv(1)
        with open(os.dup(fds[0]), "rb") as stdin:
            data = stdin.read()
        os.write(fds[1], b"to the caller's stdout\n")
        os.write(fds[2], b"to the caller's stderr\n")
        conn.sendall(bytes([status]))
        return {"go": go, "stdin": data}

    return answer
