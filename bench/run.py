# SPDX-License-Identifier: MIT
"""The benchmark: the shim, on both of its paths, next to exim4, postfix and nullmailer, in containers,
in one run.

  python3 bench/run.py [--quick] [--messages-only | --converge-only | --from-json F] [--json F]
                       [--doc docs/benchmarks.md] [--wait-quiet SECONDS]

Every container is a systemd container from the harness's Debian 12 image, named sst-bench-*, and is
removed at the end whatever happens. The shim is installed by the role (ansible-playbook, podman
connection, the package from dist/) on a host that runs exim4, and called through /usr/sbin/sendmail (the
setuid launcher) by an unprivileged user, exactly as cron calls it: once with the recorder's socket
listening (the recorder path), once with the socket and the service stopped (the exec path). Each MTA is
installed from Debian's packages in a sibling container and called the same way. bench/sender.py runs
inside the containers and does the timing, so podman's own overhead is never in a figure; bench/doc.py
writes the doc from the figures.

--quick runs every step with small sizes (for debugging) and writes no doc; --messages-only measures the
per-message figures only (latency, burst, CPU, memory; the role's install untimed, no fleet);
--converge-only measures the converge figures and the floor only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import doc

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "files"))
from sendmail_shim import schema  # noqa: E402 - the shim's schema names the record's fields

IMAGE = "localhost/sendmail-shim-test/debian:bookworm"
PREFIX = "sst-bench-"
SHIM_HOST = PREFIX + "shim"
BENCH_USER = "sstbench"
TOOLS = "/opt/sst-bench"
SENDMAIL = "/usr/sbin/sendmail"
CRON_ARGS = ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", BENCH_USER]
LAYOUT = json.loads((REPO / "files" / "sendmail_shim" / "layout.json").read_text())
SHIM_ENTRY = LAYOUT["entry"]
SHIM_LOG = LAYOUT["log"]
SERVICE_USER = LAYOUT["user"]
RECORDER_SOCKET = LAYOUT["recorder_socket"]
RECORDER_SERVICE = LAYOUT["recorder_service"]
PATHS = doc.PATHS
if set(PATHS) != set(schema.ENTRIES):
    raise SystemExit(f"bench: the shim's paths {sorted(PATHS)} are not the record's entries {schema.ENTRIES}")
FLOOR_HOST = PREFIX + "floor"
MIB = doc.MIB

# Each MTA as Debian installs it, with only what keeps it local: postfix preseeded 'Local only'
# (the question its postinst asks), nullmailer with no relay (its queue then simply waits).
MTAS = {
    "exim4": {"packages": ["exim4-daemon-light"], "service": "exim4", "preseed": []},
    "postfix": {
        "packages": ["postfix"],
        "service": "postfix",
        "preseed": ["postfix postfix/main_mailer_type select Local only"],
    },
    "nullmailer": {
        "packages": ["nullmailer"],
        "service": "nullmailer",
        "preseed": ["nullmailer nullmailer/relayhost string "],
    },
}


class Sizes:
    def __init__(self, quick):
        self.latency = 20 if quick else 200
        self.warmup = 2 if quick else 5
        self.burst_procs, self.burst_count = (8, 5) if quick else (64, 50)
        self.rss = [MIB, 10 * MIB] if quick else [10 * MIB, 100 * MIB, 1024 * MIB]
        self.flood_procs, self.flood_size = (8, 10 * MIB) if quick else (64, 1024 * MIB)
        self.fleet = 2 if quick else 10

    def setup(self):
        """What the doc says about how the figures were taken."""
        return {
            "latency_count": self.latency,
            "warmup": self.warmup,
            "burst_procs": self.burst_procs,
            "burst_count": self.burst_count,
            "rss_sizes": self.rss,
            "flood_procs": self.flood_procs,
            "flood_size": self.flood_size,
            "cron_args": CRON_ARGS,
            "sendmail": SENDMAIL,
            "recorder_socket": RECORDER_SOCKET,
            "recorder_service": RECORDER_SERVICE,
        }


def say(text):
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run(argv, *, input=None, check=True, env=None, timeout=1800):
    proc = subprocess.run(
        argv, input=input, capture_output=True, text=True, check=False, env=env, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(map(str, argv))} exited {proc.returncode}\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def in_box(name, *argv, user=None, input=None, check=True, timeout=1800):
    who = ["--user", user] if user else []
    return run(["podman", "exec", "-i", *who, name, *argv], input=input, check=check, timeout=timeout)


def bench_containers():
    out = run(["podman", "ps", "-a", "--format", "{{.Names}}"]).stdout.split()
    return [name for name in out if name.startswith(PREFIX)]


def remove(names):
    if names:
        run(["podman", "rm", "-f", "-t", "2", *names], check=False)


def start(names):
    """Starts fresh systemd containers and waits for their boot."""
    for name in names:
        run(
            [
                "podman",
                "run",
                "-d",
                "--name",
                name,
                "--hostname",
                name,
                "--systemd=always",
                IMAGE,
                "/sbin/init",
            ]
        )
    for name in names:
        # 'degraded' (exit 1) is normal in a container: some units have no hardware to start on.
        status = in_box(name, "systemctl", "is-system-running", "--wait", check=False, timeout=180)
        if status.returncode not in (0, 1):
            raise RuntimeError(f"{name} did not boot: {status.stdout.strip()}")


def start_with_exim4(names):
    """Fresh hosts as Debian ships them, exim4 running, and as fresh as the image again afterwards: no
    apt lists (whoever converges them downloads their own). Untimed; installs run two at a time."""
    start(names)
    script = (
        "set -e; export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; "
        "apt-get install -y -qq exim4-daemon-light >/dev/null; systemctl is-active exim4; "
        "rm -rf /var/lib/apt/lists/*"
    )
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda name: in_box(name, "sh", "-c", script), names))


def install_mta(kind):
    name, spec = PREFIX + kind, MTAS[kind]
    script = ["set -e", "export DEBIAN_FRONTEND=noninteractive"]
    script += [f"echo {shlex.quote(line)} | debconf-set-selections" for line in spec["preseed"]]
    script += [
        "apt-get update -qq",
        "apt-get install -y -qq --no-install-recommends " + " ".join(spec["packages"]) + " >/dev/null",
        f"systemctl enable --now {spec['service']}",
        f"systemctl is-active {spec['service']}",
    ]
    in_box(name, "sh", "-c", "\n".join(script))
    return kind


def add_bench_user_and_tools(name):
    in_box(name, "useradd", "--create-home", "--shell", "/bin/sh", BENCH_USER)
    in_box(name, "mkdir", "-p", TOOLS)
    for tool in ("sender.py", "check_log.py", "recorder_profile.py"):
        run(["podman", "cp", str(REPO / "bench" / tool), f"{name}:{TOOLS}/{tool}"])
    in_box(name, "chmod", "-R", "a+rX", TOOLS)


RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


TASK_HEADER = re.compile(r"^TASK \[(.+?)\]")
TASK_TIME = re.compile(r"^(.+?) -{3,} (\d+\.\d+)s$", re.M)


def converge(hosts, forks, logdir, label, playbook="converge.yml"):
    """Applies the role (or another bench playbook) with ansible-playbook; returns (seconds,
    {host: recap counts}, details). The output is kept in logdir/ansible-LABEL.log; details holds the
    slowest tasks (profile_tasks) and the tasks that reported a change."""
    inventory = logdir / f"inventory-{label}.yml"
    lines = ["all:", "  vars:", "    ansible_connection: containers.podman.podman"]
    lines += ["    ansible_python_interpreter: /usr/bin/python3", "  hosts:"]
    lines += [f"    {host}:" for host in hosts]
    inventory.write_text("\n".join(lines) + "\n")
    env = dict(
        os.environ,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
    )
    argv = ["ansible-playbook", "-i", str(inventory), "-f", str(forks), str(REPO / "bench" / playbook)]
    start_time = time.perf_counter()
    proc = run(argv, env=env, check=False)
    seconds = time.perf_counter() - start_time
    (logdir / f"ansible-{label}.log").write_text(proc.stdout + proc.stderr)
    recap = {
        m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4])}
        for m in RECAP.findall(proc.stdout)
    }
    if proc.returncode != 0 or set(recap) != set(hosts):
        raise RuntimeError(
            f"converge failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
        )
    task, changed = None, []
    for line in proc.stdout.splitlines():
        header = TASK_HEADER.match(line)
        if header:
            task = header[1]
        elif line.startswith("changed:") and task not in changed:
            changed.append(task)
    slowest = [(name.strip(), float(secs)) for name, secs in TASK_TIME.findall(proc.stdout)][:8]
    tasks = {
        "tasks_run": max(r["ok"] + r["failed"] for r in recap.values()),
        "tasks_skipped": max(int(m) for m in re.findall(r"skipped=(\d+)", proc.stdout)),
    }
    return seconds, recap, {"slowest": slowest, "changed_tasks": changed, **tasks}


def sender(name, what, token, cmd, **options):
    argv = ["python3", f"{TOOLS}/sender.py", what, "--token", token]
    for key, value in options.items():
        argv += [f"--{key}", str(value)]
    out = in_box(name, *argv, "--", *cmd, user=BENCH_USER, timeout=3600)
    return json.loads(out.stdout)


def percentile(times, fraction):
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def wait_drained(kind, timeout=300):
    """Waits until an MTA has delivered what it queued, so its deliveries do not run into the next
    measurement. nullmailer has no relay here: its queue only grows, and nothing runs for it."""
    probes = {"exim4": "exim4 -bpc | grep -qx 0", "postfix": "postqueue -p | grep -q 'is empty'"}
    if kind not in probes:
        return
    deadline = time.monotonic() + timeout
    while in_box(PREFIX + kind, "sh", "-c", probes[kind], check=False).returncode != 0:
        if time.monotonic() > deadline:
            say(f"{kind}: queue not empty after {timeout} s, going on")
            return
        time.sleep(2)


def podman_costs(name, rounds=10):
    """Median wall time of the two podman calls the podman connection makes for every module task
    (it has no pipelining): `podman exec` (mkdir of the temp dir, then the module run) and `podman cp`
    (the module's AnsiballZ file)."""
    payload = REPO / "bench" / "sender.py"
    costs = {"exec": [], "cp": []}
    for _ in range(rounds):
        start_time = time.perf_counter()
        run(["podman", "exec", name, "true"])
        costs["exec"].append(time.perf_counter() - start_time)
        start_time = time.perf_counter()
        run(["podman", "cp", str(payload), f"{name}:/tmp/sst-bench-cp-probe"])
        costs["cp"].append(time.perf_counter() - start_time)
    return {what: statistics.median(times) * 1000 for what, times in costs.items()}


def machine():
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.machine(),
    )  # fmt: skip
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "nproc": os.cpu_count(),
        "memory": f"{mem_kib / MIB:.1f} GiB",
        "kernel": platform.release(),
        "cpu": cpu,
        "podman": run(["podman", "--version"]).stdout.strip(),
        # The tree the package was built from (dist/ is built from the same sources by `make package`).
        "commit": run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"], check=False
        ).stdout.strip(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def quietness():
    """Load average and the containers of others: what else was competing for the 2 cores."""
    others = [
        n for n in run(["podman", "ps", "--format", "{{.Names}}"]).stdout.split() if not n.startswith(PREFIX)
    ]
    return {"load": os.getloadavg(), "other_containers": others}


def wait_quiet(seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = quietness()
        if state["load"][0] < 0.5 and not state["other_containers"]:
            return True
        say(f"waiting for a quiet machine: load {state['load'][0]:.2f}, others {state['other_containers']}")
        time.sleep(30)
    return False


IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def _import_times(as_service, argv, message):
    """{module: (self µs, cumulative µs)} from -X importtime; the last of three runs (caches warm, as in
    the latency runs)."""
    times = {}
    for _ in range(3):
        out = in_box(SHIM_HOST, *as_service, "python3", "-X", "importtime", "-I", "-S", *argv, input=message)
        times = {m[4]: (int(m[1]), int(m[2])) for m in IMPORT_LINE.finditer(out.stderr)}
    return times


def profile_shim(bench_uid):
    """Where the shim's time goes on one cron-style message, run as the service user the way the launcher
    runs it: -X importtime, split into what the bare interpreter imports anyway (`-c pass`) and what the
    shim adds; and cProfile by cumulative time."""
    env = [
        "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
        f"SENDMAIL_SHIM_CALLER_UID={bench_uid}", f"SENDMAIL_SHIM_CALLER_GID={bench_uid}",
        f"SENDMAIL_SHIM_INVOKED_AS={SENDMAIL}",
    ]  # fmt: skip
    as_service = ["setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}", "--clear-groups", *env]
    message = f"Subject: Cron <{BENCH_USER}@{SHIM_HOST}> profile\n\nprofile run\n"  # one small cron mail
    floor = _import_times(as_service, ["-c", "pass"], "")
    shim = _import_times(as_service, [SHIM_ENTRY, *CRON_ARGS], message)
    own = {module: times for module, times in shim.items() if module not in floor}
    top = sorted(own.items(), key=lambda item: -item[1][0])[:10]
    cprof = in_box(
        SHIM_HOST, *as_service, "python3", "-I", "-S", "-m", "cProfile", "-s", "cumulative", SHIM_ENTRY,
        *CRON_ARGS, input=message,
    ).stdout  # fmt: skip
    table = [line for line in cprof.splitlines() if line.strip()]
    head = next((i for i, line in enumerate(table) if line.lstrip().startswith("ncalls")), 0)
    return {
        "interpreter_imports_ms": sum(self_us for self_us, _ in floor.values()) / 1000,
        "shim_imports_ms": sum(self_us for self_us, _ in own.values()) / 1000,
        "shim_import_count": len(own),
        "imports": [{"module": m, "self_ms": t[0] / 1000, "cumulative_ms": t[1] / 1000} for m, t in top],
        "cprofile": table[max(head - 2, 0) : head + 22],
    }


def profile_recorder(sizes):
    """The recorder's CPU per message by function: the units stopped, the recorder started by hand under
    bench/recorder_profile.py, socket-activated as the units do it (systemd-socket-activate binds the
    layout's socket, which is then given to the service user, so that the launcher trusts it; the recorder
    starts on the first connection, as that user), sizes.latency cron messages sent through the launcher,
    then SIGTERM; the merged profile of its threads.
    """
    set_path("exec", "sst-profile-recorder")
    socket_path = LAYOUT["recorder_socket_path"]
    pidfile, report = "/run/sst-bench-recorder.pid", "/run/sst-bench-recorder.profile"
    recorder = f"{LAYOUT['libdir']}/sendmail_shim/recorder.py"
    in_box(SHIM_HOST, "install", "-d", "-m", "0755", os.path.dirname(socket_path))
    in_box(SHIM_HOST, "install", "-o", SERVICE_USER, "-g", SERVICE_USER, "-m", "0644", "/dev/null", pidfile)
    run([
        "podman", "exec", "-d", SHIM_HOST, "sh", "-c",
        f"exec systemd-socket-activate -l {socket_path} setpriv --reuid={SERVICE_USER} "
        f"--regid={SERVICE_USER} --clear-groups -- python3 -I -S {TOOLS}/recorder_profile.py {pidfile} "
        f"{recorder} >{report} 2>&1",
    ])  # fmt: skip
    wait = (
        f"for i in $(seq 100); do [ -S {socket_path} ] && chown {SERVICE_USER}: {socket_path} && "
        f"chmod 0666 {socket_path} && exit 0; sleep 0.1; done; exit 1"
    )
    if in_box(SHIM_HOST, "sh", "-c", wait, check=False).returncode != 0:
        raise RuntimeError(f"the profiled recorder did not listen: {in_box(SHIM_HOST, 'cat', report).stdout}")
    mark = "sst-profile-recorder"
    sender(SHIM_HOST, "latency", mark, [SENDMAIL, *CRON_ARGS], count=sizes.latency)
    stop = f"pid=$(cat {pidfile}); kill -TERM $pid; while kill -0 $pid 2>/dev/null; do sleep 0.1; done"
    in_box(SHIM_HOST, "sh", "-c", stop, timeout=60)
    text = in_box(SHIM_HOST, "cat", report).stdout
    check = check_log(mark, 1, sizes.latency)
    if check["entries"].get("recorder") != sizes.latency:
        raise RuntimeError(f"the profiled recorder did not record every message: {check}\n{text[-2000:]}")
    lines = [line for line in text.splitlines() if line.strip()]
    first = next(i for i, line in enumerate(lines) if "function calls" in line)
    summary = next(line for line in lines if line.startswith("threads profiled:"))
    return {"messages": sizes.latency, "summary": summary, "cprofile": lines[first : first + 30]}


def collect_converge(sizes, logdir, out):
    """The floor, one fresh host, its re-run and a fresh fleet, in that order."""
    say(f"starting {SHIM_HOST} and {FLOOR_HOST} from {IMAGE}, both with exim4")
    start_with_exim4([SHIM_HOST, FLOOR_HOST])

    say("the floor: one apt task swapping exim4 for nullmailer on a fresh sibling host (timed)")
    seconds, recap, details = converge([FLOOR_HOST], 1, logdir, "floor", playbook="floor.yml")
    out["floor"] = {"seconds": seconds, "changed": recap[FLOOR_HOST]["changed"], **details}
    remove([FLOOR_HOST])

    say("converging the role on one fresh host (timed), then the idempotent re-run")
    seconds, recap, details = converge([SHIM_HOST], 1, logdir, "converge")
    out["converge"] = {"seconds": seconds, "changed": recap[SHIM_HOST]["changed"], **details}
    seconds, recap, details = converge([SHIM_HOST], 1, logdir, "rerun")
    out["rerun"] = {"seconds": seconds, "changed": recap[SHIM_HOST]["changed"], **details}
    say(
        f"floor {out['floor']['seconds']:.1f} s, converge {out['converge']['seconds']:.1f} s, "
        f"re-run {seconds:.1f} s changed={recap[SHIM_HOST]['changed']}"
    )
    out["podman_costs"] = podman_costs(SHIM_HOST)


def collect_fleet(sizes, logdir, out):
    fleet = [f"{PREFIX}fleet-{n:02d}" for n in range(1, sizes.fleet + 1)]
    say(f"fleet: {len(fleet)} fresh hosts with exim4, forks={len(fleet)}")
    start_with_exim4(fleet)
    seconds, recap, details = converge(fleet, len(fleet), logdir, "fleet")
    out["fleet"] = {
        **details,
        "hosts": len(fleet),
        "seconds": seconds,
        "changed": sum(r["changed"] for r in recap.values()),
    }
    say(f"fleet converge: {seconds:.1f} s")
    remove(fleet)


def recorder_state():
    """The recorder service's MainPID (0 when it is not running) and, when it runs, its CPU seconds so far
    (utime + stime of /proc/<pid>/stat, every thread) and its VmHWM in KiB."""
    script = (
        f"pid=$(systemctl show -p MainPID --value {RECORDER_SERVICE}); echo $pid; getconf CLK_TCK; "
        'if [ "$pid" != 0 ]; then cat /proc/$pid/stat; grep ^VmHWM: /proc/$pid/status; fi'
    )
    lines = in_box(SHIM_HOST, "sh", "-c", script).stdout.splitlines()
    pid, ticks = int(lines[0]), int(lines[1])
    if not pid:
        return {"pid": 0, "cpu": 0.0, "vmhwm_kib": 0}
    # The fields after the command's closing parenthesis: state is the first, utime the 12th, stime the 13th.
    fields = lines[2].rsplit(")", 1)[1].split()
    return {
        "pid": pid,
        "cpu": (int(fields[11]) + int(fields[12])) / ticks,
        "vmhwm_kib": int(lines[3].split()[1]),
    }


def set_path(path, token):
    """Puts the shim host on one of the shim's two paths. 'recorder': the socket listening, and one
    unrecorded message sent so that the service is running (socket activation) before anything is timed;
    'exec': the socket and the service stopped, as docs/recorder.md says an admin stops them. Returns the
    recorder's state."""
    if path == "recorder":
        in_box(SHIM_HOST, "systemctl", "start", RECORDER_SOCKET)
        sender(SHIM_HOST, "latency", token + "-start", [SENDMAIL, *CRON_ARGS], count=1)
        state = recorder_state()
        if not state["pid"]:
            raise RuntimeError(f"{RECORDER_SERVICE} did not start on a message sent to {RECORDER_SOCKET}")
        return state
    in_box(SHIM_HOST, "systemctl", "stop", RECORDER_SOCKET, RECORDER_SERVICE)
    return recorder_state()


def restart_recorder(token):
    """A fresh recorder (its VmHWM is then this step's): the service stopped and started again by one
    small message through the socket."""
    in_box(SHIM_HOST, "systemctl", "stop", RECORDER_SERVICE)
    return set_path("recorder", token)


def same_recorder(path, before, after, what):
    """The path really taken: on the recorder path the same recorder ran before and after (not restarted,
    so its CPU counters cover every message); on the exec path none ran."""
    if path == "recorder" and not (before["pid"] and before["pid"] == after["pid"]):
        raise RuntimeError(f"{what}: the recorder was not the same process throughout: {before} -> {after}")
    if path == "exec" and (before["pid"] or after["pid"]):
        raise RuntimeError(f"{what}: a recorder ran on the exec path: {before} -> {after}")


def recorder_limits():
    """The limits the recorder runs with, from the installed configuration (the shim's own reader)."""
    keys = ["recorder_max_connections", "max_message_bytes", "recorder_max_input_bytes",
            "recorder_max_input_seconds"]  # fmt: skip
    script = (
        f"import json, sys; sys.path.insert(0, {LAYOUT['libdir']!r}); from sendmail_shim import config; "
        f"cfg = config.load_set()[0]; print(json.dumps({{k: getattr(cfg, k, None) for k in {keys!r}}}))"
    )
    return json.loads(in_box(SHIM_HOST, "python3", "-I", "-S", "-c", script).stdout)


def check_log(token, procs, count):
    """The checker on every file of the shim's log: each of the token's messages once, every line strict
    JSON, and the token's records counted by the entry point that wrote them."""
    check = in_box(
        SHIM_HOST, "sh", "-c",
        f"python3 {TOOLS}/check_log.py --token {token} --procs {procs} --count {count} "
        f"--entry-field {schema.ENTRY} $(ls {SHIM_LOG}* | grep -v '[.]gz$')",
        check=False,
    )  # fmt: skip
    return json.loads(check.stdout)


def shim_latency(path, sizes, out):
    label = PATHS[path]
    token = f"sst-lat-{path}"
    set_path(path, token)
    sender(SHIM_HOST, "latency", token + "-warm", [SENDMAIL, *CRON_ARGS], count=sizes.warmup)
    before = recorder_state()
    got = sender(SHIM_HOST, "latency", token, [SENDMAIL, *CRON_ARGS], count=sizes.latency)
    after = recorder_state()
    same_recorder(path, before, after, f"latency {label}")
    row = latency_row(got)
    row["check"] = check_log(token, 1, sizes.latency)
    row["caller_cpu"] = row["cpu"]
    row["recorder_cpu"] = (after["cpu"] - before["cpu"]) / len(got["times"]) * 1000
    row["recorder_pid"] = after["pid"]
    row["cpu"] = row["caller_cpu"] + row["recorder_cpu"]
    out["latency"][label] = row


def latency_row(got):
    times = got["times"]
    return {
        "p50": statistics.median(times) * 1000,
        "p90": percentile(times, 0.9) * 1000,
        "cpu": got["cpu"] / len(times) * 1000,
        "failures": got["failures"],
    }


def burst(name, label, sizes, path=None, cmd=(SENDMAIL, *CRON_ARGS)):
    """One burst; on a shim path the recorder's CPU over it is counted as well."""
    token = f"sst-burst-{path or re.sub(r'[^a-z0-9]', '', label)}"
    before = set_path(path, token) if path else None
    got = sender(name, "burst", token, list(cmd), procs=sizes.burst_procs, count=sizes.burst_count)
    got["caller_cpu_per_message"] = got["cpu"] / got["messages"] * 1000
    got["recorder_cpu_per_message"] = 0.0
    if path:
        after = recorder_state()
        same_recorder(path, before, after, f"burst {label}")
        got["recorder_cpu_per_message"] = (after["cpu"] - before["cpu"]) / got["messages"] * 1000
    got["cpu_per_message"] = got["caller_cpu_per_message"] + got["recorder_cpu_per_message"]
    say(f"burst {label}: {got['wall']:.2f} s for {got['messages']} messages, failures {got['failures']}")
    return got


def single_messages(path, sizes):
    """One message of each size; the exec path's shim peak (ru_maxrss) or a fresh recorder's VmHWM."""
    figures = {}
    for size in sizes.rss:
        token = f"sst-rss-{path}-{size}"
        before = restart_recorder(token) if path == "recorder" else set_path(path, token)
        got = sender(SHIM_HOST, "rss", token, [SENDMAIL, *CRON_ARGS], size=size)
        after = recorder_state()
        same_recorder(path, before, after, f"{size // MIB} MiB message, {path} path")
        got["vmhwm_kib"] = after["vmhwm_kib"]
        figures[str(size)] = got
        peak = got["vmhwm_kib"] if path == "recorder" else got["maxrss_kib"]
        say(f"{path} path, one {size // MIB} MiB message: peak {peak / 1024:.1f} MiB, exit {got['status']}")
    return figures


def flood(path, sizes):
    """sizes.flood_procs messages of sizes.flood_size at once on one path; the peak, then the log check."""
    token = f"sst-flood-{path}"
    before = restart_recorder(token) if path == "recorder" else set_path(path, token)
    got = sender(
        SHIM_HOST, "flood", token, [SENDMAIL, *CRON_ARGS], procs=sizes.flood_procs, size=sizes.flood_size
    )
    after = recorder_state()
    same_recorder(path, before, after, f"{sizes.flood_procs} messages at once, {path} path")
    children = got["children"]
    figures = {
        "wall": got["wall"],
        "writers_failed": got["writers_failed"],
        "exit_ok": sum(child["status"] == 0 for child in children),
        "statuses": sorted({child["status"] for child in children}),
        "unsent": sum(child["unsent"] for child in children),
        "rss_sum_kib": sum(child["maxrss_kib"] for child in children),
        # CPU of the callers (launchers, or the shims they became) and of the recorder, over the step.
        "cpu": sum(child["cpu"] for child in children) + after["cpu"] - before["cpu"],
        "check": check_log(token, sizes.flood_procs, 1),
    }
    if path == "recorder":
        figures.update(peak_kib=after["vmhwm_kib"], idle_kib=before["vmhwm_kib"])
    else:
        figures["peak_kib"] = max(child["maxrss_kib"] for child in children)
    say(
        f"{path} path, {sizes.flood_procs} x {sizes.flood_size // MIB} MiB at once: peak "
        f"{figures['peak_kib'] / 1024:.1f} MiB, {figures['exit_ok']} exit 0, "
        f"log check ok={figures['check']['ok']}"
    )
    return figures


def install_shim(sizes, logdir, out):
    """The shim host for --messages-only: a fresh host with exim4, the role applied once (untimed)."""
    say(f"starting {SHIM_HOST} from {IMAGE} with exim4, then the role (not timed)")
    start_with_exim4([SHIM_HOST])
    converge([SHIM_HOST], 1, logdir, "install")


def collect_messages(sizes, out):
    """Latency, burst and memory of the shim's two paths next to the MTAs and the floors; the shim host
    must exist with the role applied."""
    mta_names = [PREFIX + kind for kind in MTAS]
    say(f"starting {', '.join(mta_names)} from {IMAGE}")
    start(mta_names)
    say("installing exim4, postfix and nullmailer from Debian's packages in their containers")
    with ThreadPoolExecutor(len(MTAS)) as pool:
        list(pool.map(install_mta, MTAS))
    for name in [SHIM_HOST, *mta_names]:
        add_bench_user_and_tools(name)
    bench_uid = int(in_box(SHIM_HOST, "id", "-u", BENCH_USER).stdout)
    socket_state = in_box(SHIM_HOST, "systemctl", "is-active", RECORDER_SOCKET, check=False).stdout.strip()
    out["setup"].update(
        shim_sendmail=in_box(SHIM_HOST, "readlink", "-f", SENDMAIL).stdout.strip(),
        socket_after_install=socket_state,
    )
    say(f"{RECORDER_SOCKET} after the install: {socket_state}")
    out["recorder_limits"] = recorder_limits()

    sendmail = [SENDMAIL, *CRON_ARGS]
    out["latency"] = {}
    for path in PATHS:
        shim_latency(path, sizes, out)
        lat = out["latency"][PATHS[path]]
        say(f"latency {PATHS[path]}: p50 {lat['p50']:.2f} ms, CPU {lat['cpu']:.2f} ms/msg")
    floors = {
        "/bin/true": ["/bin/true"],
        "python3 -I -S -c pass": ["/usr/bin/python3", "-I", "-S", "-c", "pass"],
    }
    subjects = {
        **{kind: (PREFIX + kind, sendmail) for kind in MTAS},
        **{f: (SHIM_HOST, c) for f, c in floors.items()},
    }
    for label, (name, cmd) in subjects.items():
        token = f"sst-lat-{re.sub(r'[^a-z0-9]', '', label)}"
        sender(name, "latency", token + "-warm", cmd, count=sizes.warmup)
        out["latency"][label] = latency_row(sender(name, "latency", token, cmd, count=sizes.latency))
        lat = out["latency"][label]
        say(f"latency {label}: p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f} ms, failures {lat['failures']}")
        if label in MTAS:
            wait_drained(label)

    out["burst"], out["burst_check"] = {}, {}
    for path in PATHS:
        out["burst"][PATHS[path]] = burst(SHIM_HOST, PATHS[path], sizes, path)
        out["burst_check"][path] = check_log(f"sst-burst-{path}", sizes.burst_procs, sizes.burst_count)
        say(f"burst checker, {path} path: {out['burst_check'][path]}")
    for kind in MTAS:
        out["burst"][kind] = burst(PREFIX + kind, kind, sizes)
        wait_drained(kind)
    # The floor of the burst: what 64 senders on 2 cores manage when each send is only an exec.
    out["burst"]["/bin/true"] = burst(SHIM_HOST, "/bin/true", sizes, cmd=["/bin/true"])

    out["rss"] = {path: single_messages(path, sizes) for path in PATHS}
    out["flood"] = {path: flood(path, sizes) for path in PATHS}
    set_path("exec", "sst-profile")
    out["profile"] = profile_shim(bench_uid)
    out["recorder_profile"] = profile_recorder(sizes)
    remove(mta_names)


def collect(sizes, logdir, out, messages_only):
    phases = out["phases"]
    started = time.monotonic()
    if messages_only:
        install_shim(sizes, logdir, out)
        phases["install"] = time.monotonic() - started
    else:
        collect_converge(sizes, logdir, out)
        phases["converge"] = time.monotonic() - started
    started = time.monotonic()
    collect_messages(sizes, out)
    phases["messages"] = time.monotonic() - started
    # The measurement containers are done: stop them so that the fleet has the machine to itself.
    remove([SHIM_HOST])
    if not messages_only:
        started = time.monotonic()
        collect_fleet(sizes, logdir, out)
        phases["fleet"] = time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes; no doc written")
    parser.add_argument("--doc", default=str(REPO / "docs" / "benchmarks.md"))
    parser.add_argument(
        "--wait-quiet", type=int, default=0, help="wait up to this many seconds for a quiet machine"
    )
    parser.add_argument("--json", help="also write the raw figures here")
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--converge-only",
        action="store_true",
        help="measure the floor, one host, its re-run and the fleet only; print them, write no doc",
    )
    what.add_argument(
        "--messages-only",
        action="store_true",
        help="measure the per-message figures only (the role's install untimed, no fleet)",
    )
    what.add_argument("--from-json", help="measure nothing: write the doc from figures saved by --json")
    parser.add_argument(
        "--logs", default=str(REPO / ".cache" / "bench"), help="ansible output and inventories of the run"
    )
    args = parser.parse_args()
    sizes = Sizes(args.quick)
    if args.from_json:
        Path(args.doc).write_text(doc.render(json.loads(Path(args.from_json).read_text())))
        say(f"wrote {args.doc} from {args.from_json}")
        return
    leftovers = bench_containers()
    if leftovers:
        say(f"removing leftovers of an earlier run: {leftovers}")
        remove(leftovers)
    if args.wait_quiet and not wait_quiet(args.wait_quiet):
        say("the machine never got quiet: measuring anyway (the doc says so)")
    out = {"machine": machine(), "quiet_before": quietness(), "phases": {}, "setup": sizes.setup()}
    started = time.monotonic()
    try:
        logdir = Path(args.logs)
        logdir.mkdir(parents=True, exist_ok=True)
        if args.converge_only:
            collect_converge(sizes, logdir, out)
            remove([SHIM_HOST])
            collect_fleet(sizes, logdir, out)
        else:
            collect(sizes, logdir, out, args.messages_only)
    finally:
        remove(bench_containers())
    out["duration"] = time.monotonic() - started
    out["quiet_after"] = quietness()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    if args.converge_only:
        rows = [
            f"| {goal} | {measured} | {'met' if ok else '**not met**'} |"
            for goal, measured, ok in doc.converge_goals(out)
        ]
        print("\n".join([*doc.converge_lines(out), "| goal | measured | |", "|---|---|---|", *rows]))
        return
    text = doc.render(out)
    print(text)
    if not args.quick:
        Path(args.doc).write_text(text)
        say(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
