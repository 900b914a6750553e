# SPDX-License-Identifier: MIT
"""The record: ECS and classic layouts, strict JSON, exact bytes, the line size bound."""

import base64
import hashlib
import os
import re

import pytest
from sendmail_shim import headers, record
from shimtest import (
    CRON_MESSAGE,
    DEFAULTS,
    build_record,
    message_bytes,
    message_origin,
    sink_of,
    strict_loads,
)


def build(data, **given):
    """The record of `data` sent by root@host to root, as a strict reader sees it, and its line."""
    line = build_record(data, ("root@host", ["root"]), **given).line()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    return strict_loads(line), line


def test_ecs_fields():
    data = (
        b"From: Cron Daemon <root@host>\nTo: a@x, B <b@x>\nCc: c@x\nBcc: d@x\n"
        b"Subject: =?UTF-8?Q?caf=C3=A9?=\nMessage-ID: <123@host>\nDate: Tue, 25 Nov 2025 11:57:03 +0100\n"
        b"X-Mailer: PHP/8.2\nContent-Type: text/plain; charset=utf-8\n\nbody\n"
    )
    rec, _ = build(data, hostname="mail.example")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", rec["@timestamp"])
    assert rec["ecs"]["version"]
    assert rec["event"]["kind"] == "event"
    assert rec["event"]["category"] == ["email"]
    assert rec["event"]["action"] and rec["event"]["dataset"] == "sendmail_shim.mail"
    assert re.fullmatch(r"[0-9a-f]{32}", rec["event"]["id"])
    assert rec["host"]["hostname"] == "mail.example"
    assert rec["user"]["id"] == str(os.getuid()) and isinstance(rec["user"]["name"], str)
    assert rec["group"]["id"] == str(os.getgid())
    assert rec["process"]["pid"] == os.getpid()
    assert rec["process"]["args"] == ["sendmail", "-i", "root"]
    assert rec["process"]["parent"]["pid"] == os.getppid()
    assert rec["process"]["parent"]["name"]
    email = rec["email"]
    assert email["from"]["address"] == ["root@host"]
    assert email["to"]["address"] == ["a@x", "b@x"]
    assert email["cc"]["address"] == ["c@x"]
    assert email["bcc"]["address"] == ["d@x"]
    assert email["subject"] == "café"
    assert email["message_id"] == "123@host"
    assert email["origination_timestamp"] == "2025-11-25T11:57:03+01:00"
    assert email["x_mailer"] == "PHP/8.2"
    assert email["content_type"] == "text/plain; charset=utf-8"
    assert email["direction"] == "outbound"
    assert email["local_id"] == rec["event"]["id"]
    shim = rec["sendmail_shim"]
    assert shim["envelope"] == {"sender": "root@host", "recipients": ["root"]}
    assert shim["options"]["ignore_dots"] is True
    assert shim["message"] == {
        "bytes": len(data),
        "kept_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "truncated": False,
    }
    assert rec["message"] == data.decode()


def test_each_record_has_its_own_id():
    ids = {build(b"x")[0]["event"]["id"] for _ in range(20)}
    assert len(ids) == 20


def test_classic_layout_is_the_go_shims():
    rec, _ = build(CRON_MESSAGE, argv=("/usr/sbin/sendmail", "-t"), log_format="classic")
    assert list(rec) == ["time", "uid", "username", "arguments", "body"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rec["time"])
    assert rec["uid"] == str(os.getuid())
    assert rec["arguments"] == ["-t"]
    assert rec["body"] == CRON_MESSAGE.decode()


def test_classic_keeps_exact_bytes_when_needed():
    data = b"Subject: x\n\n\xff\xfe\x00 latin-1 caf\xe9\n"
    rec, _ = build(data, log_format="classic")
    assert base64.b64decode(rec["body_base64"]) == data
    assert "\ufffd" in rec["body"]


def test_non_utf8_and_nul_bytes():
    data = b"Subject: \xe9t\xe9\n\nNUL:\x00 bad:\xc3\x28 \xed\xa0\x80 end\n"
    rec, line = build(data)
    assert message_bytes(rec) == data
    assert "\ufffd" in rec["message"]
    line.decode("utf-8")  # strict UTF-8, no surrogates


def test_valid_utf8_with_nul_stays_text():
    data = b"a\x00b\x1b[0m\x7f\xe2\x82\xac"
    rec, _ = build(data)
    assert "base64" not in rec["sendmail_shim"]["message"]
    assert rec["message"].encode() == data


def test_truncation_keeps_whole_characters():
    data = "€".encode() * 100
    rec, _ = build(data, cap=10)
    kept = rec["sendmail_shim"]["message"]
    assert kept["truncated"] is True
    assert kept["bytes"] == 300
    assert kept["kept_bytes"] == 9
    assert rec["message"] == "€€€"
    assert kept["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "data",
    [
        b"\x00" * (3 << 20),  # 6 bytes of JSON per byte as text
        b"\xff" * (3 << 20),  # not UTF-8: base64 and a readable view
        "\U0001f600".encode() * (1 << 19),
    ],
)
def test_worst_case_bytes_stay_under_the_line_limit(data):
    limit = 1 << 20
    rec, line = build(data, line_limit=limit)
    assert len(line) <= limit
    kept = rec["sendmail_shim"]["message"]
    assert kept["truncated"] is True
    assert kept["bytes"] == len(data)
    assert message_bytes(rec) == data[: kept["kept_bytes"]]
    assert kept["kept_bytes"] > limit // 2


def test_default_limits_keep_worst_case_lines_under_10_mib():
    data = os.urandom(8 << 20)
    _, line = build(data)
    assert len(line) < 10 * 1024 * 1024


def test_surrogates_in_argv_become_replacement_characters():
    rec, line = build(b"x", argv=("sendmail", "caf\udce9@x"))
    line.decode("utf-8")
    assert rec["process"]["args"][1] == "caf\ufffd@x"


def test_ascii_line_is_the_same_record():
    data = b"Subject: \xc3\xa9\x7f\n\n\xff"
    rec = build_record(data)
    ascii_line = rec.ascii_line()
    assert ascii_line.isascii() and b"\x7f" not in ascii_line
    assert strict_loads(ascii_line) == strict_loads(rec.line())


@pytest.mark.parametrize("quote", [record._quote_utf8, record._quote_ascii], ids=["line", "syslog"])
def test_dumps_refuses_what_strict_json_cannot_hold(quote):
    for value in (float("nan"), float("inf"), object()):
        with pytest.raises((TypeError, ValueError)):
            record.dumps({"x": value}, quote)


def test_the_c_encoder_writes_what_the_python_one_writes():
    literal = record.Quoted(record._quote_utf8('body \u00e9 \\ " \n'))
    for obj in (
        {"a": "x\u2028y\x7f\x00", "n": [1, -2, True, False, None], "d": {"e": [], "f": {}}, "m": literal},
        {"s": "\udcff undecodable", "m": literal},
        ["top", "level", {"k": "v"}],
    ):
        out = []
        record._emit(obj, out.append, record._quote_utf8)
        assert record.dumps(obj) == "".join(out)


@pytest.mark.parametrize("log_format", ["ecs", "classic"])
def test_a_budget_stop_is_flagged_and_an_ordinary_record_has_no_flag(log_format):
    plain = strict_loads(build_record(b"x", log_format=log_format).line())
    origin, options = message_origin()
    stopped_sink = sink_of(b"Subject: s\n\npart")
    stopped_sink.budget_exceeded = "seconds"
    stopped = strict_loads(
        record.build(origin, options, ("s", []), headers.parse(stopped_sink.kept), stopped_sink,
                     log_format=log_format, line_limit=DEFAULTS.max_line_bytes).line()
    )  # fmt: skip
    if log_format == "ecs":
        assert "budget_exceeded" not in plain["sendmail_shim"]["message"]
        assert stopped["sendmail_shim"]["message"]["budget_exceeded"] == "seconds"
        assert plain["sendmail_shim"]["entry"] == stopped["sendmail_shim"]["entry"] == "exec"
    else:
        assert list(plain) == ["time", "uid", "username", "arguments", "body"]
        assert (stopped["budget_exceeded"], stopped["bytes"], stopped["truncated"]) == ("seconds", 16, False)
        assert "entry" not in stopped
