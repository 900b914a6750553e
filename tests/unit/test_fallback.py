# SPDX-License-Identifier: MIT
"""The fallback: numbered syslog parts that reassemble to the record; stderr when syslog is gone."""

import json
import re
import subprocess
from pathlib import Path

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


def test_the_documented_reassembly_takes_no_part_before_its_notice(tmp_path, syslog):
    """docs/record.md's awk program, run on the messages as `journalctl -o cat` prints them, with a part
    forged before the notice (what `logger -t sendmail-shim` could send)."""
    cfg = config_of(tmp_path, syslog_socket=syslog.path)
    rec = build_record(CRON_MESSAGE + b"x" * 5000, ("root@h", ["root"]))
    fallback.keep(cfg, rec, "cannot append: testing", 2)
    messages = [re.sub(r"^<\d+>.*? sendmail-shim\[\d+\]: ", "", d) for d in syslog.received()]
    forged = f'{rec.event_id} 1/1 {{"forged": true}}'
    recipe = (Path(__file__).resolve().parents[2] / "docs" / "record.md").read_text()
    awk = re.search(r"awk -v id=\"\$id\" '(.*?)'", recipe, re.S).group(1)
    out = subprocess.run(
        ["awk", "-v", f"id={rec.event_id}", awk], input="\n".join([forged, *messages]) + "\n",
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert strict_loads(out.stdout) == strict_loads(rec.line())
