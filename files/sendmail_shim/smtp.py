# SPDX-License-Identifier: MIT
"""`sendmail -bs`: an SMTP server on stdin/stdout, one record per message.

Replies follow Postfix's wording and RFC 5321/3463 codes. Commands are read one line at a time from a
buffered stdin and answered in order, which is all PIPELINING asks of a server.
"""

from sendmail_shim import headers, message
from sendmail_shim.sysexits import EX_OK, EX_TEMPFAIL

MAX_COMMAND = 2048
MAX_RECIPIENTS = 1000
MAX_ERRORS = 20
DATA_LINE = 1 << 16


class _Closed(Exception):
    """The client went away (EOF, broken pipe) or we hung up."""


class Session:
    def __init__(self, hostname, cap, inp, out, submit, *, told=None):
        """`submit(sink, sender, recipients, headers, extra)` records a message: (in the log?, event id);
        `told()` is called once the reply about it is sent. `reading` is the message being read, for the
        guard that keeps what was read whatever happens."""
        self.hostname = hostname
        self.cap = cap
        self.inp = inp
        self.out = out
        self.submit = submit
        self.told = told or (lambda: None)
        self.reading = None
        self.helo = None
        self.esmtp = False
        self.errors = 0
        self.fallback_used = False
        self._reset()

    def _reset(self):
        self.sender = None
        self.params = []
        self.recipients = []

    def reply(self, *lines):
        text = "".join(
            line[:3] + ("-" if i < len(lines) - 1 else " ") + line[4:] + "\r\n"
            for i, line in enumerate(lines)
        )
        try:
            self.out.write(text.encode("utf-8", "replace"))
            self.out.flush()
        except (OSError, ValueError):
            raise _Closed from None

    def error(self, line):
        self.errors += 1
        if self.errors > MAX_ERRORS:
            self.reply(f"421 4.7.0 {self.hostname} Error: too many errors")
            raise _Closed
        self.reply(line)

    def run(self):
        """Serve until QUIT or end of input; the exit status: EX_OK, or EX_TEMPFAIL if a message went to the
        fallback."""
        try:
            self.reply(f"220 {self.hostname} ESMTP sendmail-shim")
            while True:
                line = self.inp.readline(MAX_COMMAND)
                if not line:
                    break
                if not line.endswith(b"\n"):
                    self._discard_rest_of_line()
                    self.error("500 5.5.2 Error: line too long")
                    continue
                if self._command(line.rstrip(b"\r\n").decode("utf-8", "replace")):
                    break
        except _Closed:
            pass
        return EX_TEMPFAIL if self.fallback_used else EX_OK

    def _discard_rest_of_line(self):
        while True:
            rest = self.inp.readline(MAX_COMMAND)
            if not rest or rest.endswith(b"\n"):
                return

    def _command(self, line):
        """Handle one command line; True when the session is over."""
        verb, _, arg = line.strip().partition(" ")
        verb = verb.upper()
        arg = arg.strip()
        handler = getattr(self, "_cmd_" + verb.lower(), None) if verb.isalpha() else None
        if handler is None:
            if verb in ("STARTTLS", "AUTH", "BDAT", "ETRN", "TURN", "ATRN", "EXPN"):
                self.error("502 5.5.1 Error: command not implemented")
            else:
                self.error("500 5.5.2 Error: command not recognized")
            return False
        return handler(arg)

    def _cmd_helo(self, arg, esmtp=False):
        if not arg:
            self.error("501 5.5.4 Syntax: %s hostname" % ("EHLO" if esmtp else "HELO"))
            return False
        self.helo = arg
        self.esmtp = esmtp
        self._reset()
        if esmtp:
            self.reply(
                f"250 {self.hostname}",
                f"250 SIZE {self.cap}",
                "250 8BITMIME",
                "250 PIPELINING",
                "250 ENHANCEDSTATUSCODES",
                "250 HELP",
            )
        else:
            self.reply(f"250 {self.hostname}")
        return False

    def _cmd_ehlo(self, arg):
        return self._cmd_helo(arg, esmtp=True)

    def _cmd_mail(self, arg):
        if self.sender is not None:
            self.error("503 5.5.1 Error: nested MAIL command")
            return False
        path = _path(arg, "FROM:")
        if path is None:
            self.error("501 5.5.4 Syntax: MAIL FROM:<address>")
            return False
        address, params = path
        for param in params:
            key, _, value = param.partition("=")
            key = key.upper()
            if key == "SIZE":
                if not (value.isascii() and value.isdigit()):
                    self.error("501 5.5.4 Bad SIZE parameter syntax")
                    return False
                if int(value) > self.cap:
                    self.error("552 5.3.4 Message size exceeds fixed limit")
                    return False
            elif key == "BODY":
                if value.upper() not in ("7BIT", "8BITMIME"):
                    self.error("501 5.5.4 Bad BODY parameter syntax")
                    return False
            else:
                self.error(f"555 5.5.4 Unsupported option: {param}")
                return False
        self.sender = address
        self.params = params
        self.reply("250 2.1.0 Ok")
        return False

    def _cmd_rcpt(self, arg):
        if self.sender is None:
            self.error("503 5.5.1 Error: need MAIL command")
            return False
        path = _path(arg, "TO:")
        if path is None:
            self.error("501 5.5.4 Syntax: RCPT TO:<address>")
            return False
        address, params = path
        if not address:
            self.error("501 5.1.3 Bad recipient address syntax")
        elif params:
            self.error(f"555 5.5.4 Unsupported option: {params[0]}")
        elif len(self.recipients) >= MAX_RECIPIENTS:
            self.reply("452 4.5.3 Error: too many recipients")
        else:
            self.recipients.append(address)
            self.reply("250 2.1.5 Ok")
        return False

    def _cmd_data(self, arg):
        if arg:
            self.error("501 5.5.4 Syntax: DATA")
            return False
        if self.sender is None:
            self.error("503 5.5.1 Error: need MAIL command")
            return False
        if not self.recipients:
            self.error("503 5.5.1 Error: need RCPT command")
            return False
        self.reply("354 End data with <CR><LF>.<CR><LF>")
        sink = message.Sink(self.cap)
        self.reading = sink
        if not self._read_data(sink):
            # The client went away mid-message: it has not handed the message over, nothing to record.
            self.reading = None
            raise _Closed
        smtp = {
            "helo": self.helo,
            "protocol": "ESMTP" if self.esmtp else "SMTP",
            "mail_parameters": self.params,
        }
        rejection = None
        if sink.truncated:
            rejection = "552 5.3.4 Message size exceeds fixed limit"
            smtp["rejected"] = rejection
        in_log, event_id = self.submit(
            sink, self.sender, self.recipients, headers.parse(sink.kept), extra={"smtp": smtp}
        )
        self.reading = None
        self._reset()
        if not in_log:
            self.fallback_used = True
        if rejection:
            self.error(rejection)
        elif in_log:
            self.reply(f"250 2.0.0 Ok: queued as {event_id}")
        else:
            self.reply(
                f"451 4.3.0 Error: could not write the mail log; message {event_id} kept in the fallback"
            )
        # The client knows now: a signal may end the session again.
        self.told()
        return False

    def _read_data(self, sink):
        """Feed the message to `sink`, dot-unstuffed, up to the lone-dot line; False on end of input."""
        at_line_start = True
        while True:
            line = self.inp.readline(DATA_LINE)
            if not line:
                return False
            if at_line_start:
                if line in (b".\r\n", b".\n"):
                    return True
                if line.startswith(b"."):
                    line = line[1:]
            sink.feed(line)
            at_line_start = line.endswith(b"\n")

    def _cmd_rset(self, arg):
        self._reset()
        self.reply("250 2.0.0 Ok")
        return False

    def _cmd_noop(self, arg):
        self.reply("250 2.0.0 Ok")
        return False

    def _cmd_vrfy(self, arg):
        if not arg:
            self.error("501 5.5.4 Syntax: VRFY address")
        else:
            self.reply("252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery")
        return False

    def _cmd_help(self, arg):
        self.reply("214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT")
        return False

    def _cmd_quit(self, arg):
        self.reply("221 2.0.0 Bye")
        return True


def _path(arg, keyword):
    """(address, [parameters]) from 'FROM:<a@b> SIZE=10', or None on bad syntax."""
    if arg[: len(keyword)].upper() != keyword:
        return None
    rest = arg[len(keyword) :].strip()
    if rest.startswith("<"):
        end = rest.find(">")
        if end < 0:
            return None
        address, params = rest[1:end], rest[end + 1 :].split()
    else:
        # Tolerated like Postfix does by default: a bare address without angle brackets.
        words = rest.split()
        if not words:
            return None
        address, params = words[0], words[1:]
    if any(c in address for c in " \t<>"):
        return None
    return address, params


def serve(hostname, cap, inp, out, submit, *, told=None):
    return Session(hostname, cap, inp, out, submit, told=told).run()
