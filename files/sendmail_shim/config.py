# SPDX-License-Identifier: MIT
"""The config: `key = value` lines and `#` comment lines.

The shim reads the main file (the package's, every key commented out), then every `*.conf` file of the
drop-in directory in lexical order; a later file wins. Paths come from the installed layout.

`python3 -m sendmail_shim.config FILE` validates FILE; without FILE it validates the whole set the shim
reads. Exit 0, or 78 with one line per problem on stderr.
"""

import os
import sys

from sendmail_shim.sysexits import EX_CONFIG, EX_OK, EX_USAGE


def _load_json(text):
    """json.loads without importing json: json imports re and enum, 7 ms of every message's start (the
    layout is read on each one). _json's C scanner needs only a decoder's settings."""
    try:
        from _json import make_scanner  # noqa: PLC0415
    except ImportError:
        import json  # noqa: PLC0415 - an interpreter without the C accelerator

        return json.loads(text)

    class Settings:
        strict = True
        object_hook = object_pairs_hook = parse_constant = None
        parse_float, parse_int = float, int

    text = text.strip()
    try:
        value, end = make_scanner(Settings())(text, 0)
    except StopIteration:
        raise ValueError("not JSON") from None
    if end != len(text):
        raise ValueError("extra data after the JSON value")
    return value


with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "layout.json"), encoding="utf-8") as _f:
    LAYOUT = _load_json(_f.read())

DEFAULT_PATH = LAYOUT["config"]
DROP_IN_DIR = LAYOUT["config_dir"]
ENV_PATH = "SENDMAIL_SHIM_CONFIG"
_MAX_FILE_BYTES = 1 << 20

FACILITIES = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
}
FACILITIES.update((f"local{n}", 16 + n) for n in range(8))


class Config:
    """Settings with their defaults; a host without a config file runs on these."""

    def __init__(self, path=None):
        self.path = path
        self.log_path = LAYOUT["log"]
        self.log_format = "ecs"
        self.max_message_bytes = 8 * 1024 * 1024
        # Filebeat drops lines longer than its message_max_bytes, 10 MiB by default: stay below it.
        self.max_line_bytes = 10_000_000
        self.hostname = None
        self.service_user = LAYOUT["user"]
        self.fallback = "syslog"
        self.syslog_facility = FACILITIES["mail"]
        self.syslog_socket = "/dev/log"
        # The resident recorder (docs/recorder.md): messages held at once (read at its start), and what
        # one caller's input may take: cron streams a long job's output while the job runs.
        self.recorder_max_connections = 64
        self.recorder_max_input_bytes = 4 << 30
        self.recorder_max_input_seconds = 86400


def _path(value):
    if not value.startswith("/") or "\0" in value:
        raise ValueError("expected an absolute path")
    return value


def _choice(*allowed):
    def check(value):
        if value not in allowed:
            raise ValueError("expected " + " or ".join(allowed))
        return value

    return check


def _size(minimum):
    def check(value):
        number, scale = value, 1
        if value[-1:].upper() in ("K", "M", "G"):
            number, scale = value[:-1], 1 << (10 * (" KMG".index(value[-1].upper())))
        if not (number.isascii() and number.isdigit()):
            raise ValueError("expected a number of bytes, optionally with a K, M or G suffix")
        size = int(number) * scale
        if size < minimum:
            raise ValueError(f"must be at least {minimum}")
        return size

    return check


def _count(minimum):
    def check(value):
        if not (value.isascii() and value.isdigit()):
            raise ValueError("expected a whole number")
        if int(value) < minimum:
            raise ValueError(f"must be at least {minimum}")
        return int(value)

    return check


def _word(value):
    if not value or not value.isprintable() or " " in value:
        raise ValueError("expected one word without spaces")
    return value


def _facility(value):
    if value not in FACILITIES:
        raise ValueError("expected one of " + ", ".join(FACILITIES))
    return FACILITIES[value]


_KEYS = {
    "log_path": _path,
    "log_format": _choice("ecs", "classic"),
    "max_message_bytes": _size(0),
    "max_line_bytes": _size(65536),
    "hostname": _word,
    "service_user": _word,
    "fallback": _choice("syslog", "none"),
    "syslog_facility": _facility,
    "syslog_socket": _path,
    "recorder_max_connections": _count(1),
    "recorder_max_input_bytes": _size(1),
    "recorder_max_input_seconds": _count(1),
}


def parse(text, path, cfg=None):
    """Return (Config, problems): `cfg` (else the defaults) with the file's values applied.

    Bad lines are reported and skipped; the good ones still apply.
    """
    if cfg is None:
        cfg = Config(path)
    else:
        cfg.path = path
    problems = []
    seen = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path} line {number}"
        key, eq, value = line.partition("=")
        key = key.strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if not eq or not key:
            problems.append(f"{where}: expected 'key = value', got {line!r}")
        elif key not in _KEYS:
            problems.append(f"{where}: unknown key {key!r} (known: {', '.join(_KEYS)})")
        elif key in seen:
            problems.append(f"{where}: key {key!r} is set twice")
        else:
            seen.add(key)
            try:
                setattr(cfg, key, _KEYS[key](value))
            except ValueError as exc:
                problems.append(f"{where}: bad value {value!r} for key {key!r}: {exc}")
    return cfg, problems


def load(path, required, cfg=None):
    """Read `path` over `cfg` (else the defaults); a missing file changes nothing unless `required`."""
    if cfg is None:
        cfg = Config(None)
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        if required:
            cfg.path = path
            return cfg, [f"{path}: no such file"]
        return cfg, []
    except OSError as exc:
        cfg.path = path
        return cfg, [f"{path}: cannot read: {exc.strerror or exc}"]
    cfg.path = path
    if len(data) > _MAX_FILE_BYTES:
        return cfg, [f"{path}: larger than {_MAX_FILE_BYTES} bytes"]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return cfg, [f"{path}: not UTF-8 text"]
    return parse(text, path, cfg)


def drop_ins(directory):
    """The `*.conf` files of `directory` in the order they apply; a missing directory has none."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ValueError(f"{directory}: cannot list: {exc.strerror or exc}") from None
    wanted = sorted(n for n in names if n.endswith(".conf") and not n.startswith("."))
    return [os.path.join(directory, name) for name in wanted]


def load_set(path=DEFAULT_PATH, directory=DROP_IN_DIR):
    """The main file, then the drop-ins in lexical order: a later file wins, every file is validated."""
    cfg, problems = load(path, required=False)
    try:
        files = drop_ins(directory)
    except ValueError as exc:
        return cfg, [*problems, str(exc)]
    for drop_in in files:
        cfg, more = load(drop_in, required=True, cfg=cfg)
        problems += more
    return cfg, problems


def hostname(cfg):
    """This host's name in records and SMTP replies: the configured one, else the kernel's node name."""
    return cfg.hostname or os.uname().nodename


def from_environ(environ):
    """The config the shim runs with: SENDMAIL_SHIM_CONFIG names a file that must exist, else the set."""
    path = environ.get(ENV_PATH)
    if path:
        return load(path, required=True)
    return load_set()


def main(argv):
    if len(argv) > 1:
        sys.stderr.write("usage: python3 -m sendmail_shim.config [FILE]\n")
        return EX_USAGE
    _, problems = load(argv[0], required=True) if argv else load_set()
    for problem in problems:
        sys.stderr.write(f"sendmail-shim: {problem}\n")
    return EX_CONFIG if problems else EX_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
