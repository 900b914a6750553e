# SPDX-License-Identifier: MIT
"""Who is sending: the calling user (with the launcher's trust rule, or the recorder's peer credentials)
and the parent process."""

import os
import pwd

ENV_UID = "SENDMAIL_SHIM_CALLER_UID"
ENV_GID = "SENDMAIL_SHIM_CALLER_GID"


def _decimal(value):
    if value and value.isascii() and value.isdigit():
        return int(value)
    return None


def _service_uid(service_user):
    try:
        return pwd.getpwnam(service_user).pw_uid
    except (KeyError, UnicodeError, ValueError):
        return None


def caller_ids(service_user, environ):
    """The real calling user's (uid, gid), and whether they are the launcher's.

    The launcher's SENDMAIL_SHIM_CALLER_UID/_GID are believed only when this process's real uid is the
    service user's: only root can start a process as that user with an environment of its choosing.
    """
    uid = os.getuid()
    gid = os.getgid()
    trusted = False
    env_uid = _decimal(environ.get(ENV_UID))
    env_gid = _decimal(environ.get(ENV_GID))
    if env_uid is not None and env_gid is not None and _service_uid(service_user) == uid:
        uid, gid, trusted = env_uid, env_gid, True
    return uid, gid, trusted


def user_name(uid):
    """The passwd name of `uid`, or None."""
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return None


def smtp_peer(environ):
    """The SMTP client's address and port when systemd's socket activation (Accept=yes) started us.

    systemd sets REMOTE_ADDR/REMOTE_PORT for each accepted connection; the launcher clears the
    environment, so a local caller cannot plant them through /usr/sbin/sendmail.
    """
    address = environ.get("REMOTE_ADDR")
    if not address:
        return None
    peer = {"address": address, "ip": address}
    port = _decimal(environ.get("REMOTE_PORT"))
    if port is not None:
        peer["port"] = port
    return peer


def _stat(pid):
    """/proc/PID/stat cut at the process name: (name, the fields after it), or None if gone or hidden."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read(1024)
    except OSError:
        return None
    # The name sits between the first "(" and the last ")": it may itself contain parentheses.
    start, end = stat.find(b"("), stat.rfind(b")")
    if start < 0 or end < start:
        return None
    return stat[start + 1 : end], stat[end + 1 :].split()


def process_name(pid):
    """The kernel's name for `pid` (comm), or None if the process is gone or hidden."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read(64).rstrip(b"\n").decode("utf-8", "replace")
    except OSError:
        pass
    stat = _stat(pid)
    return None if stat is None else stat[0].decode("utf-8", "replace")


def parent():
    """(pid, name) of the parent process, read now, while the caller is still waiting for us."""
    ppid = os.getppid()
    return ppid, process_name(ppid)


def parent_of(pid):
    """(pid, name) of the parent of process `pid` (the launcher, waiting for the recorder's status),
    (None, None) when it is gone or hidden."""
    stat = _stat(pid)
    # The fields after the name: the state, then the parent's pid.
    fields = [] if stat is None else stat[1]
    if len(fields) < 2 or not fields[1].isdigit() or int(fields[1]) == 0:
        return None, None
    ppid = int(fields[1])
    return ppid, process_name(ppid)
