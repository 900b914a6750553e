# SPDX-License-Identifier: MIT
"""Shared fixtures: run the shim as the launcher does, read its log, listen as a syslog daemon would."""

import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
from shimtest import Shim, parametrize_entry_points, stop_cleanly, through_recorder
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
    """app.main run in this process holds signals until the process exits (core._Progress.hold_signals):
    here the test ends instead, and the next one (and its children) gets the mask back."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    yield
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


@pytest.fixture
def syslog():
    listener = Syslog()
    yield listener
    listener.close()


def pytest_generate_tests(metafunc):
    parametrize_entry_points(metafunc)


@pytest.fixture
def shim(request, tmp_path, syslog):
    """The shim in a sandbox: its own config, log directory and syslog socket; run through the entry
    point of the test's parameter (exec, or a recorder of its own)."""
    (tmp_path / "log").mkdir()
    shim = Shim(tmp_path / "sendmail-shim.conf", tmp_path / "log" / "mail.ndjson", syslog)
    if request.param == "exec":
        yield shim
        return
    # A short path of its own: AF_UNIX paths are limited to 108 bytes, pytest's tmp_path may be longer.
    directory = tempfile.mkdtemp(prefix="sst-core-", dir="/tmp")
    try:
        through_recorder(shim, Path(directory))
        yield shim
        stop_cleanly(shim.recorder)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
