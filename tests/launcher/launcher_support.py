"""Helpers shared by the launcher tests (a module of its own: conftest names clash across test dirs)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
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
