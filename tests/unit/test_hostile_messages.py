# SPDX-License-Identifier: MIT
"""Odd and hostile messages (issue 13): nothing escapes the log, no line passes the cap, no recipient
is lost without the record saying so. One section per class of the issue."""

import base64
import codecs
import encodings.aliases
import fcntl
import os
import select
import signal
import subprocess
import textwrap
import threading
import time

import pytest
from sendmail_shim import app, cli, core, fallback, headers, logwriter, record
from shimtest import (
    DEFAULT_ARGV,
    DEFAULTS,
    ENTRY,
    FILES,
    PYTHON,
    config_environ,
    message_bytes,
    message_origin,
    parse_record,
    sink_of,
)


def build(data, recipients=(), sender="s@x", *, argv=DEFAULT_ARGV, log_format=DEFAULTS.log_format,
          line_limit=DEFAULTS.max_line_bytes):  # fmt: skip
    """The record of `data` handed over with `argv`, as a strict reader sees it, and its line."""
    origin, options = message_origin(argv)
    sink = sink_of(data)
    hdrs = headers.parse(sink.kept)
    rcpts = list(recipients) + (hdrs.recipients() if options.extract_recipients else [])
    rec = record.build(
        origin, options, (sender, rcpts), hdrs, sink, log_format=log_format, line_limit=line_limit
    )
    line = rec.line()
    return parse_record(line), line


def run_main(environ, data, argv=("sendmail", "-i", "root")):
    """app.main in this process with `data` on its stdin; the exit status."""
    r, w = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(w, data), os.close(w)))
    writer.start()
    saved = app.STDIN_FD
    app.STDIN_FD = r
    try:
        return app.main(list(argv), environ)
    finally:
        app.STDIN_FD = saved
        writer.join()
        os.close(r)


# 1. Header decoding: only text charsets decode, and whatever a header holds, the record lands.

HOSTILE_PAYLOADS = [b"\\ud800 \\udfff", b"\xed\xa0\x80\xff\xfe\x00\xd8\x00\xdc", "é€😀".encode()]


def _charset_names():
    return sorted(set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values()))


# Codecs that are no mail charset: bytes-to-bytes transforms, escape decoders, IDNA.
NOT_CHARSETS = {"base64_codec", "bz2_codec", "hex_codec", "quopri_codec", "rot_13", "uu_codec", "zlib_codec",
                "unicode_escape", "raw_unicode_escape", "punycode", "idna"}  # fmt: skip
MAIL_CHARSETS = ["utf-8", "us-ascii", "iso-8859-1", "iso-8859-15", "windows-1252", "koi8-r", "shift_jis",
                 "euc-jp", "iso-2022-jp", "gb2312", "gb18030", "big5", "euc-kr", "utf-16",
                 "utf-7"]  # fmt: skip


def _canonical(name):
    try:
        return codecs.lookup(name).name.replace("-", "_")
    except LookupError:
        return None  # a Windows-only name such as "mbcs" or "ansi"


def test_every_charset_name_gives_a_record():
    """Every codec name in encodings.aliases, with bytes that some codecs turn into lone surrogates:
    the record is strict UTF-8; a word decodes only with a text charset, else stays as written."""
    decoded_with = set()
    for name in _charset_names():
        for payload in HOSTILE_PAYLOADS:
            word = f"=?{name}?B?{base64.b64encode(payload).decode()}?="
            rec, line = build(f"Subject: {word}\n\nbody\n".encode())
            line.decode("utf-8")  # strict: no surrogate made it through
            subject = rec["email"]["subject"]
            if _canonical(name) in NOT_CHARSETS or _canonical(name) is None:
                assert subject == word, name
            elif subject != word:
                assert subject == payload.decode(name, "replace"), name
                decoded_with.add(_canonical(name))
    assert {_canonical(name) for name in MAIL_CHARSETS} <= decoded_with


def test_escape_codec_header_reaches_the_log(tmp_path):
    """=?unicode_escape?...?= used to decode to a lone surrogate: the record failed, exit 75."""
    status = run_main(config_environ(tmp_path), b"Subject: =?unicode_escape?Q?=5Cud800?=\n\nhi\n")
    assert status == 0
    (line,) = (tmp_path / "mail.ndjson").read_bytes().splitlines(keepends=True)
    assert parse_record(line)["email"]["subject"] == "=?unicode_escape?Q?=5Cud800?="


def test_lone_surrogates_of_any_origin_are_cleaned():
    assert record.clean("a\ud800b\udce9\udfff") == "a\ufffdb\ufffd\ufffd"


# 2. The line cap holds for every record, with a fair share for the body.


def _address_headers(count, width):
    addresses = ", ".join(f"{'u' * width}{i}@example.org" for i in range(count))
    return "".join(f"{name}: {addresses}\n" for name in ("To", "Cc", "Bcc", "Resent-To", "From")).encode()


def test_many_long_address_headers_stay_under_the_cap():
    limit = 65536
    body = b"line of body text\n" * 4000
    data = _address_headers(2000, 40) + b"Subject: s\n\n" + body
    rec, line = build(data, argv=("sendmail", "-t", "-i"), line_limit=limit)
    assert len(line) <= limit
    kept = rec["sendmail_shim"]["message"]
    assert message_bytes(rec) == data[: kept["kept_bytes"]]
    # A fair share: the body has at least half the line.
    assert len(rec["message"].encode()) >= limit // 2 - 1024
    cuts = {cut["field"]: cut for cut in rec["sendmail_shim"]["cut"]}
    assert cuts["email.to.address"]["total"] == 2000
    kept_to = rec["email"]["to"]["address"]
    assert cuts["email.to.address"]["kept"] == len(kept_to) < 2000
    assert kept_to == [f"{'u' * 40}{i}@example.org" for i in range(len(kept_to))]
    recipients = rec["sendmail_shim"]["envelope"]["recipients"]
    assert cuts["sendmail_shim.envelope.recipients"] == {
        "field": "sendmail_shim.envelope.recipients", "kept": len(recipients), "total": 2000,
    }  # fmt: skip


def test_huge_argv_is_cut_to_the_cap():
    limit = 65536
    argv = ("sendmail", "-i", *[f"rcpt{i}@example.org" for i in range(20000)])
    rec, line = build(b"Subject: s\n\nhello\n", recipients=argv[2:], argv=argv, line_limit=limit)
    assert len(line) <= limit
    assert rec["message"] == "Subject: s\n\nhello\n"
    cuts = {cut["field"]: cut for cut in rec["sendmail_shim"]["cut"]}
    assert cuts["process.args"]["total"] == 20002
    assert cuts["sendmail_shim.envelope.recipients"]["total"] == 20000


def test_classic_layout_keeps_the_cap_and_says_what_it_cut():
    limit = 65536
    argv = ("sendmail", "-i", *[f"rcpt{i}@example.org" for i in range(20000)])
    rec, line = build(b"Subject: s\n\nhello\n", argv=argv, line_limit=limit, log_format="classic")
    assert len(line) <= limit
    assert rec["body"] == "Subject: s\n\nhello\n"
    (cut,) = rec["cut"]
    assert cut == {"field": "arguments", "kept": len(rec["arguments"]), "total": 20001}
    assert rec["arguments"] == list(argv[1 : 1 + len(rec["arguments"])])


def _plain_text(size):
    line = b"The quick brown fox jumps over the lazy dog, 0123456789 times; all is well.\n"
    return (line * (size // len(line) + 1))[:size]


def test_8_mib_plain_text_is_kept_whole_as_text():
    """What docs/record.md promises for an 8 MiB plain-text message at the default settings."""
    head = b"From: cron@host\nTo: root\nSubject: report\n\n"
    data = head + _plain_text((8 << 20) - len(head))
    rec, line = build(data, recipients=["root"])
    kept = rec["sendmail_shim"]["message"]
    assert kept["kept_bytes"] == kept["bytes"] == 8 << 20
    assert kept["truncated"] is False and "base64" not in kept
    assert rec["message"].encode() == data
    assert len(line) < 9_000_000


def test_8_mib_plain_text_with_huge_headers_keeps_a_text_prefix():
    head = _address_headers(40000, 60) + b"Subject: report\n\n"
    data = head + _plain_text((8 << 20) - len(head))
    rec, line = build(data, argv=("sendmail", "-t", "-i"))
    assert len(line) <= DEFAULTS.max_line_bytes
    kept = rec["sendmail_shim"]["message"]
    assert "base64" not in kept
    assert kept["truncated"] is True
    assert kept["kept_bytes"] >= DEFAULTS.max_line_bytes // 2 - 65536
    assert rec["message"].encode() == data[: kept["kept_bytes"]]


# 3. -t finds every recipient; address literals survive.


def test_t_recipient_after_many_fields_is_found(tmp_path):
    data = b"".join(b"X-Filler-%d: x\n" % i for i in range(3000)) + b"To: late@example.org\n\nbody\n"
    assert headers.parse(data).recipients() == ["late@example.org"]


def test_one_long_to_gives_every_address():
    addresses = [f"user{i}@example.org" for i in range(5000)]
    data = ("To: " + ", ".join(addresses) + "\n\nbody\n").encode()
    rec, _ = build(data, argv=("sendmail", "-t", "-i"))
    assert rec["sendmail_shim"]["envelope"]["recipients"] == addresses
    assert "cut" not in rec["sendmail_shim"]


@pytest.mark.parametrize(
    ("value", "addresses"),
    [
        ("user@[IPv6:2001:db8::1]", ["user@[IPv6:2001:db8::1]"]),
        ("A <a@[IPv6:::1]>, b@[192.0.2.1]", ["a@[IPv6:::1]", "b@[192.0.2.1]"]),
        ("Team: x@[IPv6:fe80::1], y@z;", ["x@[IPv6:fe80::1]", "y@z"]),
    ],
)
def test_address_literals(value, addresses):
    assert headers.parse_addresses(value) == addresses


def test_address_literal_on_the_command_line():
    options = cli.parse(["-i", "root@[IPv6:2001:db8::2]"], "sendmail")
    assert core.command_line_recipients(options) == ["root@[IPv6:2001:db8::2]"]


# 4. Impossible dates stay in the raw headers only.


@pytest.mark.parametrize(
    ("value", "rfc3339"),
    [
        ("Mon, 31 Feb 2025 10:00:00 +0000", None),
        ("Thu, 29 Feb 2024 10:00:00 +0000", "2024-02-29T10:00:00Z"),
        ("Fri, 29 Feb 2023 10:00:00 +0000", None),
        ("Mon, 31 Apr 2025 10:00:00 +0000", None),
        ("Mon, 1 Dec 2025 10:00:00 +1500", None),
        ("Mon, 1 Dec 2025 10:00:00 +1400", "2025-12-01T10:00:00+14:00"),
        ("Mon, 1 Dec 2025 10:00:00 -1200", "2025-12-01T10:00:00-12:00"),
        ("Mon, 1 Dec 2025 10:00:00 -1300", None),
        ("Mon, 1 Dec 2025 10:00:00 +0160", None),
    ],
)
def test_impossible_dates(value, rfc3339):
    assert headers.parse_date(value) == rfc3339


def test_impossible_date_is_not_in_the_record():
    rec, _ = build(b"Date: Mon, 31 Feb 2025 10:00:00 +0000\n\nx\n")
    assert "origination_timestamp" not in rec["email"]
    assert "31 Feb" in rec["message"]


# 5. A non-blocking stdin: the whole message, and the caller's flags untouched.


def _nonblocking_pipe():
    r, w = os.pipe()
    fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_NONBLOCK)
    return r, w


def _trickle(w, data, pieces=8, pause=0.05):
    """Write `data` in pieces with pauses, so that the reader meets an empty pipe (EAGAIN) on the way;
    give up when the reader stops reading."""
    step = len(data) // pieces + 1
    for start in range(0, len(data), step):
        view = memoryview(data)[start : start + step]
        while view:
            if not select.select([], [w], [], 10)[1]:
                os.close(w)
                return
            view = view[os.write(w, view[: select.PIPE_BUF]) :]
        time.sleep(pause)
    os.close(w)


@pytest.mark.parametrize("args", [("-i", "root"), ("root",), ("-bs",)])
def test_non_blocking_stdin_is_read_whole(shim, args):
    body = b"".join(b"line %d of a message written slowly\n" % i for i in range(20000))
    data = b"Subject: slow\n\n" + body
    if args == ("-bs",):
        stdin = b"EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n" + data + b".\r\nQUIT\r\n"
    else:
        stdin = data
    r, w = _nonblocking_pipe()
    proc = subprocess.Popen(
        shim.argv(*args), stdin=r, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=shim.env()
    )
    _trickle(w, stdin)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert fcntl.fcntl(r, fcntl.F_GETFL) & os.O_NONBLOCK  # the caller's flags, as they were
    os.close(r)
    rec = shim.record()
    assert message_bytes(rec) == data
    assert rec["sendmail_shim"]["message"]["truncated"] is False


# 6. Signals: a record in the log is never reported as not recorded.

# Runs the shim in a child whose log write sends it `signum`: the signal arrives during the write.
_SIGNAL_DURING_WRITE = textwrap.dedent("""\
    import os, signal, sys
    sys.path.insert(0, sys.argv[1])
    from sendmail_shim import app, logwriter
    signum = int(sys.argv[2])
    real_write = logwriter._write_all

    def write_and_signal(fd, line, path):
        os.kill(os.getpid(), signum)
        real_write(fd, line, path)
        os.kill(os.getpid(), signum)

    logwriter._write_all = write_and_signal
    sys.exit(app.main(["sendmail", "-i", "root"]))
""")


@pytest.mark.exec_only(reason="signals to the exec'd shim's own process")
@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP", "SIGALRM", "SIGTSTP", "SIGQUIT"])
def test_signal_during_the_write_does_not_deny_the_record(shim, name):
    proc = subprocess.run(
        [PYTHON, "-c", _SIGNAL_DURING_WRITE, str(FILES), str(int(getattr(signal, name)))],
        input=b"Subject: s\n\nhello\n", capture_output=True, env=shim.env(), timeout=30,
    )  # fmt: skip
    assert (proc.returncode, proc.stderr) == (0, b"")
    assert shim.record()["message"] == "Subject: s\n\nhello\n"


@pytest.mark.exec_only(reason="signals to the exec'd shim's own process")
@pytest.mark.parametrize(
    ("name", "status"),
    [("SIGINT", 75), ("SIGTERM", -signal.SIGTERM), ("SIGHUP", -signal.SIGHUP), ("SIGALRM", -signal.SIGALRM)],
)
def test_signal_before_the_write_records_nothing_and_says_so(shim, name, status):
    proc = subprocess.Popen(
        [PYTHON, "-I", "-S", str(ENTRY), "-i", "root"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=shim.env(),
    )  # fmt: skip
    proc.stdin.write(b"Subject: s\n\npart of a message")
    proc.stdin.flush()
    time.sleep(0.5)  # reading stdin by now
    proc.send_signal(getattr(signal, name))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == status
    if name == "SIGINT":
        assert b"before the message was recorded" in err
    assert shim.records() == []


def test_a_writer_stopped_while_holding_the_lock_delays_others_by_at_most_the_bound(shim):
    """SIGSTOP cannot be held back: a writer stopped with the lock (held here by the test) costs the
    next writer logwriter._LOCK_WAIT, after which it writes without the lock."""
    shim.run("-i", "root", stdin=b"Subject: first\n\none\n")
    with open(shim.log, "ab") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        start = time.monotonic()
        proc = shim.run("-i", "root", stdin=b"Subject: second\n\ntwo\n")
        waited = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert logwriter._LOCK_WAIT <= waited < logwriter._LOCK_WAIT + 5
    assert [rec["email"]["subject"] for rec in shim.records()] == ["first", "second"]


# 7. Command-line forms real MTAs accept; bare CR line ends.


@pytest.mark.parametrize("letter", ["a", "r", "s", "aa", "ai", "as", "i", "m", "t"])
def test_exim_om_options_take_the_next_word(letter):
    opts = cli.parse([f"-oM{letter}", "value.example", "-oi", "rcpt@x"])
    assert opts.recipients == ["rcpt@x"]
    assert opts.o == [f"M{letter} value.example", "i"]


def test_sendmail_om_macro_keeps_its_attached_value():
    opts = cli.parse(["-oMrsmtp", "rcpt@x"])
    assert (opts.recipients, opts.o) == (["rcpt@x"], ["Mrsmtp"])


@pytest.mark.parametrize(
    ("args", "ignore_dots", "recipients"),
    [
        (["-oiTrue", "a@x"], True, ["a@x"]),
        (["-oiFalse", "a@x"], False, ["a@x"]),
        (["-oiyes", "a@x"], True, ["a@x"]),
        (["-oi", "false"], True, ["false"]),
        (["-oif"], False, []),
    ],
)
def test_sendmail_boolean_option_values(args, ignore_dots, recipients):
    opts = cli.parse(args)
    assert (opts.ignore_dots, opts.recipients) == (ignore_dots, recipients)


def test_bare_cr_line_ends():
    data = b"From: a@x\rTo: b@y, c@z\rSubject: old mac\r\rbody\rmore\r"
    rec, _ = build(data, argv=("sendmail", "-t", "-i"))
    assert rec["email"]["subject"] == "old mac"
    assert rec["sendmail_shim"]["envelope"]["recipients"] == ["b@y", "c@z"]
    assert message_bytes(rec) == data


def test_mixed_line_ends_split_where_each_ends():
    data = b"A: 1\r\nB: 2\rC: 3\n folded\r\rbody"
    assert headers.parse_block(data) == [("a", "1"), ("b", "2"), ("c", "3 folded")]


# 8. The syslog fallback stays within journald's rate limit, and says so when it had to cut.


def test_large_fallback_record_is_cut_to_the_syslog_bound_and_says_so(shim):
    """Emoji cost 12 bytes each as ASCII JSON: 8 MiB of them would be about 14,000 syslog parts."""
    shim.configure(log_path=str(shim.config.parent / "nodir" / "mail.ndjson"))
    data = b"Subject: s\n\n" + ("\U0001f600" * 63 + "\n").encode() * 32000
    proc = shim.run("-i", "root", stdin=data, timeout=120)
    assert proc.returncode == 75
    rec = shim.syslog.record()
    kept = rec["sendmail_shim"]["message"]
    assert message_bytes(rec) == data[: kept["kept_bytes"]]
    assert kept["truncated"] is True and kept["bytes"] == len(data)
    parts = [d for d in shim.syslog.received() if f"{rec['event']['id']} " in d and "/" in d.split()[5]]
    assert len(parts) <= fallback.MAX_PARTS
    assert len(parts) > fallback.MAX_PARTS * 0.9  # not cut further than needed
    assert f"cut to {fallback.MAX_PARTS} syslog parts" in proc.stderr.decode()
    assert f"keeps {kept['kept_bytes']} of the message's {len(data)} bytes" in proc.stderr.decode()


def test_8_mib_plain_text_passes_syslog_whole(shim):
    shim.configure(log_path=str(shim.config.parent / "nodir" / "mail.ndjson"))
    data = b"Subject: s\n\n" + _plain_text((8 << 20) - 12)
    proc = shim.run("-i", "root", stdin=data, timeout=120)
    assert proc.returncode == 75
    assert b"cut to" not in proc.stderr
    assert message_bytes(shim.syslog.record()) == data


def test_rescue_record_of_a_large_message_stays_within_the_syslog_bound(tmp_path, monkeypatch, syslog):
    """An internal error keeps the message as base64 only: 8 MiB of it would be about 6,200 parts."""

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(headers, "parse", broken)
    environ = config_environ(tmp_path, syslog_socket=syslog.path)
    data = os.urandom(8 << 20)
    assert run_main(environ, data) == 75
    rec = syslog.record()
    kept = rec["sendmail_shim"]["message"]
    assert message_bytes(rec) == data[: kept["kept_bytes"]]
    assert kept["truncated"] is True and kept["bytes"] == len(data)
    parts = [d for d in syslog.received() if f"{rec['event']['id']} " in d and "/" in d.split()[5]]
    assert len(parts) <= fallback.MAX_PARTS


def test_docs_state_the_bounds_the_code_has():
    """docs/record.md shows the fallback's and the lock's bounds: they are the code's."""
    doc = " ".join((FILES.parent / "docs" / "record.md").read_text().split())
    assert f"at most **{fallback.MAX_PARTS} parts** ({fallback.MAX_TEXT:,} ASCII characters" in doc
    assert f"cut to {fallback.MAX_PARTS} syslog parts" in doc
    assert f"The record is built within {fallback.MAX_TEXT // 2:,} bytes" in doc
    assert f"by at most {logwriter._LOCK_WAIT:g} seconds" in doc
