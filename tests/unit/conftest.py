"""Shared fixtures: run the shim as the launcher does, read its log, listen as a syslog daemon would."""

import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest
from sendmail_shim import app, message
from syslog_stub import SyslogStub

FILES = pathlib.Path(__file__).resolve().parents[2] / "files"
ENTRY = FILES / "sendmail_shim" / "__main__.py"
# The interpreter the launcher runs; the venv's when the system one is missing.
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def _reject_constant(name):
    raise ValueError("not strict JSON: " + name)


def strict_loads(line):
    """json.loads that refuses NaN/Infinity, and bytes that are not UTF-8."""
    if isinstance(line, bytes):
        line = line.decode("utf-8")
    return json.loads(line, parse_constant=_reject_constant)


def message_bytes(rec):
    """The exact message bytes an ECS record keeps."""
    kept = rec["sendmail_shim"]["message"]
    if "base64" in kept:
        return base64.b64decode(kept["base64"], validate=True)
    return rec["message"].encode("utf-8")


class Syslog:
    """The shared syslog stand-in on a short path: AF_UNIX paths are limited to 108 bytes, and
    pytest's tmp_path can be longer."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="shim-", dir="/tmp")
        self.stub = SyslogStub(os.path.join(self.dir, "log.sock"))
        self.path = self.stub.path

    def received(self):
        return [datagram.decode("ascii") for datagram in self.stub.received()]

    def record(self, event_id=None):
        """The record with that event id, or the only record when none is named."""
        records = self.stub.records()
        assert records, "no record in syslog"
        if event_id is not None:
            return records[event_id]
        (only,) = records.values()
        return only

    def close(self):
        self.stub.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Shim:
    """The shim in a sandbox: its own config, log directory and syslog socket."""

    def __init__(self, tmp_path, syslog):
        self.tmp = tmp_path
        self.syslog = syslog
        self.logdir = tmp_path / "log"
        self.logdir.mkdir()
        self.log = self.logdir / "mail.ndjson"
        self.config = tmp_path / "sendmail-shim.conf"
        self.configure()

    def configure(self, **settings):
        values = {"log_path": str(self.log), "syslog_socket": self.syslog.path}
        values.update(settings)
        self.config.write_text("".join(f"{k} = {v}\n" for k, v in values.items()))

    def env(self, **extra):
        env = {"SENDMAIL_SHIM_CONFIG": str(self.config), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        env.update(extra)
        return env

    def run(self, *args, stdin=b"", env=None, python=PYTHON, timeout=60):
        return subprocess.run(
            [python, "-I", "-S", str(ENTRY), *args],
            input=stdin,
            capture_output=True,
            env=self.env(**(env or {})),
            timeout=timeout,
        )

    def records(self):
        if not self.log.exists():
            return []
        return [strict_loads(line) for line in self.log.read_bytes().splitlines()]

    def record(self):
        records = self.records()
        assert len(records) == 1, records
        return records[0]


@pytest.fixture
def syslog():
    listener = Syslog()
    yield listener
    listener.close()


@pytest.fixture
def shim(tmp_path, syslog):
    return Shim(tmp_path, syslog)


CRON_MESSAGE = (
    b"From: root (Cron Daemon)\n"
    b"To: root\n"
    b"Subject: Cron <root@host> run-parts --report /etc/cron.daily\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/plain; charset=UTF-8\n"
    b"Content-Transfer-Encoding: 8bit\n"
    b"X-Cron-Env: <SHELL=/bin/sh>\n"
    b"\n"
    b"/etc/cron.daily/logrotate: done\n"
)


def make_context(tmp_path, argv=("sendmail", "-i", "root"), **settings):
    """An app.Context as a run with `argv` and a config of `settings` would have it."""
    config = tmp_path / "ctx.conf"
    values = {"log_path": str(tmp_path / "mail.ndjson"), "syslog_socket": str(tmp_path / "no-syslog")}
    values.update(settings)
    config.write_text("".join(f"{k} = {v}\n" for k, v in values.items()))
    return app.Context(list(argv), {"SENDMAIL_SHIM_CONFIG": str(config)})


def sink_of(data, cap=8 << 20):
    sink = message.Sink(cap)
    sink.feed(data)
    return sink
