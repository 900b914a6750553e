# SPDX-License-Identifier: MIT
"""The exec entry point: the shim started for one message (by the launcher, or by a caller directly).

It turns this process's state (argv, environment, the launcher's variables, ids, parent) into the
explicit values core.handle works from.
"""

import os
import sys

from sendmail_shim import config, core, identity
from sendmail_shim.sysexits import EX_TEMPFAIL

ENV_INVOKED_AS = "SENDMAIL_SHIM_INVOKED_AS"
ENV_UNPRIVILEGED = "SENDMAIL_SHIM_UNPRIVILEGED"
STDIN_FD = 0

UNPRIVILEGED_REASON = (
    "the launcher could not switch to the service user (no privilege: nosuid mount, NoNewPrivileges or a"
    " container?), so the log was not tried; an administrator should check the setuid launcher"
)


def invocation(argv, environ, fds=None):
    """The core's values for this process run with `argv` and `environ`."""
    cfg, problems = config.from_environ(environ)
    uid, gid, from_launcher = identity.caller_ids(cfg.service_user, environ)
    parent_pid, parent_name = identity.parent()
    caller = core.Caller(
        uid, gid, identity.user_name(uid), os.getpid(), parent_pid=parent_pid, parent_name=parent_name,
        peer=None if from_launcher else identity.smtp_peer(environ),
    )  # fmt: skip
    return core.Invocation(
        core.Origin(argv, caller, config.hostname(cfg), "exec"), fds or core.Fds(STDIN_FD), cfg,
        config_problems=problems,
        log_refused=UNPRIVILEGED_REASON if environ.get(ENV_UNPRIVILEGED) == "1" else None,
    )  # fmt: skip


def _trusted_invocation(argv, environ):
    """For the guard, when `invocation` failed: only what cannot fail (the process's own ids), and the
    config if it can be read at all (the fallback settings still apply)."""
    try:
        cfg = config.from_environ(environ)[0]
    except Exception:  # noqa: BLE001 - the defaults keep the message all the same
        cfg = config.Config()
    caller = core.Caller(os.getuid(), os.getgid(), None, os.getpid())
    return core.Invocation(core.Origin(argv, caller, config.hostname(cfg), "exec"), core.Fds(STDIN_FD), cfg)


def _standard_streams():
    """Make fds 0, 1 and 2 usable when a caller started us with some closed (only without the launcher,
    which does the same): otherwise the log, opened later, could become fd 1 and receive SMTP replies."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            # The lowest free descriptor: fd itself, since the ones below it are open by now.
            os.open(os.devnull, os.O_RDWR)


def main(argv=None, environ=None):
    """Run the shim; returns the exit status. Never raises."""
    argv = list(sys.argv if argv is None else argv)
    environ = os.environ if environ is None else environ
    try:
        from sendmail_shim import logwriter  # noqa: PLC0415 - the signal set-up of this process

        logwriter.ignore_file_size_signal()
        _standard_streams()
        invoked_as = environ.get(ENV_INVOKED_AS)
        if invoked_as:
            argv[:1] = [invoked_as]
        inv = invocation(argv, environ)
    except KeyboardInterrupt:
        core.say(
            _trusted_invocation(argv, environ),
            "interrupted (SIGINT) before the message was recorded; the message is not kept",
        )
        return EX_TEMPFAIL
    except Exception as exc:  # noqa: BLE001 - the caller must never see a traceback
        return core.rescue(_trusted_invocation(argv, environ), exc)
    return core.handle(inv)
