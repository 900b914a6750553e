"""Properties over arbitrary input: strict JSON out, the exact bytes recoverable, never a crash."""

import os

from conftest import make_context, sink_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sendmail_shim import app, cli, headers, record
from shimtest import message_bytes, strict_loads

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
arguments = st.lists(st.text(max_size=12), max_size=8)


@SETTINGS
@given(data=st.binary(max_size=4096), cap=st.integers(min_value=0, max_value=5000))
def test_any_bytes_give_strict_json_and_the_exact_bytes(tmp_path, data, cap):
    ctx = make_context(tmp_path)
    sink = sink_of(data, cap)
    line = record.build(ctx, sink, "s", [], headers.parse(sink.kept)).line()
    rec = strict_loads(line)
    kept = rec["sendmail_shim"]["message"]
    assert message_bytes(rec) == data[: kept["kept_bytes"]]
    assert kept["bytes"] == len(data)
    assert kept["truncated"] == (kept["kept_bytes"] < len(data))
    assert len(data[:cap]) - kept["kept_bytes"] <= 3  # at most a partial character is dropped


@SETTINGS
@given(data=st.binary(max_size=2048))
def test_any_bytes_in_classic_format(tmp_path, data):
    ctx = make_context(tmp_path, log_format="classic")
    rec = strict_loads(record.build(ctx, sink_of(data), "s", [], headers.parse(data)).line())
    exact = (
        __import__("base64").b64decode(rec["body_base64"]) if "body_base64" in rec else rec["body"].encode()
    )
    assert exact == data


@SETTINGS
@given(args=arguments)
def test_any_arguments_parse(args):
    opts = cli.parse(args)
    assert opts.mode_name in set(cli.MODES.values()) | {"invalid"}
    record.dumps(opts.to_record()).encode("utf-8")


@SETTINGS
@given(value=st.text(max_size=300))
def test_any_header_text(value):
    headers.decode_words(value)
    assert all(isinstance(a, str) for a in headers.parse_addresses(value))
    date = headers.parse_date(value)
    assert date is None or date[4] == "-"


@SETTINGS
@given(args=arguments, data=st.binary(max_size=2048))
def test_the_whole_shim_never_crashes(tmp_path, monkeypatch, args, data):
    """Arbitrary argv and stdin through main(): a documented status and, for a message, a strict record."""
    ctx = make_context(tmp_path)
    log = tmp_path / "mail.ndjson"
    if log.exists():
        log.unlink()
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    monkeypatch.setattr(app, "STDIN_FD", r)
    try:
        status = app.main(["sendmail", *args], ctx.environ)
    finally:
        os.close(r)
    assert status in (0, 64, 75)
    if log.exists():
        for line in log.read_bytes().splitlines():
            rec = strict_loads(line)
            assert rec["process"]["args"][1:] == [record.clean(a) for a in args]
