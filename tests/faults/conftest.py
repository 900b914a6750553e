# SPDX-License-Identifier: MIT
"""Fixtures for the fault tests: a shim with its own config, log directory and syslog socket."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from faults_support import CRON_ARGS, SyslogSink, runner_ids
from shimtest import FILES, Shim, parametrize_entry_points, stop_cleanly, through_recorder
from shimtest import SYSTEM_PYTHON as PYTHON


@pytest.fixture
def workdir():
    # Not pytest's tmp_path: under root it is private to root, and the shim runs as nobody here.
    path = Path(tempfile.mkdtemp(prefix="sst-faults-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["chmod", "-R", "u+rwX", str(path)], check=False)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def syslog(workdir):
    sink = SyslogSink(workdir / "syslog.sock", settle=0.3)
    yield sink
    sink.close()


def pytest_generate_tests(metafunc):
    parametrize_entry_points(metafunc)


@pytest.fixture
def shim(request, workdir, syslog):
    if not os.access(PYTHON, os.X_OK):
        pytest.skip(f"needs {PYTHON}: the interpreter the launcher runs the shim with")
    uid, gid = runner_ids()
    logdir = workdir / "log"
    logdir.mkdir(mode=0o755)
    os.chown(logdir, uid, gid)
    # The shim runs without the launcher, as a caller would start it; the service user is one the runner
    # is not, so the shim takes its identity from the process.
    shim = Shim(
        workdir / "sendmail-shim.conf", logdir / "mail.ndjson", syslog,
        command=[PYTHON, "-m", "sendmail_shim"], env={"PYTHONPATH": str(FILES)},
        user=(uid, gid) if os.geteuid() == 0 else None, default_args=CRON_ARGS,
    )  # fmt: skip
    shim.configure(service_user="sst-faults-nobody")
    if request.param == "exec":
        yield shim
        return
    # The recorder runs as the runner too (it binds as itself), in a directory the runner owns.
    run = workdir / "run"
    run.mkdir(mode=0o755)
    os.chown(run, uid, gid)
    through_recorder(shim, run)
    yield shim
    # The one running now: a test may have restarted it.
    stop_cleanly(shim.recorder)


@pytest.fixture
def as_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (mounts a filesystem, or kills a process of another user)")


@pytest.fixture
def tmpfs(as_root, workdir, shim):
    """A 256 KiB tmpfs owned by the shim's user: a log filesystem that fills up quickly (not 64 KiB: the
    shim wants 64 KiB of room beyond a record before it writes, so nothing would ever fit)."""
    mountpoint = workdir / "small"
    mountpoint.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size=256k,mode=0755,uid={shim.uid},gid={shim.gid}", "sst-faults",
         str(mountpoint)],
        check=True,
    )  # fmt: skip
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)
