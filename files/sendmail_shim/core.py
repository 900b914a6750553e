# SPDX-License-Identifier: MIT
"""One invocation of sendmail, from explicit values: options, message, record, log; and the guard that
keeps a message whatever happens.

Both entry points call `handle`: app.py (the shim started for one message) and recorder.py (the resident
recorder, a thread per message). Nothing here reads process-wide state: the caller's identity, fds and
config come in as values and the exit status goes out, so two messages may be handled at once.
"""

from sendmail_shim import cli, fallback, headers, message, record
from sendmail_shim.sysexits import EX_OK, EX_TEMPFAIL, EX_USAGE


class _Frozen:
    """A value: its attributes are given once, by the constructor, through __dict__ (past __setattr__, which
    refuses). Code that holds it may rely on it not changing under it (a message is handled from values
    passed down, never from fields written back)."""

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set {name}")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name}")


class Caller(_Frozen):
    """Who handed the message over: user, process and its parent, and for a socket-activated SMTP session
    the client's address (`peer`, an ECS `source` object). Each entry point makes it from what it knows:
    the launcher's ids (app.py) or the kernel's SO_PEERCRED (recorder.py)."""

    def __init__(self, uid, gid, name, pid, *, parent_pid=None, parent_name=None, peer=None):
        # `name` is None when the uid has no passwd entry.
        self.__dict__.update(uid=uid, gid=gid, name=name, pid=pid, parent_pid=parent_pid,
                             parent_name=parent_name, peer=peer)  # fmt: skip


class Origin(_Frozen):
    """Where a message comes from, as its record says: the caller, the command line (made UTF-8 clean;
    never empty), this host's name and the entry point that wrote the record."""

    def __init__(self, argv, caller, hostname, entry):
        # A list first: building a tuple from a generator costs a resume per argument.
        argv = tuple([record.clean(arg) for arg in argv]) or ("",)
        self.__dict__.update(argv=argv, caller=caller, hostname=hostname, entry=entry)


class Fds(_Frozen):
    """The caller's standard streams, as descriptors of this process."""

    def __init__(self, stdin=0, stdout=1, stderr=2):
        self.__dict__.update(stdin=stdin, stdout=stdout, stderr=stderr)


class ExecWriter:
    """How a record reaches the log when this process handles one message: straight to the log's
    locked append. The recorder has its own (one writer per log, a bound on records built at once)."""

    def building(self):
        return _NoGate()

    def append(self, path, line):
        from sendmail_shim import logwriter  # noqa: PLC0415 - not needed by -bp, -bi, -bv

        logwriter.append(path, line)


class _NoGate:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Invocation(_Frozen):
    """Everything one call of sendmail is handled from. Its command line is parsed by handle, inside the
    guard, and the options are passed down from there.

    `origin` is an Origin; `cfg` and `config_problems` come from config.py; `budget` is a message.Budget
    in the recorder (None: read until the input ends); `log_refused` a reason not to try the log at all
    (the launcher could not switch users).
    """

    def __init__(self, origin, fds, cfg, *, config_problems=(), budget=None, writer=None, log_refused=None):
        self.__dict__.update(
            origin=origin, fds=fds, cfg=cfg, config_problems=tuple(config_problems), budget=budget,
            writer=writer or ExecWriter(), log_refused=log_refused,
        )  # fmt: skip


class _Progress:
    """Per-call state the guard needs: the message being read (bytes already taken from the caller are
    never dropped), whether it was recorded, and the signal mask to give back."""

    def __init__(self):
        self.sink = None
        self.session = None
        self.handled = False
        self.problems_reported = False
        self.unheld_mask = None

    def reading(self):
        """The message being read and not yet recorded, or None."""
        if self.session is not None:
            return self.session.reading
        return None if self.handled else self.sink

    def hold_signals(self):
        """From here on a record may be in the log or the fallback: a signal must not end the run as if
        it were not (a caller would send it again). Held (in this thread) until the exit status is given,
        or in SMTP until the reply that tells the client is sent (release_signals)."""
        from sendmail_shim import logwriter  # noqa: PLC0415 - not needed by -bp, -bi, -bv

        mask = logwriter.hold_signals()
        if self.unheld_mask is None:
            self.unheld_mask = mask

    def release_signals(self):
        if self.unheld_mask is not None:
            from sendmail_shim import logwriter  # noqa: PLC0415

            logwriter.restore_signals(self.unheld_mask)
            self.unheld_mask = None


def say(inv, line):
    """One line to the caller's stderr."""
    data = (f"sendmail-shim: {line}\n").encode("utf-8", "replace")
    fallback.write_stderr(inv.fds.stderr, data, inv.budget)


def _stdout(inv, text):
    message.write_all(inv.fds.stdout, text.encode("utf-8", "replace"), inv.budget)


def envelope_sender(options, origin):
    """-f/-r as given (without angle brackets), else user@host as sendmail would make it."""
    sender = options.sender
    if sender is not None:
        sender = sender.strip()
        if sender.startswith("<") and sender.endswith(">"):
            sender = sender[1:-1]
        return sender
    caller = origin.caller
    return f"{caller.name or caller.uid}@{origin.hostname}"


def command_line_recipients(options):
    found = []
    for arg in options.recipients:
        found.extend(headers.parse_addresses(arg))
    return found


def unique(addresses):
    seen = set()
    return [a for a in addresses if not (a in seen or seen.add(a))]


def submit(inv, options, progress, sink, envelope, *, hdrs, extra=None):
    """Record one message (`envelope`: sender and recipients; `hdrs`: its parsed header): in the log, or
    in the fallback. Returns (in the log?, event id)."""

    def build(line_limit):
        return record.build(inv.origin, options, envelope, hdrs, sink, log_format=inv.cfg.log_format,
                            line_limit=line_limit, extra=extra)  # fmt: skip

    with inv.writer.building():
        rec = build(inv.cfg.max_line_bytes)
        line = rec.line()
    progress.hold_signals()
    if inv.config_problems:
        if not progress.problems_reported:
            progress.problems_reported = True
            for problem in inv.config_problems:
                say(inv, problem)
        reason = "the configuration has errors (above), so the log was not tried"
    elif inv.log_refused:
        reason = inv.log_refused
    else:
        from sendmail_shim import logwriter  # noqa: PLC0415 - not needed by -bp, -bi, -bv

        try:
            inv.writer.append(inv.cfg.log_path, line)
        except logwriter.AppendError as exc:
            reason = str(exc)
        else:
            return True, rec.event_id
    del line
    return False, _keep_elsewhere(inv, rec, reason, build, sink.total)


def _keep_elsewhere(inv, rec, reason, build, total):
    """Keep `rec` in the fallback, within syslog's bound, and tell the caller; its event id. `build(limit)`
    builds the same record within `limit` bytes; `total` is the message's size."""
    note = ""
    if inv.cfg.fallback == "syslog":
        with inv.writer.building():
            rec, note = _within_syslog_bound(rec, build, inv.cfg.max_line_bytes, total)
    where = fallback.keep(inv.cfg, rec, reason, inv.fds.stderr, inv.budget)
    say(inv, f"{reason}; message {rec.event_id} kept {where}{note}")
    return rec.event_id


def _within_syslog_bound(rec, build, limit, total):
    """`rec` (built within `limit` bytes), or the record rebuilt by `build` with a smaller line cap so that
    it is at most fallback.MAX_PARTS syslog parts; and the note for the stderr line."""
    size = len(rec.ascii_line())
    if size <= fallback.MAX_TEXT:
        return rec, ""
    while size > fallback.MAX_TEXT:
        # The ASCII form may be up to six times the UTF-8 line: scale the cap by what it came to.
        limit = int(limit * fallback.MAX_TEXT / size * 0.98)
        rec = build(limit)
        size = len(rec.ascii_line())
    return rec, (
        f"; cut to {fallback.MAX_PARTS} syslog parts to pass journald's rate limit"
        f" (it keeps {rec.kept_bytes} of the message's {total} bytes)"
    )


def _read_message(inv, progress, dot_ends):
    sink = message.Sink(inv.cfg.max_message_bytes)
    progress.sink = sink
    message.read(inv.fds.stdin, sink, dot_ends=dot_ends, budget=inv.budget)
    if inv.budget is not None and inv.budget.stopped:
        sink.budget_exceeded = inv.budget.stopped
    return sink


def _deliver(inv, options, progress):
    sink = _read_message(inv, progress, dot_ends=not options.ignore_dots)
    hdrs = headers.parse(sink.kept)
    recipients = command_line_recipients(options)
    if options.extract_recipients:
        recipients = unique(recipients + hdrs.recipients())
    extra = {"usage_errors": list(options.errors)} if options.errors else None
    envelope = (envelope_sender(options, inv.origin), recipients)
    in_log, event_id = submit(inv, options, progress, sink, envelope, hdrs=hdrs, extra=extra)
    progress.handled = True
    if sink.budget_exceeded:
        budget = inv.budget
        said = f"{budget.max_bytes} bytes" if sink.budget_exceeded == "bytes" else "its time"
        say(inv, f"stopped reading the message after {said} (the recorder's budget); message {event_id}"
                 f" keeps the {sink.total} bytes read")  # fmt: skip
    if not in_log:
        return EX_TEMPFAIL
    if options.errors:
        # Recorded all the same, but the caller should learn that sendmail would have refused.
        say(inv, "usage: " + "; ".join(options.errors))
        return EX_USAGE
    return EX_OK


def _run(inv, options, progress):
    mode = options.mode_name
    if mode == "invalid":
        say(inv, "; ".join(options.errors))
        return EX_USAGE
    if mode == "queue":
        _stdout(inv, "Mail queue is empty\n")
        return EX_OK
    if mode in ("aliases", "noop") or (mode == "deliver" and options.queue_run is not None):
        # No alias database to rebuild, no queue to run: done, successfully.
        return EX_OK
    if mode == "verify":
        recipients = command_line_recipients(options)
        if not recipients:
            say(inv, "recipient names must be specified")
            return EX_USAGE
        _stdout(inv, "".join(f"{r}... deliverable: mailer sendmail-shim\n" for r in recipients))
        return EX_OK
    if mode == "smtp":
        from sendmail_shim import smtp  # noqa: PLC0415 - cron and sudo never need it

        progress.session = smtp.Session(
            inv.origin.hostname,
            inv.cfg.max_message_bytes,
            message.LineReader(inv.fds.stdin, inv.budget),
            _FdWriter(inv.fds.stdout, inv.budget),
            lambda sink, sender, recipients, hdrs, extra=None: submit(
                inv, options, progress, sink, (sender, recipients), hdrs=hdrs, extra=extra
            ),
            told=progress.release_signals,
        )
        return progress.session.run()
    return _deliver(inv, options, progress)


class _FdWriter:
    """write/flush over the caller's stdout, unbuffered, for the SMTP session's replies."""

    def __init__(self, fd, budget):
        self.fd = fd
        self.budget = budget

    def write(self, data):
        message.write_all(self.fd, data, self.budget)

    def flush(self):
        pass


def handle(inv):
    """Handle one invocation; returns the exit status. Never raises."""
    progress = _Progress()
    options = None
    try:
        argv = inv.origin.argv
        options = cli.parse(argv[1:], argv[0])
        return _run(inv, options, progress)
    except KeyboardInterrupt:
        # SIGINT is held once a record may exist (_Progress.hold_signals): this one came before.
        say(inv, "interrupted (SIGINT) before the message was recorded; the message is not kept")
        return EX_TEMPFAIL
    except Exception as exc:  # noqa: BLE001 - the caller must never see a traceback
        return rescue(inv, exc, options, progress)


def _hang_up(inv):
    import contextlib  # noqa: PLC0415 - only a failed SMTP session

    with contextlib.suppress(OSError):
        message.write_all(
            inv.fds.stdout, b"421 4.3.0 Error: internal error, closing connection\r\n", inv.budget
        )


def rescue(inv, exc, options=None, progress=None):
    """An unexpected error: keep what was read in the fallback, one stderr line, exit 75.

    `inv` holds only what the entry point could still establish; `options` what the command line
    parsed to (None if it was not parsed), `progress` what handle had done."""
    progress = progress or _Progress()
    reason = f"internal error ({type(exc).__name__}: {exc})"
    mode = options.mode_name if options is not None else "deliver"
    if mode == "smtp":
        _hang_up(inv)
    sink = progress.reading()
    if sink is None and mode == "deliver" and not progress.handled:
        # It failed before reading: the caller's message is still waiting on stdin.
        try:
            sink = _read_message(inv, progress, dot_ends=options is not None and not options.ignore_dots)
        except OSError as read_error:
            sink = progress.sink
            reason += f"; reading the message failed: {read_error}"
    if sink is None:
        say(inv, f"{reason}; no message was being read")
        return EX_TEMPFAIL
    envelope = (None, [])
    extra = {"error": reason}

    def build(line_limit):
        # From what may be trusted still: no options and no header parsing.
        return record.build(inv.origin, None, envelope, None, sink, log_format=inv.cfg.log_format,
                            line_limit=line_limit, extra=extra)  # fmt: skip

    try:
        # Half the syslog bound to start with: the ASCII form is larger (and then cut to fit).
        limit = min(inv.cfg.max_line_bytes, fallback.MAX_TEXT // 2)
        with inv.writer.building():
            rec = build(limit)
            if inv.cfg.fallback == "syslog":
                rec = _within_syslog_bound(rec, build, limit, sink.total)[0]
        where = fallback.keep(inv.cfg, rec, reason, inv.fds.stderr, inv.budget)
        say(inv, f"{reason}; message {rec.event_id} kept {where}")
    except Exception as again:  # noqa: BLE001 - the very last resort must not fail either
        say(inv, f"{reason}, then {type(again).__name__}: {again}; the message follows in base64")
        import binascii  # noqa: PLC0415

        fallback.write_stderr(inv.fds.stderr, binascii.b2a_base64(bytes(sink.kept)), inv.budget)
    return EX_TEMPFAIL
