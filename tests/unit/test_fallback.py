"""The fallback: numbered syslog parts that reassemble to the record; stderr when syslog is gone."""

import json

from sendmail_shim import fallback
from shimtest import CRON_MESSAGE, build_record, config_of, strict_loads


def test_parts_never_begin_or_end_with_a_space_and_join_back():
    text = json.dumps({"m": "  a  b  " * 50}, separators=(",", ":"))
    parts = fallback.chunks(text, size=7)
    assert all(p and p[0] != " " and p[-1] != " " for p in parts)
    assert json.loads("".join(parts)) == json.loads(text)


def test_record_arrives_in_syslog_and_reassembles(tmp_path, syslog):
    cfg = config_of(tmp_path, syslog_socket=syslog.path, syslog_facility="local3")
    data = CRON_MESSAGE + "é\x00\x7f".encode() * 3000 + b"\xff"
    rec = build_record(data, ("root@h", ["root"]))
    where = fallback.keep(cfg, rec, "cannot append: testing", 2)
    assert rec.event_id in where
    datagrams = syslog.received()
    # The notice is an err (3) of local3 (19); the parts are info (6).
    assert datagrams[0].startswith("<155>")
    assert "cannot append: testing" in datagrams[0]
    assert all(d.startswith("<158>") for d in datagrams[1:])
    assert all(len(d.encode()) <= 2048 for d in datagrams)
    assert len(datagrams) > 3
    assert syslog.record(rec.event_id) == strict_loads(rec.line())


def test_without_a_syslog_socket_the_record_goes_to_stderr(tmp_path, capfd):
    cfg = config_of(tmp_path, syslog_socket=str(tmp_path / "nothing-here"))
    rec = build_record(b"hello")
    where = fallback.keep(cfg, rec, "testing", 2)
    assert where.startswith("on stderr")
    err = capfd.readouterr().err
    assert strict_loads(err.splitlines()[-1])["message"] == "hello"


def test_fallback_none_skips_syslog(tmp_path, capfd, syslog):
    cfg = config_of(tmp_path, syslog_socket=syslog.path, fallback="none")
    rec = build_record(b"hello")
    assert "fallback = none" in fallback.keep(cfg, rec, "testing", 2)
    assert syslog.received() == []
    assert strict_loads(capfd.readouterr().err.splitlines()[-1])["message"] == "hello"
