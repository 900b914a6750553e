# SPDX-License-Identifier: MIT
"""`sendmail -bs`: dialogues, bad sequences, pipelining, oversize, through the real shim too."""

import io

import pytest
from sendmail_shim import smtp


class Client:
    def __init__(self, tmp_path, script, cap=1000, in_log=True):
        self.submitted = []
        self.out = io.BytesIO()

        def submit(sink, sender, recipients, hdrs, extra=None):
            self.submitted.append((bytes(sink.kept), sink.total, sender, list(recipients), extra))
            return in_log, f"id{len(self.submitted)}"

        self.status = smtp.serve("mx.test", cap, io.BytesIO(script), self.out, submit)

    @property
    def codes(self):
        return [line[:4].decode() for line in self.out.getvalue().split(b"\r\n") if line]


def test_full_dialogue(tmp_path):
    c = Client(
        tmp_path,
        b"EHLO client.test\r\nMAIL FROM:<a@x> SIZE=10 BODY=8BITMIME\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@z>\r\n"
        b"DATA\r\nSubject: s\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n",
    )
    assert c.codes == ["220 ", "250-", "250-", "250-", "250-", "250-", "250 ", "250 ", "250 ", "250 ", "354 ",
                       "250 ", "221 "]  # fmt: skip
    out = c.out.getvalue().decode()
    assert "250-SIZE 1000\r\n" in out and "250-8BITMIME" in out and "250-PIPELINING" in out
    assert "250 2.0.0 Ok: queued as id1" in out
    kept, _, sender, recipients, extra = c.submitted[0]
    assert kept == b"Subject: s\r\n\r\n.dot\r\nbody\r\n"
    assert (sender, recipients) == ("a@x", ["b@y", "c@z"])
    assert extra["smtp"]["helo"] == "client.test" and extra["smtp"]["protocol"] == "ESMTP"
    assert c.status == 0


def test_several_messages_per_session_and_null_sender(tmp_path):
    msg = b"MAIL FROM:<>\r\nRCPT TO:<b@y>\r\nDATA\r\nx\r\n.\r\n"
    c = Client(tmp_path, b"HELO h\r\n" + msg + b"RSET\r\n" + msg + b"QUIT\r\n")
    assert [s[2] for s in c.submitted] == ["", ""]
    assert len(c.submitted) == 2


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (b"RCPT TO:<b@y>\r\n", "503 5.5.1 Error: need MAIL command"),
        (b"DATA\r\n", "503 5.5.1 Error: need MAIL command"),
        (b"MAIL FROM:<a@x>\r\nDATA\r\n", "503 5.5.1 Error: need RCPT command"),
        (b"MAIL FROM:<a@x>\r\nMAIL FROM:<a@x>\r\n", "503 5.5.1 Error: nested MAIL command"),
        (b"MAIL FROM:a@x>\r\n", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        (b"MAIL FROM:<a@x\r\n", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        (b"MAIL TO:<a@x>\r\n", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        (b"MAIL FROM:<a@x> SIZE=99999\r\n", "552 5.3.4 Message size exceeds fixed limit"),
        (b"MAIL FROM:<a@x> SIZE=ten\r\n", "501 5.5.4 Bad SIZE parameter syntax"),
        (b"MAIL FROM:<a@x> BODY=BINARYMIME\r\n", "501 5.5.4 Bad BODY parameter syntax"),
        (b"MAIL FROM:<a@x> AUTH=<>\r\n", "555 5.5.4 Unsupported option: AUTH=<>"),
        (b"MAIL FROM:<a@x>\r\nRCPT TO:<>\r\n", "501 5.1.3 Bad recipient address syntax"),
        (b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y> NOTIFY=NEVER\r\n", "555 5.5.4 Unsupported option: NOTIFY=NEVER"),
        (b"HELO\r\n", "501 5.5.4 Syntax: HELO hostname"),
        (b"EHLO\r\n", "501 5.5.4 Syntax: EHLO hostname"),
        (b"DATA now\r\n", "501 5.5.4 Syntax: DATA"),
        (b"VRFY\r\n", "501 5.5.4 Syntax: VRFY address"),
        (b"VRFY root\r\n", "252 2.0.0 Cannot VRFY user"),
        (b"EXPN list\r\n", "502 5.5.1 Error: command not implemented"),
        (b"STARTTLS\r\n", "502 5.5.1 Error: command not implemented"),
        (b"FROB\r\n", "500 5.5.2 Error: command not recognized"),
        (b"\r\n", "500 5.5.2 Error: command not recognized"),
        (b"NOOP\r\n", "250 2.0.0 Ok"),
        (b"HELP\r\n", "214 2.0.0 Commands:"),
        (b"X" * 5000 + b"\r\n", "500 5.5.2 Error: line too long"),
    ],
)
def test_replies(tmp_path, script, expected):
    c = Client(tmp_path, script + b"QUIT\r\n")
    lines = c.out.getvalue().decode().split("\r\n")
    assert any(line.startswith(expected) for line in lines), lines
    assert lines[-2] == "221 2.0.0 Bye"
    assert c.submitted == []


def test_pipelined_commands_get_replies_in_order(tmp_path):
    # Everything sent at once, before reading a single reply.
    script = (
        b"EHLO h\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<>\r\nRCPT TO:<c@y>\r\nDATA\r\n"
        b"line\r\n.\r\nMAIL FROM:<d@x>\r\nRCPT TO:<e@y>\r\nDATA\r\nsecond\r\n.\r\nQUIT\r\n"
    )
    c = Client(tmp_path, script)
    assert c.codes[7:] == [
        "250 ",
        "250 ",
        "501 ",
        "250 ",
        "354 ",
        "250 ",
        "250 ",
        "250 ",
        "354 ",
        "250 ",
        "221 ",
    ]
    assert [s[0] for s in c.submitted] == [b"line\r\n", b"second\r\n"]
    assert c.submitted[0][3] == ["b@y", "c@y"]


def test_oversize_message_is_rejected_and_recorded_as_such(tmp_path):
    big = b"x" * 3000 + b"\r\n"
    c = Client(
        tmp_path, b"HELO h\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n" + big + b".\r\nNOOP\r\nQUIT\r\n"
    )
    assert "552 5.3.4 Message size exceeds fixed limit" in c.out.getvalue().decode()
    kept, total, _, _, extra = c.submitted[0]
    assert (len(kept), total) == (1000, 3002)
    assert extra["smtp"]["rejected"].startswith("552")
    assert c.codes[-2:] == ["250 ", "221 "]


def test_fallback_answers_451_and_exits_75(tmp_path):
    c = Client(
        tmp_path, b"HELO h\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n", in_log=False
    )
    assert "451 4.3.0" in c.out.getvalue().decode()
    assert c.status == 75


def test_end_of_input_mid_message_records_nothing(tmp_path):
    c = Client(tmp_path, b"HELO h\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\npartial")
    assert c.submitted == []
    assert c.status == 0


def test_too_many_errors_hangs_up(tmp_path):
    c = Client(tmp_path, b"BAD\r\n" * 30 + b"NOOP\r\n")
    assert c.codes[-1] == "421 "
    assert c.codes.count("250 ") == 0


def test_bs_through_the_real_shim(shim):
    script = (
        b"EHLO symfony\r\nMAIL FROM:<app@example.org>\r\nRCPT TO:<u@example.org>\r\nDATA\r\n"
        b"Subject: Welcome\r\nTo: u@example.org\r\n\r\nHello\r\n.\r\nQUIT\r\n"
    )
    result = shim.run("-bs", stdin=script)
    assert result.returncode == 0
    assert result.stdout.startswith(b"220 ")
    assert result.stdout.endswith(b"221 2.0.0 Bye\r\n")
    rec = shim.record()
    assert rec["sendmail_shim"]["mode"] == "smtp"
    assert rec["sendmail_shim"]["envelope"] == {"sender": "app@example.org", "recipients": ["u@example.org"]}
    assert rec["sendmail_shim"]["smtp"]["helo"] == "symfony"
    assert rec["email"]["subject"] == "Welcome"
    assert rec["message"] == "Subject: Welcome\r\nTo: u@example.org\r\n\r\nHello\r\n"
    assert f"queued as {rec['event']['id']}".encode() in result.stdout
