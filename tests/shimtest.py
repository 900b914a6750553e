# SPDX-License-Identifier: MIT
"""The one home of the scaffolding the shim's test suites share (tests/unit, tests/faults, tests/launcher):
the strict reader of records, the exact bytes a record keeps, the log reader and the shim runner.

The syslog stand-in and its reassembler are in syslog_stub.py.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

from sendmail_shim import cli, config, core, headers, identity, message, record

REPO = Path(__file__).resolve().parents[1]
FILES = REPO / "files"
ENTRY = FILES / "sendmail_shim" / "__main__.py"
RECORDER = FILES / "sendmail_shim" / "recorder.py"
# The launcher's socket side, for the suites that run the recorder path without the launcher.
HANDOFF = REPO / "tests" / "handoff.py"
# Starts a recorder as systemd does (LISTEN_FDS): a recorder run as root takes no --socket.
ACTIVATE = REPO / "tests" / "activate.py"
ENTRY_POINTS = ("exec", "recorder")
# The interpreter the launcher runs the shim with; the venv's where a machine has no system python3.
SYSTEM_PYTHON = "/usr/bin/python3"
PYTHON = SYSTEM_PYTHON if os.path.exists(SYSTEM_PYTHON) else sys.executable
EX_TEMPFAIL = 75


# A message as cron sends it (Debian's cron, with its X-Cron-Env header).
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


def config_environ(tmp_path, **settings):
    """The environment of a shim whose config is `settings` (a log and no syslog in tmp_path by default)."""
    config = tmp_path / "ctx.conf"
    values = {"log_path": str(tmp_path / "mail.ndjson"), "syslog_socket": str(tmp_path / "no-syslog")}
    values.update(settings)
    config.write_text("".join(f"{k} = {v}\n" for k, v in values.items()))
    return {"SENDMAIL_SHIM_CONFIG": str(config)}


def config_of(tmp_path, **settings):
    """The config a shim reads from config_environ(tmp_path, **settings); a bad setting fails."""
    cfg, problems = config.from_environ(config_environ(tmp_path, **settings))
    assert problems == [], problems
    return cfg


# record.build's input when nothing else is given: an exec-path caller's command line and the defaults.
DEFAULT_ARGV = ("sendmail", "-i", "root")
HOSTNAME = "host.example"
DEFAULTS = config.Config()


def message_origin(argv=DEFAULT_ARGV, hostname=HOSTNAME):
    """The core.Origin and the parsed options of a message this process hands over with `argv`: what
    record.build takes, made directly (no entry point, no config)."""
    parent_pid, parent_name = identity.parent()
    caller = core.Caller(os.getuid(), os.getgid(), identity.user_name(os.getuid()), os.getpid(),
                         parent_pid=parent_pid, parent_name=parent_name)  # fmt: skip
    origin = core.Origin(argv, caller, hostname, "exec")
    return origin, cli.parse(list(origin.argv[1:]), origin.argv[0])


def sink_of(data, cap=DEFAULTS.max_message_bytes):
    sink = message.Sink(cap)
    sink.feed(data)
    return sink


def build_record(data, envelope=("s", []), *, argv=DEFAULT_ARGV, hostname=HOSTNAME,
                 cap=DEFAULTS.max_message_bytes, log_format=DEFAULTS.log_format,
                 line_limit=DEFAULTS.max_line_bytes):  # fmt: skip
    """The record.Record of `data` (read up to `cap` bytes), handed over by this process with `argv`."""
    origin, options = message_origin(argv, hostname)
    sink = sink_of(data, cap)
    return record.build(origin, options, envelope, headers.parse(sink.kept), sink, log_format=log_format,
                        line_limit=line_limit)  # fmt: skip


class BadLog(AssertionError):
    """A log line that is not one whole strict-JSON record."""


def _reject_constant(name):
    raise ValueError("not strict JSON: " + name)


def strict_loads(text: str | bytes):
    """json.loads that refuses NaN/Infinity, and bytes that are not UTF-8."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return json.loads(text, parse_constant=_reject_constant)


def parse_record(raw: bytes) -> dict:
    """A line of the log (with its newline) as a strict reader such as Filebeat sees it."""
    if not raw.endswith(b"\n"):
        raise BadLog(f"partial line (no newline): {raw[:80]!r}...")
    if raw.count(b"\n") != 1:
        raise BadLog(f"more than one line: {raw[:80]!r}...")
    try:
        record = strict_loads(raw)
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


def message_bytes(rec: dict) -> bytes:
    """The exact message bytes a record keeps (ECS or classic layout): the first kept_bytes bytes."""
    if "sendmail_shim" in rec:
        kept = rec["sendmail_shim"]["message"]
        if "base64" in kept:
            return base64.b64decode(kept["base64"], validate=True)
        return rec["message"].encode("utf-8")
    if "body_base64" in rec:
        return base64.b64decode(rec["body_base64"], validate=True)
    return rec["body"].encode("utf-8")


class ShimLog:
    """The reading side: the log a shim appends to."""

    log: Path

    def log_bytes(self) -> bytes:
        return self.log.read_bytes() if self.log.exists() else b""

    def records(self) -> list[dict]:
        return read_log(self.log)

    def record(self) -> dict:
        records = self.records()
        assert len(records) == 1, records
        return records[0]


class Shim(ShimLog):
    """The shim run as a caller runs it, with its own config file, log and syslog stand-in.

    `command` starts it (the entry script, or `-m sendmail_shim` with PYTHONPATH); `user` is a
    (uid, gid) to run it as (root tests), `default_args` what a run without arguments passes.
    """

    def __init__(self, config: Path, log: Path, syslog, *, command=None, env=None, user=None,
                 default_args=()):  # fmt: skip
        self.config = Path(config)
        self.syslog = syslog
        self.command = list(command or [PYTHON, "-I", "-S", str(ENTRY)])
        self.base_env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **(env or {})}
        self.user = user
        self.default_args = tuple(default_args)
        self.settings = {"log_path": str(log), "syslog_socket": str(syslog.path)}
        # The Recorder the command hands messages to (through_recorder); None on the exec path.
        self.recorder = None
        self.configure()

    @property
    def log(self) -> Path:
        return Path(self.settings["log_path"])

    @property
    def uid(self) -> int:
        return os.getuid() if self.user is None else self.user[0]

    @property
    def gid(self) -> int:
        return os.getgid() if self.user is None else self.user[1]

    def configure(self, **settings) -> None:
        """Write the config file: the log, the syslog stand-in, and `settings` (kept across calls)."""
        self.settings.update({key: str(value) for key, value in settings.items()})
        self.config.write_text("".join(f"{k} = {v}\n" for k, v in self.settings.items()))
        self.config.chmod(0o644)

    def env(self, **extra) -> dict:
        return {**self.base_env, "SENDMAIL_SHIM_CONFIG": str(self.config), **extra}

    def argv(self, *args: str) -> list[str]:
        return [*self.command, *(args or self.default_args)]

    def _identity(self) -> dict:
        if self.user is None:
            return {}
        uid, gid = self.user
        return {"user": uid, "group": gid, "extra_groups": []}

    def run(self, *args: str, stdin: bytes = b"", env=None, wrap: tuple = (), timeout=60):
        return subprocess.run(
            [*wrap, *self.argv(*args)], input=stdin, capture_output=True, env=self.env(**(env or {})),
            cwd="/", timeout=timeout, **self._identity(),
        )  # fmt: skip

    def popen(self, *args: str, stdin=subprocess.PIPE, wrap: tuple = (), **kwargs):
        return subprocess.Popen(
            [*wrap, *self.argv(*args)], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=self.env(), cwd="/", **self._identity(), **kwargs,
        )  # fmt: skip


def parametrize_entry_points(metafunc):
    """The suites' pytest_generate_tests: every test of the `shim` fixture runs through each entry point
    (the fixture's param), except those marked exec_only or recorder_only."""
    if "shim" in metafunc.fixturenames:
        only = [name for name in ENTRY_POINTS if metafunc.definition.get_closest_marker(f"{name}_only")]
        metafunc.parametrize("shim", only or list(ENTRY_POINTS), indirect=True)


def listening(path: Path) -> bool:
    """Whether a UNIX socket at `path` accepts connections now (without connecting, which the recorder
    would log as a broken hand-off)."""
    with open("/proc/net/unix") as table:
        for line in table:
            fields = line.split()
            # Flags 00010000: __SO_ACCEPTCON, a listening socket.
            if len(fields) == 8 and fields[7] == str(path) and fields[3] == "00010000":
                return True
    return False


def serving(pid: int) -> bool:
    """Whether the recorder `pid` has installed its SIGTERM handler: socket-activated, its socket listens
    before the recorder even starts, and a SIGTERM before the handler would kill it."""
    try:
        with open(f"/proc/{pid}/status") as status:
            caught = next(int(line.split()[1], 16) for line in status if line.startswith("SigCgt:"))
    except FileNotFoundError:
        return False
    return bool(caught >> (signal.SIGTERM - 1) & 1)


class Recorder:
    """A recorder as the suites run it: socket-activated in `directory`, the shim's config, started as
    `user` (a (uid, gid); None: as the runner). Its stderr (the journal's part) is kept in a file."""

    def __init__(self, config: Path, directory: Path, user=None):
        self.config = Path(config)
        self.socket = Path(directory) / "recorder.sock"
        self.stderr_path = Path(directory) / "recorder.err"
        self.user = user
        self.proc = None

    def start(self) -> Recorder:
        identity = (
            {} if self.user is None else {"user": self.user[0], "group": self.user[1], "extra_groups": []}
        )
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [PYTHON, str(ACTIVATE), str(self.socket), PYTHON, "-I", "-S", str(RECORDER)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, cwd="/", **identity,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "SENDMAIL_SHIM_CONFIG": str(self.config)},
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while not (listening(self.socket) and serving(self.proc.pid)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the recorder did not start: {self.log()}")
            time.sleep(0.01)
        return self

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def stop(self, timeout=60) -> int:
        """SIGTERM, then its exit status once it has finished what it holds."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def through_recorder(shim: Shim, directory: Path) -> Recorder:
    """Run `shim` through a recorder of its own, started as the shim's user, which is also the config's
    service_user. Every message of a suite comes from that one uid: unless the test chose a bound, it is
    one whose share for a uid (an eighth) covers a suite's 64 concurrent callers."""
    bound = {} if "recorder_max_connections" in shim.settings else {"recorder_max_connections": 512}
    shim.configure(service_user=pwd.getpwuid(shim.uid).pw_name, **bound)
    recorder = Recorder(shim.config, directory, shim.user).start()
    shim.command = [PYTHON, "-I", "-S", str(HANDOFF), str(recorder.socket), "sendmail"]
    shim.recorder = recorder
    return recorder


def stop_cleanly(recorder: Recorder) -> None:
    """A suite's teardown: the recorder stops on SIGTERM with status 0 and never logged a traceback."""
    status = recorder.stop()
    log = recorder.log()
    assert "Traceback" not in log, log
    assert status == 0, log
