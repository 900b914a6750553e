"""The benchmark of issue 8: the shim next to exim4, postfix and nullmailer, in containers, in one run.

  python3 bench/run.py [--quick] [--doc docs/benchmarks.md] [--wait-quiet SECONDS]

Every container is a systemd container from the harness's Debian 12 image, named sst-bench-*, and is
removed at the end whatever happens. The shim is installed by the role (ansible-playbook, podman
connection, the package from dist/) on a host that runs exim4, and called through /usr/sbin/sendmail (the
setuid launcher) by an unprivileged user, exactly as cron calls it; each MTA is installed from Debian's
packages in a sibling container and called the same way. bench/sender.py runs inside the containers and
does the timing, so podman's own overhead is never in a figure. --quick runs every step with small sizes
(for debugging) and writes no doc; --converge-only measures the converge figures and the floor only.
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

REPO = Path(__file__).resolve().parents[1]
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
FLOOR_HOST = PREFIX + "floor"
MIB = 1 << 20

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
        self.fleet = 2 if quick else 10


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
    for tool in ("sender.py", "check_log.py"):
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


def latency(name, cmd, sizes, token):
    sender(name, "latency", token + "-warm", cmd, count=sizes.warmup)
    got = sender(name, "latency", token, cmd, count=sizes.latency)
    times = got["times"]
    return {
        "p50": statistics.median(times) * 1000,
        "p90": percentile(times, 0.9) * 1000,
        "cpu": got["cpu"] / len(times) * 1000,
        "failures": got["failures"],
    }


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


def collect(sizes, logdir, out):
    collect_converge(sizes, logdir, out)
    mta_names = [PREFIX + kind for kind in MTAS]
    say(f"starting {', '.join(mta_names)} from {IMAGE}")
    start(mta_names)

    say("installing exim4, postfix and nullmailer from Debian's packages in their containers")
    with ThreadPoolExecutor(len(MTAS)) as pool:
        list(pool.map(install_mta, MTAS))
    for name in [SHIM_HOST, *mta_names]:
        add_bench_user_and_tools(name)
    bench_uid = int(in_box(SHIM_HOST, "id", "-u", BENCH_USER).stdout)
    sendmail = [SENDMAIL, *CRON_ARGS]
    resolved = in_box(SHIM_HOST, "readlink", "-f", SENDMAIL).stdout.strip()
    out["shim_sendmail"] = resolved

    subjects = {
        "shim": (SHIM_HOST, sendmail),
        **{kind: (PREFIX + kind, sendmail) for kind in MTAS},
        "/bin/true": (SHIM_HOST, ["/bin/true"]),
        "python3 -I -S -c pass": (SHIM_HOST, ["/usr/bin/python3", "-I", "-S", "-c", "pass"]),
    }
    out["latency"] = {}
    for label, (name, cmd) in subjects.items():
        out["latency"][label] = latency(name, cmd, sizes, f"sst-lat-{re.sub(r'[^a-z0-9]', '', label)}")
        lat = out["latency"][label]
        say(f"latency {label}: p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f} ms, failures {lat['failures']}")
        if label in MTAS:
            wait_drained(label)

    out["burst"] = {}
    for label in ["shim", *MTAS]:
        name = SHIM_HOST if label == "shim" else PREFIX + label
        got = sender(
            name, "burst", f"sst-burst-{label}", sendmail, procs=sizes.burst_procs, count=sizes.burst_count
        )
        out["burst"][label] = got
        say(f"burst {label}: {got['wall']:.2f} s for {got['messages']} messages, failures {got['failures']}")
        if label in MTAS:
            wait_drained(label)
    check = in_box(
        SHIM_HOST, "sh", "-c",
        f"python3 {TOOLS}/check_log.py --token sst-burst-shim --procs {sizes.burst_procs} "
        f"--count {sizes.burst_count} $(ls {SHIM_LOG}* | grep -v '[.]gz$')",
        check=False,
    )  # fmt: skip
    out["burst_check"] = json.loads(check.stdout)
    say(f"burst checker: {out['burst_check']}")

    out["rss"] = {}
    for size in sizes.rss:
        got = sender(SHIM_HOST, "rss", f"sst-rss-{size}", sendmail, size=size)
        out["rss"][size] = got
        say(f"rss {size // MIB} MiB message: {got['maxrss_kib'] / 1024:.1f} MiB, exit {got['status']}")

    out["profile"] = profile_shim(bench_uid)

    # The measurement containers are done: stop them so that the fleet has the machine to itself.
    remove([SHIM_HOST, *mta_names])
    collect_fleet(sizes, logdir, out)


def ms(value):
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def goals(out):
    lat, burst, rss = out["latency"], out["burst"], out["rss"]
    one_gib = rss.get(1024 * MIB)
    rows = [
        ("shim p50 <= postfix p50", f"{ms(lat['shim']['p50'])} ms vs {ms(lat['postfix']['p50'])} ms",
         lat["shim"]["p50"] <= lat["postfix"]["p50"]),
        ("shim p50 <= exim4 p50", f"{ms(lat['shim']['p50'])} ms vs {ms(lat['exim4']['p50'])} ms",
         lat["shim"]["p50"] <= lat["exim4"]["p50"]),
        ("shim p90 <= exim4 p90", f"{ms(lat['shim']['p90'])} ms vs {ms(lat['exim4']['p90'])} ms",
         lat["shim"]["p90"] <= lat["exim4"]["p90"]),
        ("peak RSS for 1 GiB <= 64 MiB",
         f"{one_gib['maxrss_kib'] / 1024:.1f} MiB" if one_gib else "not measured (--quick)",
         bool(one_gib) and one_gib["maxrss_kib"] <= 64 * 1024),
        ("burst wall <= exim4's", f"{burst['shim']['wall']:.1f} s vs {burst['exim4']['wall']:.1f} s",
         burst["shim"]["wall"] <= burst["exim4"]["wall"]),
        ("burst: every line strict JSON, every message once",
         f"{out['burst_check']['lines']} lines, {out['burst_check']['bad_lines']} bad, "
         f"{out['burst_check']['missing']} missing, {out['burst_check']['duplicated']} duplicated",
         out["burst_check"]["ok"]),
    ]  # fmt: skip
    return rows + converge_goals(out)


def converge_goals(out):
    floor, conv, rerun = out["floor"]["seconds"], out["converge"]["seconds"], out["rerun"]["seconds"]
    return [
        ("converge of a fresh host <= 2.0 x the floor",
         f"{conv / floor:.2f} x ({conv:.1f} s vs {floor:.1f} s)", conv <= 2.0 * floor),
        ("re-run <= 1.0 x the floor, changed=0",
         f"{rerun / floor:.2f} x ({rerun:.1f} s vs {floor:.1f} s), changed={out['rerun']['changed']}",
         rerun <= floor and out["rerun"]["changed"] == 0),
    ]  # fmt: skip


def converge_lines(out):
    """The converge figures: the floor, one host, its re-run, the fleet (when measured), the profile."""
    runs = [run for run in ("floor", "converge", "rerun", "fleet") if run in out]
    floor = out["floor"]["seconds"]
    lines = [
        "Fleet (ansible-playbook, containers.podman.podman connection, fresh containers from the image "
        "with exim4 installed and no apt lists); the floor is bench/floor.yml, one apt task that swaps "
        "exim4 for nullmailer on a sibling host:",
        "",
        "| | seconds | x floor | changed | tasks run |",
        "|---|---|---|---|---|",
        f"| floor: exim4 -> nullmailer, one apt task | {floor:.1f} | 1.00 | {out['floor']['changed']} "
        f"| {out['floor']['tasks_run']} |",
        f"| converge, one fresh host | {out['converge']['seconds']:.1f} | "
        f"{out['converge']['seconds'] / floor:.2f} | {out['converge']['changed']} "
        f"| {out['converge']['tasks_run']} |",
        f"| re-run on that host | {out['rerun']['seconds']:.1f} | {out['rerun']['seconds'] / floor:.2f} "
        f"| {out['rerun']['changed']} | {out['rerun']['tasks_run']} |",
    ]
    if "fleet" in out:
        lines.append(
            f"| {out['fleet']['hosts']} fresh hosts at once, forks={out['fleet']['hosts']} | "
            f"{out['fleet']['seconds']:.1f} | {out['fleet']['seconds'] / floor:.2f} "
            f"| {out['fleet']['changed']} | {out['fleet']['tasks_run']} per host |"
        )
    lines += [
        "",
        "Slowest tasks (ansible.posix.profile_tasks), seconds:",
        "",
        "| task | " + " | ".join(runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    times = {run: dict(out[run]["slowest"]) for run in runs}
    for task in dict.fromkeys(name for run in times.values() for name in run):
        cells = " | ".join(f"{times[run][task]:.1f}" if task in times[run] else "" for run in times)
        lines.append(f"| {task} | {cells} |")
    lines += [
        "",
        "Tasks that reported a change on the re-run: "
        + (", ".join(f"`{task}`" for task in out["rerun"]["changed_tasks"]) or "none")
        + ".",
        "",
    ]
    return lines


def render(out, sizes):
    m, lat, burst = out["machine"], out["latency"], out["burst"]
    before, after = out["quiet_before"], out["quiet_after"]
    intro = "Written by `make bench` (scripts/bench.sh, bench/run.py): figures as measured, never asserted."
    lines = ["# Benchmarks", "", intro, "", "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in m.items()]
    quiet = before["load"][0] < 1 and not before["other_containers"] and not after["other_containers"]
    lines += [
        f"| load average at start / end | {' '.join(f'{x:.2f}' for x in before['load'])} / "
        f"{' '.join(f'{x:.2f}' for x in after['load'])} |",
        f"| other containers at start / end | {', '.join(before['other_containers']) or 'none'} / "
        f"{', '.join(after['other_containers']) or 'none'} |",
        f"| run took | {out['duration'] / 60:.1f} min |",
        "",
        "The machine was quiet for this run." if quiet else
        "**The machine was not quiet for this run** (other engineers' containers or load, above): every "
        "figure shares 2 cores with them; the ratios between columns measured in the same minutes are the "
        "part to trust.",
        "",
        "## Results",
        "",
        f"Latency: {sizes.latency} sequential cron-style messages (`sendmail {' '.join(CRON_ARGS)}`, the "
        f"headers Debian's cron writes), sent by an unprivileged user inside each container, each exec timed "
        f"with `time.perf_counter()` around `subprocess.run` after {sizes.warmup} unrecorded warm-up sends. "
        f"CPU/msg is the user+system time of the sender's reaped children (work an MTA hands to its "
        f"daemon is not in it). The shim is the role's install, `{SENDMAIL}` -> `{out['shim_sendmail']}`.",
        "",
        "| | p50 ms | p90 ms | CPU/msg ms | failed sends | burst wall s | burst msg/s | burst failed |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for label, row in lat.items():
        b = burst.get(label)
        burst_cells = (
            f"{b['wall']:.1f} | {b['messages'] / b['wall']:.0f} | {b['failures']}" if b else "- | - | -"
        )
        lines.append(
            f"| {label} | {ms(row['p50'])} | {ms(row['p90'])} | {ms(row['cpu'])} | {row['failures']} "
            f"| {burst_cells} |"
        )
    check = out["burst_check"]
    lines += [
        "",
        f"Burst: {sizes.burst_procs} concurrent senders (forked processes, released together) x "
        f"{sizes.burst_count} messages each, wall time from release to the last exit. Checker on the shim's "
        f"log (every file of it): {check['lines']} lines, {check['bad_lines']} not strict JSON, "
        f"{check['present']}/{check['expected']} burst messages present, {check['missing']} missing, "
        f"{check['duplicated']} duplicated: **{'pass' if check['ok'] else 'FAIL'}**.",
        "",
        "Peak RSS of the shim (the launcher's child after its exec into python3, `ru_maxrss` from "
        "`os.wait4`):",
        "",
        "| message | peak RSS MiB | exit | seconds | bytes not read by the shim |",
        "|---|---|---|---|---|",
    ]
    for size, got in out["rss"].items():
        lines.append(
            f"| {int(size) // MIB} MiB | {got['maxrss_kib'] / 1024:.1f} | {got['status']} "
            f"| {got['seconds']:.1f} | {got['unsent']} |"
        )
    lines += ["", *converge_lines(out)]
    lines += [
        "## Goals (issues 8 and 15), from this run",
        "",
        "| goal | measured | |",
        "|---|---|---|",
    ]
    lines += [
        f"| {goal} | {measured} | {'met' if ok else '**not met**'} |" for goal, measured, ok in goals(out)
    ]
    lines += analysis(out)
    lines += METHOD_NOTES
    return "\n".join(lines)


METHOD_NOTES = [
    "## Method notes",
    "",
    "- Every container is a systemd container from the harness image, one per system measured; the "
    "floors run in the shim's container. exim4 is Debian's default configuration (local delivery only), "
    "postfix is preseeded 'Local only', nullmailer has no relay (its queue only fills: nothing leaves the "
    "container). What is timed is what the caller waits for: the submission. After each MTA's latency "
    "and burst runs the bench waits for exim4's and postfix's queues to drain, so that their deliveries "
    "never run into the next measurement.",
    "- The shim goes through the launcher exactly as cron's call does: `/usr/sbin/sendmail` -> "
    "alternatives -> setuid launcher -> `python3 -I -S` as the service user -> one line appended to the log.",
    "- Fresh hosts: exim4 is installed (untimed), then the apt lists are deleted, as in the image: the "
    "role and the floor each download the lists themselves, and that time is in their figures. The role "
    "installs the .deb that `make package` left in dist/.",
    "- Timings are wall-clock from inside the containers (`bench/sender.py`); podman's own overhead is "
    "only in the fleet figures, where it is what ansible pays per task.",
    "",
]


def analysis(out):
    """The profiles behind the goals: where the shim's per-message time and the converge time go."""
    lat, prof, cost = out["latency"], out["profile"], out["podman_costs"]
    shim, exec_only = lat["shim"]["p50"], lat["/bin/true"]["p50"]
    floor = lat["python3 -I -S -c pass"]["p50"]
    fastest_mta = min(lat[kind]["p50"] for kind in MTAS)
    lines = [
        "",
        "## Where the time goes",
        "",
        "### Per message (latency, burst)",
        "",
        f"Of the shim's p50 of {ms(shim)} ms, {ms(exec_only)} ms is an exec as such (`/bin/true`) and "
        f"{ms(floor)} ms is what a bare `python3 -I -S -c pass` takes in all; the {ms(shim - floor)} ms "
        "above that are the setuid launcher and the shim's own work. In CPU per message, less sensitive "
        f"to the other load: shim {ms(lat['shim']['cpu'])} ms, bare interpreter "
        f"{ms(lat['python3 -I -S -c pass']['cpu'])} ms, "
        + ", ".join(f"{kind} {ms(lat[kind]['cpu'])} ms" for kind in MTAS)
        + ". Under `-X importtime` (instrumented, so larger than in a plain run) the bare interpreter's "
        f"own imports take {prof['interpreter_imports_ms']:.1f} ms and the {prof['shim_import_count']} "
        f"modules the shim adds {prof['shim_imports_ms']:.1f} ms: `os` and what it pulls in "
        "(`_collections_abc`, `stat`, `posixpath`) are among them, because `-S` skips `site`, which would "
        "otherwise have imported them before any script. The burst is the same cost 64 times over on 2 "
        f"cores: {out['burst']['shim']['cpu'] / out['burst']['shim']['messages'] * 1000:.1f} ms CPU per "
        "message there.",
        "",
    ]
    if floor > fastest_mta:
        lines += [
            f"The bare interpreter's start ({ms(floor)} ms) is already above the fastest MTA's whole p50 "
            f"({ms(fastest_mta)} ms): a shim started as a new Python process per message cannot get under "
            "that here, whatever it does after start-up; what is left to win is the part above the floor.",
            "",
        ]
    lines += [
        "The shim's own imports (`-X importtime`, one cron message, run as the service user the way the "
        "launcher runs it, caches warm; modules the bare interpreter also imports left out):",
        "",
        "| module | self ms | cumulative ms |",
        "|---|---|---|",
    ]
    lines += [f"| {i['module']} | {i['self_ms']:.2f} | {i['cumulative_ms']:.2f} |" for i in prof["imports"]]
    lines += ["", "cProfile of the same run, by cumulative time:", "", "```", *prof["cprofile"], "```", ""]
    per_task = 2 * cost["exec"] + cost["cp"]
    conv, rerun = out["converge"], out["rerun"]
    lines += [
        "### Converge",
        "",
        f"{conv['tasks_run']} tasks ran on the fresh host ({conv['tasks_skipped']} skipped), "
        f"{rerun['tasks_run']} on the re-run. The containers.podman.podman connection has no pipelining: "
        f"every module task is at least a `podman exec` (temp dir), a `podman cp` (the module) and another "
        f"`podman exec` (the run). Here a `podman exec` takes {cost['exec']:.0f} ms and a `podman cp` "
        f"{cost['cp']:.0f} ms (medians of 10), so about {per_task:.0f} ms per task before the task does "
        f"anything: {conv['tasks_run'] * per_task / 1000:.0f} s of the {conv['seconds']:.0f} s converge and "
        f"{rerun['tasks_run'] * per_task / 1000:.0f} s of the {rerun['seconds']:.0f} s re-run (a loop pays "
        "it once per item: see the slowest tasks above). The rest is the tasks' own work (apt's update and "
        "the one install transaction on the first run) and ansible's fixed cost per task: the module's "
        "start on the host and the controller's own work between tasks.",
        "",
        f"With {out['fleet']['hosts']} hosts and forks={out['fleet']['hosts']} the same calls run "
        f"{out['fleet']['hosts']} at a time on 2 cores: a task took "
        f"{conv['seconds'] / conv['tasks_run']:.1f} s on one host and "
        f"{out['fleet']['seconds'] / out['fleet']['tasks_run']:.1f} s across the fleet, "
        "and apt downloads the lists and installs on every host at once: "
        f"{out['fleet']['hosts']} hosts' work took "
        f"{out['fleet']['seconds'] / conv['seconds']:.1f} times one host's time. On 2 cores, within 2x "
        "would need the per-task cost to be mostly waiting rather than CPU, which it is not here.",
        "",
    ]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes; no doc written")
    parser.add_argument("--doc", default=str(REPO / "docs" / "benchmarks.md"))
    parser.add_argument(
        "--wait-quiet", type=int, default=0, help="wait up to this many seconds for a quiet machine"
    )
    parser.add_argument("--json", help="also write the raw figures here")
    parser.add_argument(
        "--converge-only",
        action="store_true",
        help="measure the floor, one host, its re-run and the fleet only; print them, write no doc",
    )
    parser.add_argument("--from-json", help="measure nothing: write the doc from figures saved by --json")
    parser.add_argument(
        "--logs", default=str(REPO / ".cache" / "bench"), help="ansible output and inventories of the run"
    )
    args = parser.parse_args()
    sizes = Sizes(args.quick)
    if args.from_json:
        out = json.loads(Path(args.from_json).read_text())
        out["rss"] = {int(size): got for size, got in out["rss"].items()}
        Path(args.doc).write_text(render(out, sizes))
        say(f"wrote {args.doc} from {args.from_json}")
        return
    leftovers = bench_containers()
    if leftovers:
        say(f"removing leftovers of an earlier run: {leftovers}")
        remove(leftovers)
    if args.wait_quiet and not wait_quiet(args.wait_quiet):
        say("the machine never got quiet: measuring anyway (the doc says so)")
    out = {"machine": machine(), "quiet_before": quietness()}
    started = time.monotonic()
    try:
        logdir = Path(args.logs)
        logdir.mkdir(parents=True, exist_ok=True)
        if args.converge_only:
            collect_converge(sizes, logdir, out)
            remove([SHIM_HOST])
            collect_fleet(sizes, logdir, out)
        else:
            collect(sizes, logdir, out)
    finally:
        remove(bench_containers())
    out["duration"] = time.monotonic() - started
    out["quiet_after"] = quietness()
    if args.converge_only:
        rows = [
            f"| {goal} | {measured} | {'met' if ok else '**not met**'} |"
            for goal, measured, ok in converge_goals(out)
        ]
        print("\n".join([*converge_lines(out), "| goal | measured | |", "|---|---|---|", *rows]))
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
        return
    text = render(out, sizes)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    if not args.quick:
        Path(args.doc).write_text(text)
        say(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
