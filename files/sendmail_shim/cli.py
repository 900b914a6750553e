# SPDX-License-Identifier: MIT
"""Sendmail command-line parsing: accept whatever real callers pass, act on very little of it."""

# Letters that take an argument, attached (-fuser) or as the next word (-f user): sendmail 8 and Postfix.
_WITH_ARG = frozenset("ABbCDeFfhLMNOopQRrVX")
# -d and -q take an optional argument, attached only.
_OPTIONAL_ATTACHED = frozenset("dq")
_FLAGS = frozenset("cGIimnsTtUvx")
# Options that made setuid sendmails exploitable (config file, traffic log, debug output): recorded, never
# acted on, no file opened.
_NEVER_ACTED_ON = frozenset("CDdX")

MODES = {
    "m": "deliver",
    "s": "smtp",
    "p": "queue",
    "P": "queue",
    "i": "aliases",
    "v": "verify",
    # Daemon and host-status modes: there is no daemon and no host status to report.
    "d": "noop",
    "D": "noop",
    "h": "noop",
    "H": "noop",
}

_PROGRAM_MODES = {"mailq": "p", "newaliases": "i"}

# Exim's -oM options (the received protocol, the sender's address, host and ident...) take their value as
# the next word: "-oMr smtp". Sendmail's -oM defines a macro with the value attached ("-oMrsmtp"), so a
# bare -oM of these names means Exim's form.
_EXIM_OM = frozenset(("Ma", "Maa", "Mai", "Mas", "Mi", "Mm", "Mr", "Ms", "Mt"))


class Options:
    """What the command line asked for; `to_record` gives the part that goes into the record."""

    def __init__(self):
        self.mode = "m"
        self.extract_recipients = False
        self.ignore_dots = False
        self.sender = None
        self.full_name = None
        self.body_type = None
        self.dsn_notify = None
        self.dsn_return = None
        self.envelope_id = None
        self.queue_run = None
        self.flags = []
        self.o = []
        self.O = []
        self.other = []
        self.never_acted_on = []
        self.unknown = []
        self.recipients = []
        self.errors = []

    @property
    def mode_name(self):
        return MODES.get(self.mode, "invalid")

    def to_record(self):
        out = {
            "mode": self.mode_name,
            "extract_recipients": self.extract_recipients,
            "ignore_dots": self.ignore_dots,
        }
        for key in (
            "sender",
            "full_name",
            "body_type",
            "dsn_notify",
            "dsn_return",
            "envelope_id",
            "queue_run",
        ):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        for key in ("flags", "o", "O", "other", "never_acted_on", "unknown", "errors"):
            value = getattr(self, key)
            if value:
                out[key] = list(value)
        return out


def program_mode(argv0):
    """`mailq` lists the queue and `newaliases` rebuilds aliases, whatever path they are called by."""
    return _PROGRAM_MODES.get(argv0.rpartition("/")[2], "m")


def _truthy(value):
    return value.lower() not in ("f", "false", "n", "no", "0", "off")


def _sendmail_bool(value):
    """Sendmail's atobool for a one-letter option's attached value: empty or t/T/y/Y is true."""
    return not value or value[0] in "tTyY"


def _apply(opts, letter, value):
    word = "-" + letter + value
    if letter in _NEVER_ACTED_ON:
        opts.never_acted_on.append(word)
    elif letter == "b":
        opts.mode = value[:1]
        if opts.mode not in MODES:
            opts.errors.append("invalid operation mode " + repr(value))
    elif letter in "fr":
        opts.sender = value
    elif letter == "F":
        opts.full_name = value
    elif letter == "B":
        opts.body_type = value
    elif letter == "N":
        opts.dsn_notify = value
    elif letter == "R":
        opts.dsn_return = value
    elif letter == "V":
        opts.envelope_id = value
    elif letter == "o":
        opts.o.append(value)
        if value[:1] == "i":
            opts.ignore_dots = _sendmail_bool(value[1:])
    elif letter == "O":
        opts.O.append(value)
        name, eq, setting = value.partition("=")
        if name.strip().lower() == "ignoredots":
            opts.ignore_dots = _truthy(setting.strip()) if eq else True
    elif letter == "q":
        opts.queue_run = value
    elif letter == "t":
        opts.extract_recipients = True
    elif letter == "i":
        opts.ignore_dots = True
    elif letter == "I":
        opts.mode = "i"
    elif letter in _FLAGS:
        opts.flags.append(word)
    else:
        opts.other.append(word)


def parse(args, argv0="sendmail"):
    """Parse sendmail arguments (without argv[0]) the way getopt would, options and operands mixed.

    Never raises. An unknown option is recorded in `unknown` and parsing goes on; only what sendmail
    itself refuses (a missing option argument, an invalid -b mode) lands in `errors`.
    """
    opts = Options()
    opts.mode = program_mode(argv0)
    i = 0
    n = len(args)
    while i < n:
        word = args[i]
        i += 1
        if word == "--":
            opts.recipients.extend(args[i:])
            break
        if len(word) < 2 or word[0] != "-":
            opts.recipients.append(word)
            continue
        j = 1
        while j < len(word):
            letter = word[j]
            j += 1
            if letter in _WITH_ARG:
                value = word[j:]
                if not value:
                    if i >= n:
                        opts.errors.append("option requires an argument -- " + repr(letter))
                        break
                    value = args[i]
                    i += 1
                elif letter == "o" and value in _EXIM_OM and i < n:
                    value = f"{value} {args[i]}"
                    i += 1
                _apply(opts, letter, value)
                break
            if letter in _OPTIONAL_ATTACHED:
                _apply(opts, letter, word[j:])
                break
            if letter in _FLAGS:
                _apply(opts, letter, "")
                continue
            # An unknown letter may have taken an argument: keep the rest of the word with it, unparsed.
            opts.unknown.append("-" + word[j - 1 :])
            break
    return opts
