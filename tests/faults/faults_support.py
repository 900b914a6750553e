"""Helpers for the fault tests (a module of its own: conftest names clash across test directories).

The shim runs as callers without the launcher run it: `/usr/bin/python3 -m sendmail_shim` with
PYTHONPATH=files and SENDMAIL_SHIM_CONFIG naming a config in a temporary directory. Under root it runs
as `nobody`, so that file permissions mean for it what they mean for a real unprivileged caller.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

from syslog_stub import SyslogStub

REPO = Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3"
EX_TEMPFAIL = 75
NOBODY = 65534
CRON_ARGS = ("-FCronDaemon", "-i", "-B8BITMIME", "-oem", "user")


def runner_ids() -> tuple[int, int]:
    """Whom the shim runs as: nobody under root (root would ignore every permission), else ourselves."""
    if os.geteuid() == 0:
        return NOBODY, NOBODY
    return os.getuid(), os.getgid()


def message(token: str, body_bytes: int = 0) -> bytes:
    """A cron-style message known by `token`, with about `body_bytes` of printable body lines."""
    head = f"From: root (Cron Daemon)\nTo: user\nSubject: Cron <user@host> job {token}\n\n{token} done\n"
    line = f"{token} " + "x" * 70 + "\n"
    return (head + line * (body_bytes // len(line))).encode()


class BadLog(AssertionError):
    pass


def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def parse_record(raw: bytes) -> dict:
    """A line of the log (with its newline) as a strict reader sees it; BadLog if it is not a record."""
    if not raw.endswith(b"\n"):
        raise BadLog(f"partial line (no newline): {raw[:80]!r}...")
    try:
        record = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except ValueError as exc:
        raise BadLog(f"not strict JSON ({exc}): {raw[:80]!r}...") from None
    if not isinstance(record, dict):
        raise BadLog(f"not a JSON object: {raw[:80]!r}")
    return record


def raw_lines(*paths: Path) -> list[bytes]:
    lines = []
    for path in paths:
        if path.exists():
            with open(path, "rb") as f:
                lines.extend(f)
    return lines


def read_log(*paths: Path) -> list[dict]:
    """Every record of the log files; any line that is not a whole strict-JSON record fails."""
    return [parse_record(raw) for raw in raw_lines(*paths)]


def token_of(record: dict, pattern: re.Pattern) -> str:
    (found,) = set(pattern.findall(record["email"]["subject"]))
    return found


@dataclasses.dataclass
class Shim:
    """The shim with its own config, log directory and syslog socket in a temporary directory."""

    workdir: Path
    uid: int
    gid: int
    settings: dict

    @property
    def config(self) -> Path:
        return self.workdir / "sendmail-shim.conf"

    @property
    def log(self) -> Path:
        return Path(self.settings["log_path"])

    def configure(self, **settings) -> None:
        self.settings.update(settings)
        self.config.write_text("".join(f"{key} = {value}\n" for key, value in self.settings.items()))
        self.config.chmod(0o644)

    def env(self) -> dict:
        return {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(REPO / "files"),
            "SENDMAIL_SHIM_CONFIG": str(self.config),
        }

    def argv(self, *args: str) -> list[str]:
        return [PYTHON, "-m", "sendmail_shim", *(args or CRON_ARGS)]

    def _identity(self) -> dict:
        if os.geteuid() != 0:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def popen(self, *args: str, stdin=subprocess.PIPE, wrap: tuple = ()):
        return subprocess.Popen(
            [*wrap, *self.argv(*args)], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=self.env(), cwd="/", **self._identity(),
        )  # fmt: skip

    def run(self, data: bytes, *args: str, wrap: tuple = (), timeout=60):
        return subprocess.run(
            [*wrap, *self.argv(*args)], input=data, capture_output=True, env=self.env(), cwd="/",
            timeout=timeout, **self._identity(),
        )  # fmt: skip


class SyslogSink(SyslogStub):
    """The shared syslog stand-in, with the lookup the fault tests need."""

    def record_with(self, token: str) -> dict:
        found = [r for r in self.records().values() if token in r["email"].get("subject", "")]
        assert len(found) == 1, (
            f"{len(found)} records with {token} reached syslog ({len(self.datagrams)} datagrams)"
        )
        return found[0]


def assert_kept_whole(record: dict, data: bytes) -> None:
    """`record` holds exactly the message `data`: nothing lost, nothing added."""
    kept = record["sendmail_shim"]["message"]
    assert kept["bytes"] == len(data)
    assert kept["sha256"] == hashlib.sha256(data).hexdigest()
    assert kept["truncated"] is False
    assert record["message"] == data.decode()
