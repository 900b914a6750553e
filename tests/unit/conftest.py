"""Shared fixtures: run the shim as the launcher does, read its log, listen as a syslog daemon would."""

import os
import shutil
import signal
import tempfile

import pytest
from sendmail_shim import app, message
from shimtest import Shim
from syslog_stub import SyslogStub


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
        return self.stub.record(event_id)

    def close(self):
        self.stub.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def _signal_mask():
    """app.main run in this process holds signals until the process exits (app.Context.hold_signals):
    here the test ends instead, and the next one (and its children) gets the mask back."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    yield
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


@pytest.fixture
def syslog():
    listener = Syslog()
    yield listener
    listener.close()


@pytest.fixture
def shim(tmp_path, syslog):
    """The shim in a sandbox: its own config, log directory and syslog socket."""
    (tmp_path / "log").mkdir()
    return Shim(tmp_path / "sendmail-shim.conf", tmp_path / "log" / "mail.ndjson", syslog)


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
