# SPDX-License-Identifier: MIT
"""Properties over arbitrary input: strict JSON out, the exact bytes recoverable, never a crash."""

import base64
import encodings.aliases
import os
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sendmail_shim import app, cli, core, headers, record
from shimtest import (
    build_record,
    config_environ,
    config_of,
    message_bytes,
    message_origin,
    parse_record,
    strict_loads,
)

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
arguments = st.lists(st.text(max_size=12), max_size=8)


@SETTINGS
@given(data=st.binary(max_size=4096), cap=st.integers(min_value=0, max_value=5000))
def test_any_bytes_give_strict_json_and_the_exact_bytes(data, cap):
    line = build_record(data, cap=cap).line()
    rec = strict_loads(line)
    kept = rec["sendmail_shim"]["message"]
    assert message_bytes(rec) == data[: kept["kept_bytes"]]
    assert kept["bytes"] == len(data)
    assert kept["truncated"] == (kept["kept_bytes"] < len(data))
    assert len(data[:cap]) - kept["kept_bytes"] <= 3  # at most a partial character is dropped


@SETTINGS
@given(data=st.binary(max_size=2048))
def test_any_bytes_in_classic_format(data):
    rec = strict_loads(build_record(data, log_format="classic").line())
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
    environ = config_environ(tmp_path)
    log = tmp_path / "mail.ndjson"
    if log.exists():
        log.unlink()
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    monkeypatch.setattr(app, "STDIN_FD", r)
    try:
        status = app.main(["sendmail", *args], environ)
    finally:
        os.close(r)
    assert status in (0, 64, 75)
    if log.exists():
        for line in log.read_bytes().splitlines():
            rec = strict_loads(line)
            assert rec["process"]["args"][1:] == [record.clean(a) for a in args]


# Header fuzzing (issue 13): random charsets, encodings, folding, address syntax and line ends, through
# the deliver path, at the default cap and at caps of a few KiB that small inputs reach.

CHARSETS = sorted(set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values()))
atoms = st.text(
    alphabet=string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~.", min_size=1, max_size=12
)


@st.composite
def encoded_words(draw):
    charset = draw(st.sampled_from([*CHARSETS, "utf-8", "no-such-charset"]))
    payload = draw(st.binary(max_size=24))
    if draw(st.booleans()):
        return f"=?{charset}?B?{base64.b64encode(payload).decode()}?="
    quoted = "".join(chr(b) if chr(b).isalnum() else f"={b:02X}" for b in payload)
    return f"=?{charset}?Q?{quoted}?="


@st.composite
def addresses(draw):
    local = draw(atoms)
    domain = draw(
        st.one_of(
            st.builds(".".join, st.lists(atoms, min_size=1, max_size=3)),
            st.builds("[IPv6:{}]".format, st.ip_addresses(v=6).map(str)),
            st.builds("[{}]".format, st.ip_addresses(v=4).map(str)),
        )
    )
    addr = f"{local}@{domain}"
    form = draw(st.integers(0, 3))
    if form == 1:
        return f"{draw(encoded_words())} <{addr}>"
    if form == 2:
        return f'"{draw(atoms)}, {draw(atoms)}" <{addr}> ({draw(atoms)})'
    if form == 3:
        return f"{draw(atoms)}: {addr};"
    return addr


@st.composite
def header_fields(draw):
    name = draw(st.sampled_from(["To", "Cc", "Bcc", "Resent-To", "From", "Subject", "Date", "X-Mailer"]))
    if name in ("To", "Cc", "Bcc", "Resent-To", "From"):
        value = ", ".join(draw(st.lists(addresses(), min_size=1, max_size=6)))
    elif name == "Date":
        zone = draw(st.sampled_from(["+0000", "+1400", "+1500", "-1201", "GMT"]))
        value = f"{draw(st.integers(0, 40))} Feb {draw(st.integers(1900, 2100))} 10:00:00 {zone}"
    else:
        value = " ".join(draw(st.lists(st.one_of(encoded_words(), atoms), min_size=1, max_size=5)))
    # Folding: whitespace before a line end and a space or tab, at random word boundaries.
    words = value.split(" ")
    folded = words[0] + "".join(draw(st.sampled_from([" ", "\n ", "\n\t"])) + w for w in words[1:])
    return f"{name}: {folded}"


@st.composite
def header_blocks(draw):
    """A header block and its empty line, every line ended by one of LF, CRLF or a bare CR."""
    block = "\n".join(draw(st.lists(header_fields(), max_size=12))) + "\n\n"
    return block.replace("\n", draw(st.sampled_from(["\n", "\r\n", "\r"]))).encode("utf-8")


@SETTINGS
@given(
    head=header_blocks(),
    body=st.binary(max_size=3000),
    cap=st.sampled_from([2048, 4096, 8192, 10_000_000]),
)
def test_fuzzed_headers_give_one_capped_record_with_exact_bytes(tmp_path, head, body, cap):
    data = head + body
    cfg = config_of(tmp_path)
    # Below the least a config file may set: the property holds at any cap.
    cfg.max_line_bytes = cap
    log = tmp_path / "mail.ndjson"
    log.unlink(missing_ok=True)
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    origin, _ = message_origin(("sendmail", "-t", "-i", "cmd@[IPv6:2001:db8::1]"))
    try:
        status = core.handle(core.Invocation(origin, core.Fds(r), cfg))
    finally:
        os.close(r)
    assert status == 0
    (line,) = log.read_bytes().splitlines(keepends=True)
    rec = parse_record(line)
    assert len(line) <= cap
    kept = rec["sendmail_shim"]["message"]
    assert message_bytes(rec) == data[: kept["kept_bytes"]]
    assert kept["bytes"] == len(data) and kept["truncated"] == (kept["kept_bytes"] < len(data))
    hdrs = headers.parse(data)
    full = {
        "email.to.address": hdrs.addresses("to"),
        "sendmail_shim.envelope.recipients": core.unique(["cmd@[IPv6:2001:db8::1]", *hdrs.recipients()]),
    }
    recorded = {
        "email.to.address": rec["email"]["to"]["address"],
        "sendmail_shim.envelope.recipients": rec["sendmail_shim"]["envelope"]["recipients"],
    }
    cuts = {cut["field"]: cut for cut in rec["sendmail_shim"].get("cut", [])}
    for field, values in full.items():
        # Whole, or a prefix the record reports as cut.
        assert recorded[field] == values[: len(recorded[field])]
        if field in cuts:
            assert cuts[field]["kept"] == len(recorded[field]) and cuts[field]["total"] == len(values)
        else:
            assert recorded[field] == values
