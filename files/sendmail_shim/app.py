"""The shim's flow: options, message, record, log; and the guard that keeps a message whatever happens."""

import os
import sys

from sendmail_shim import cli, config, fallback, headers, identity, message, record

EX_OK = 0
EX_USAGE = 64
EX_TEMPFAIL = 75

ENV_INVOKED_AS = "SENDMAIL_SHIM_INVOKED_AS"
ENV_UNPRIVILEGED = "SENDMAIL_SHIM_UNPRIVILEGED"
STDIN_FD = 0

UNPRIVILEGED_REASON = (
    "the launcher could not switch to the service user (no privilege: nosuid mount, NoNewPrivileges or a"
    " container?), so the log was not tried; an administrator should check the setuid launcher"
)


class Context:
    """What stays the same for all the messages of one run."""

    def __init__(self, argv, environ):
        self.environ = environ
        self.argv = [record.clean(arg) for arg in argv]
        self.args = self.argv[1:]
        self.options = cli.parse(self.args, self.argv[0])
        self.cfg, self.config_problems = config.from_environ(environ)
        self.identity = identity.caller(self.cfg.service_user, environ)
        self.parent = identity.parent()
        self.peer = None if self.identity.trusted_launcher else identity.smtp_peer(environ)
        self.hostname = self.cfg.hostname or os.uname().nodename
        self.pid = os.getpid()
        # The message being read, for the guard: bytes already taken from the caller are never dropped.
        self.sink = None
        self.handled = False
        self._problems_reported = False
        self._unheld_mask = None

    def hold_signals(self):
        """From here on a record may be in the log or the fallback: a signal must not end the run as if
        it were not (a caller would send it again). Held until the exit status is given, or in SMTP
        until the reply that tells the client is sent (release_signals)."""
        from sendmail_shim import logwriter  # noqa: PLC0415 - not needed by -bp, -bi, -bv

        mask = logwriter.hold_signals()
        if self._unheld_mask is None:
            self._unheld_mask = mask

    def release_signals(self):
        if self._unheld_mask is not None:
            from sendmail_shim import logwriter  # noqa: PLC0415

            logwriter.restore_signals(self._unheld_mask)
            self._unheld_mask = None

    def report_config_problems(self):
        if not self._problems_reported:
            self._problems_reported = True
            for problem in self.config_problems:
                say(problem)


def say(line):
    fallback.write_stderr((f"sendmail-shim: {line}\n").encode("utf-8", "replace"))


def envelope_sender(ctx):
    """-f/-r as given (without angle brackets), else user@host as sendmail would make it."""
    sender = ctx.options.sender
    if sender is not None:
        sender = sender.strip()
        if sender.startswith("<") and sender.endswith(">"):
            sender = sender[1:-1]
        return sender
    ident = ctx.identity
    return f"{ident.name or ident.uid}@{ctx.hostname}"


def command_line_recipients(ctx):
    found = []
    for arg in ctx.options.recipients:
        found.extend(headers.parse_addresses(arg))
    return found


def _unique(addresses):
    seen = set()
    return [a for a in addresses if not (a in seen or seen.add(a))]


def submit(ctx, sink, sender, recipients, hdrs, *, extra=None):
    """Record one message: in the log, or in the fallback. Returns (in the log?, event id)."""
    rec = record.build(ctx, sink, sender, recipients, hdrs, extra=extra)
    ctx.hold_signals()
    if ctx.config_problems:
        ctx.report_config_problems()
        reason = "the configuration has errors (above), so the log was not tried"
    elif ctx.environ.get(ENV_UNPRIVILEGED) == "1":
        reason = UNPRIVILEGED_REASON
    else:
        from sendmail_shim import logwriter  # noqa: PLC0415 - not needed by -bp, -bi, -bv

        try:
            logwriter.append(ctx.cfg.log_path, rec.line())
        except logwriter.AppendError as exc:
            reason = str(exc)
        else:
            return True, rec.event_id
    note = ""
    if ctx.cfg.fallback == "syslog":
        rec, note = _within_syslog_bound(ctx, rec, sink, (sender, recipients, hdrs), extra)
    where = fallback.keep(ctx.cfg, rec, reason)
    say(f"{reason}; message {rec.event_id} kept {where}{note}")
    return False, rec.event_id


def _within_syslog_bound(ctx, rec, sink, envelope, extra):
    """`rec`, or the record rebuilt with a smaller line cap so that it is at most fallback.MAX_PARTS
    syslog parts; and the note for the stderr line."""
    size = len(rec.ascii_line())
    if size <= fallback.MAX_TEXT:
        return rec, ""
    limit = ctx.cfg.max_line_bytes
    while size > fallback.MAX_TEXT:
        # The ASCII form may be up to six times the UTF-8 line: scale the cap by what it came to.
        limit = int(limit * fallback.MAX_TEXT / size * 0.98)
        rec = record.build(ctx, sink, *envelope, extra=extra, line_limit=limit)
        size = len(rec.ascii_line())
    return rec, (
        f"; cut to {fallback.MAX_PARTS} syslog parts to pass journald's rate limit"
        f" (it keeps {rec.kept_bytes} of the message's {sink.total} bytes)"
    )


def _deliver(ctx):
    opts = ctx.options
    sink = message.Sink(ctx.cfg.max_message_bytes)
    ctx.sink = sink
    message.read(STDIN_FD, sink, dot_ends=not opts.ignore_dots)
    hdrs = headers.parse(sink.kept)
    recipients = command_line_recipients(ctx)
    if opts.extract_recipients:
        recipients = _unique(recipients + hdrs.recipients())
    extra = {"usage_errors": list(opts.errors)} if opts.errors else None
    in_log, _ = submit(ctx, sink, envelope_sender(ctx), recipients, hdrs, extra=extra)
    ctx.sink = None
    ctx.handled = True
    if not in_log:
        return EX_TEMPFAIL
    if opts.errors:
        # Recorded all the same, but the caller should learn that sendmail would have refused.
        say("usage: " + "; ".join(opts.errors))
        return EX_USAGE
    return EX_OK


def _run(argv, environ, state):
    ctx = Context(argv, environ)
    state["ctx"] = ctx
    opts = ctx.options
    mode = opts.mode_name
    if mode == "invalid":
        say("; ".join(opts.errors))
        return EX_USAGE
    if mode == "queue":
        sys.stdout.write("Mail queue is empty\n")
        sys.stdout.flush()
        return EX_OK
    if mode in ("aliases", "noop") or (mode == "deliver" and opts.queue_run is not None):
        # No alias database to rebuild, no queue to run: done, successfully.
        return EX_OK
    if mode == "verify":
        recipients = command_line_recipients(ctx)
        if not recipients:
            say("recipient names must be specified")
            return EX_USAGE
        sys.stdout.write("".join(f"{r}... deliverable: mailer sendmail-shim\n" for r in recipients))
        sys.stdout.flush()
        return EX_OK
    if mode == "smtp":
        from sendmail_shim import smtp  # noqa: PLC0415 - cron and sudo never need it

        return smtp.serve(
            ctx, message.LineReader(STDIN_FD), sys.stdout.buffer, lambda *a, **k: submit(ctx, *a, **k)
        )
    return _deliver(ctx)


def _hang_up():
    try:
        sys.stdout.buffer.write(b"421 4.3.0 Error: internal error, closing connection\r\n")
        sys.stdout.buffer.flush()
    except (OSError, ValueError):
        pass


def _rescue(argv, environ, state, exc):
    """An unexpected error: keep what was read in the fallback, one stderr line, exit 75."""
    reason = f"internal error ({type(exc).__name__}: {exc})"
    ctx = state.get("ctx")
    mode = ctx.options.mode_name if ctx is not None else "deliver"
    if mode == "smtp":
        _hang_up()
    sink = ctx.sink if ctx is not None else None
    if sink is None and mode == "deliver" and not (ctx is not None and ctx.handled):
        # It failed before reading: the caller's message is still waiting on stdin.
        sink = message.Sink(config.Config().max_message_bytes)
        try:
            message.read(STDIN_FD, sink, dot_ends=ctx is not None and not ctx.options.ignore_dots)
        except OSError as read_error:
            reason += f"; reading the message failed: {read_error}"
    if sink is None:
        say(f"{reason}; no message was being read")
        return EX_TEMPFAIL
    try:
        # The fallback settings still apply when the failure came before they were at hand.
        cfg = ctx.cfg if ctx is not None else config.from_environ(environ)[0]
        rec = _rescue_record(argv, sink, reason)
        where = fallback.keep(cfg, rec, reason)
        say(f"{reason}; message {rec.event_id} kept {where}")
    except Exception as again:  # noqa: BLE001 - the very last resort must not fail either
        say(f"{reason}, then {type(again).__name__}: {again}; the message follows in base64")
        import binascii  # noqa: PLC0415

        fallback.write_stderr(binascii.b2a_base64(bytes(sink.kept)))
    return EX_TEMPFAIL


def _rescue_record(argv, sink, reason):
    """A record that needs nothing that may have failed: no config, identity or header parsing."""
    import binascii  # noqa: PLC0415

    # Within the syslog bound (fallback.MAX_PARTS), with room for the other fields and the argv.
    kept = bytes(sink.kept[: (fallback.MAX_TEXT // 2) // 4 * 3]) if sink is not None else b""
    event_id = record.new_id()
    fields = {
        "@timestamp": record.timestamp()[0],
        "event": {"kind": "event", "category": ["email"], "type": ["info"], "id": event_id},
        "user": {"id": str(os.getuid())},
        "process": {"pid": os.getpid(), "args": [record.clean(a) for a in argv]},
        "sendmail_shim": {
            "error": reason,
            "message": {
                "bytes": sink.total if sink is not None else 0,
                "kept_bytes": len(kept),
                "sha256": sink.hexdigest() if sink is not None else None,
                "truncated": sink is not None and sink.total > len(kept),
                "base64": binascii.b2a_base64(kept, newline=False).decode("ascii"),
            },
        },
    }
    return record.Record(fields, event_id)


def _standard_streams():
    """Make fds 0, 1 and 2 usable when a caller started us with some closed (only without the launcher,
    which does the same): otherwise the log, opened later, could become fd 1 and receive SMTP replies,
    and sys.stdout would be None."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            # The lowest free descriptor: fd itself, since the ones below it are open by now.
            os.open(os.devnull, os.O_RDWR)
    if sys.stdout is None:
        sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115


def main(argv=None, environ=None):
    """Run the shim; returns the exit status. Never raises."""
    argv = list(sys.argv if argv is None else argv)
    environ = os.environ if environ is None else environ
    state = {}
    try:
        _standard_streams()
        invoked_as = environ.get(ENV_INVOKED_AS)
        if invoked_as:
            argv[:1] = [invoked_as]
        return _run(argv, environ, state)
    except KeyboardInterrupt:
        # SIGINT is held once a record may exist (Context.hold_signals): this one came before.
        say("interrupted (SIGINT) before the message was recorded; the message is not kept")
        return EX_TEMPFAIL
    except Exception as exc:  # noqa: BLE001 - the caller must never see a traceback
        return _rescue(argv, environ, state, exc)
