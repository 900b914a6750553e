# SPDX-License-Identifier: MIT
"""The recorder under cProfile, every thread of it: where its CPU per message goes.

  recorder_profile.py PIDFILE RECORDER_PY [ARG...]

Copied into the shim container and started there socket-activated as the service user (bench/run.py),
with the package's units stopped: it writes its pid to PIDFILE, runs the recorder's own main (which
takes the socket from LISTEN_FDS) with a profiler on the main thread and on each connection's thread,
and when the recorder returns (SIGTERM) prints the merged profile by cumulative time on stdout. Each
profiler counts its own thread's CPU time (time.thread_time), so that waiting (the accepting thread's
poll, a connection's read) costs nothing. cProfile slows what it measures: the shares are the figure,
not the absolute times.
"""

import cProfile
import io
import os
import pstats
import runpy
import sys
import threading
import time

profiles = []
_run = threading.Thread.run


def _profiled_run(self):
    profile = cProfile.Profile(time.thread_time)
    profiles.append(profile)
    profile.enable()
    try:
        _run(self)
    finally:
        profile.disable()


def main():
    pidfile, recorder, *args = sys.argv[1:]
    with open(pidfile, "w") as f:
        f.write(f"{os.getpid()}\n")
    threading.Thread.run = _profiled_run
    sys.argv = [recorder, *args]
    main_thread = cProfile.Profile(time.thread_time)
    profiles.append(main_thread)
    main_thread.enable()
    status = None
    try:
        runpy.run_path(recorder, run_name="__main__")
    except SystemExit as exc:
        status = exc.code
    finally:
        main_thread.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiles[0], stream=out)
    for profile in profiles[1:]:
        stats.add(profile)
    stats.sort_stats("cumulative").print_stats(30)
    sys.stdout.write(f"threads profiled: {len(profiles) - 1}; recorder exit: {status}\n")
    sys.stdout.write(out.getvalue())


if __name__ == "__main__":
    main()
