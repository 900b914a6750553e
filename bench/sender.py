# SPDX-License-Identifier: MIT
"""The caller side of the benchmark, run inside each container as an unprivileged user.

Copied into the container and run with its own /usr/bin/python3 (stdlib only), so that what is timed is
what a caller there pays: one exec of the command per message, stdin written, exit status read.
Prints one JSON object on stdout.

  sender.py latency --count N --token T -- CMD...   times N sequential sends (perf_counter around run);
      tokens T-0-<i>, as one sender of the burst's, for check_log.py
  sender.py burst --procs P --count N --token T -- CMD...   P forked senders x N sends, wall time
  sender.py rss --size BYTES --token T -- CMD...   one message of BYTES, peak RSS of the child (wait4)
  sender.py flood --procs P --size BYTES --token T -- CMD...   P messages of BYTES at once, each fed by its
      own forked writer (token T-<writer>-0, as the burst's, for check_log.py); each child's figures
"""

import argparse
import json
import os
import pwd
import resource
import socket
import subprocess
import sys
import time

HOSTNAME = socket.gethostname()
USER = pwd.getpwuid(os.getuid()).pw_name
# What a cron job's output looks like to sendmail (Debian's cron 3.0pl1 writes these headers).
CRON_HEADERS = (
    "From: root (Cron Daemon)\n"
    "To: {user}\n"
    "Subject: Cron <{user}@{host}> /usr/local/bin/job {token}\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=UTF-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "X-Cron-Env: <SHELL=/bin/sh>\n"
    "X-Cron-Env: <HOME=/home/{user}>\n"
    "X-Cron-Env: <PATH=/usr/bin:/bin>\n"
    "X-Cron-Env: <LOGNAME={user}>\n"
    "\n"
)
CRON_BODY = "job {token} finished\nrsync: 1234 files, 56 MB transferred\nwarning: 2 files vanished\n"


def cron_message(token):
    fields = {"user": USER, "host": HOSTNAME, "token": token}
    return (CRON_HEADERS.format(**fields) + CRON_BODY.format(**fields)).encode()


def send(cmd, token):
    """One send; returns (seconds, exit status)."""
    data = cron_message(token)
    start = time.perf_counter()
    proc = subprocess.run(cmd, input=data, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start, proc.returncode


def children_cpu():
    """CPU seconds (user + system) of every reaped descendant so far: what the sends cost the machine,
    not counting work an MTA hands to its daemon."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def latency(args):
    times, failures = [], 0
    cpu = children_cpu()
    for i in range(args.count):
        seconds, status = send(args.cmd, f"{args.token}-0-{i}")
        times.append(seconds)
        failures += status != 0
    return {"times": times, "failures": failures, "cpu": children_cpu() - cpu}


def _together(procs, work):
    """Run work(i) in `procs` processes of their own, released together; their reports and the wall time.

    Each blocks on a pipe that the parent closes once all are forked, so fork time is not in the wall
    time, and reports one JSON line on a pipe (shorter than PIPE_BUF, so the lines never interleave). One
    that fails reports nothing (the caller counts it) and never returns into the parent's loop."""
    gate_r, gate_w = os.pipe()
    report_r, report_w = os.pipe()
    for worker in range(procs):
        if os.fork() == 0:
            try:
                os.close(gate_w)
                os.close(report_r)
                os.read(gate_r, 1)
                os.write(report_w, (json.dumps(work(worker)) + "\n").encode())
            finally:
                os._exit(0)
    os.close(gate_r)
    os.close(report_w)
    start = time.perf_counter()
    os.close(gate_w)
    with os.fdopen(report_r, "rb") as reports:
        got = [json.loads(line) for line in reports]
    wall = time.perf_counter() - start
    for _ in range(procs):
        os.wait()
    return got, wall


def burst(args):
    # Every sender is its own process, as concurrent cron jobs are. Each reports its own children's CPU:
    # the parent's RUSAGE_CHILDREN would also count the senders' own Python work.
    def sender(worker):
        failures = 0
        for i in range(args.count):
            failures += send(args.cmd, f"{args.token}-{worker}-{i}")[1] != 0
        return {"failures": failures, "cpu": children_cpu()}

    workers, wall = _together(args.procs, sender)
    return {
        "wall": wall,
        # A sender that died without its report counts all its messages as failed.
        "failures": sum(w["failures"] for w in workers) + (args.procs - len(workers)) * args.count,
        "messages": args.procs * args.count,
        "cpu": sum(w["cpu"] for w in workers),
    }


def feed(cmd, token, size):
    """One message of `size` bytes written into `cmd`'s stdin through a pipe; the child's figures.

    posix_spawn + wait4 rather than subprocess: wait4 hands back the child's rusage. Through the setuid
    launcher on the exec path the child becomes the shim's python3, so ru_maxrss is the shim's peak; when
    the launcher hands the message to the recorder it is the launcher's own."""
    read_fd, write_fd = os.pipe()
    null = os.open(os.devnull, os.O_WRONLY)
    actions = [(os.POSIX_SPAWN_DUP2, fd, target) for fd, target in ((read_fd, 0), (null, 1), (null, 2))]
    start = time.perf_counter()
    pid = os.posix_spawn(cmd[0], cmd, os.environ, file_actions=actions)
    os.close(read_fd)
    os.close(null)
    header = cron_message(token)
    # A log dump as a job would mail it: printable lines, not one incompressible blob.
    line = b"".join(b"%06d %s\n" % (n, b"x" * 68) for n in range(13108))
    block = line[: 1 << 20]
    remaining = size - len(header)
    with os.fdopen(write_fd, "wb", buffering=0) as pipe:
        try:
            pipe.write(header)
            while remaining > 0:
                chunk = block[:remaining]
                pipe.write(chunk)
                remaining -= len(chunk)
        except BrokenPipeError:
            pass
    _, status, usage = os.wait4(pid, 0)
    return {
        "maxrss_kib": usage.ru_maxrss,
        "status": os.waitstatus_to_exitcode(status),
        "seconds": time.perf_counter() - start,
        "unsent": max(remaining, 0),
        "cpu": usage.ru_utime + usage.ru_stime,
    }


def rss(args):
    return feed(args.cmd, args.token, args.size)


def flood(args):
    # Each writer is its own process, so that the pipes fill as fast as P callers would fill them.
    def writer(number):
        return {"writer": number, **feed(args.cmd, f"{args.token}-{number}-0", args.size)}

    children, wall = _together(args.procs, writer)
    return {
        "wall": wall,
        "children": sorted(children, key=lambda c: c["writer"]),
        "writers_failed": args.procs - len(children),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["latency", "burst", "rss", "flood"])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--procs", type=int, default=64)
    parser.add_argument("--size", type=int, default=10 << 20)
    parser.add_argument("--token", required=True)
    parser.add_argument("cmd", nargs="+")
    args = parser.parse_args()
    result = {"latency": latency, "burst": burst, "rss": rss, "flood": flood}[args.what](args)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
