# SPDX-License-Identifier: MIT
"""Helpers for the fault tests (a module of its own: conftest names clash across test directories).

The shim runs as callers without the launcher run it: `/usr/bin/python3 -m sendmail_shim` with
PYTHONPATH=files and SENDMAIL_SHIM_CONFIG naming a config in a temporary directory. Under root it runs
as `nobody`, so that file permissions mean for it what they mean for a real unprivileged caller.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor

from syslog_stub import SyslogStub

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


def burst_while(shim, prefix: str, count: int, disturb) -> list[int]:
    """Send `count` messages (tokens `prefix`-0, -1, ...) from 8 threads while `disturb()` runs over and
    over in a thread of its own; the senders' exit statuses, in order."""
    done = threading.Event()

    def keep_disturbing():
        while not done.is_set():
            disturb()

    def send(i):
        return shim.run(stdin=message(f"{prefix}-{i}")).returncode

    disturber = threading.Thread(target=keep_disturbing)
    disturber.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(send, range(count)))
    finally:
        done.set()
        disturber.join()


def token_of(record: dict, pattern: re.Pattern) -> str:
    (found,) = set(pattern.findall(record["email"]["subject"]))
    return found


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
