# SPDX-License-Identifier: MIT
"""docs/benchmarks.md from the figures of one run of bench/run.py (or of its --json file).

Only rendering: every number comes from the figures; every goal is computed from them, met or not.
"""

from __future__ import annotations

MIB = 1 << 20
# The shim's two paths, as the figures and the tables name them; the keys are also the values of the
# record's entry field (the entry point that wrote it), which run.py checks against the schema.
PATHS = {"recorder": "shim, recorder", "exec": "shim, exec path"}
# Issue 15's bound for one message's shim (the exec path holds one message per process).
RSS_PER_MESSAGE_MIB = 64
# docs/recorder.md's bound for the recorder with the default limits (64 connections, 8 MiB kept each, two
# records built at once): about 1 GiB in the worst case, whatever the messages' sizes.
RECORDER_BOUND_MIB = 1024


def ms(value):
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def mib(kib):
    return f"{kib / 1024:.1f}"


def throughput(burst):
    return burst["messages"] / burst["wall"]


def quiet(out):
    before, after = out["quiet_before"], out["quiet_after"]
    return before["load"][0] < 1 and not before["other_containers"] and not after["other_containers"]


def machine_lines(out):
    m, before, after = out["machine"], out["quiet_before"], out["quiet_after"]
    lines = ["## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in m.items()]
    phases = ", ".join(f"{name} {seconds / 60:.1f} min" for name, seconds in out["phases"].items())
    lines += [
        f"| load average at start / end | {' '.join(f'{x:.2f}' for x in before['load'])} / "
        f"{' '.join(f'{x:.2f}' for x in after['load'])} |",
        f"| other containers at start / end | {', '.join(before['other_containers']) or 'none'} / "
        f"{', '.join(after['other_containers']) or 'none'} |",
        f"| run took | {out['duration'] / 60:.1f} min ({phases}) |",
        "",
        "The machine was quiet for this run." if quiet(out) else
        "**The machine was not quiet for this run** (other engineers' containers or load, above): every "
        "figure shares 2 cores with them; the ratios between columns measured in the same minutes are the "
        "part to trust.",
        "",
    ]  # fmt: skip
    return lines


def latency_lines(out):
    setup, lat, burst = out["setup"], out["latency"], out["burst"]
    rec = PATHS["recorder"]
    lines = [
        "## Per message",
        "",
        f"Latency: {setup['latency_count']} sequential cron-style messages (`sendmail "
        f"{' '.join(setup['cron_args'])}`, the headers Debian's cron writes), sent by an unprivileged user "
        f"inside each container, each exec timed with `time.perf_counter()` around `subprocess.run` after "
        f"{setup['warmup']} unrecorded warm-up sends. The shim is the package as the role installs it, "
        f"`{setup['sendmail']}` -> `{setup['shim_sendmail']}` (the setuid launcher), measured on both of "
        f"its paths in the same container: **{rec}** with `{setup['recorder_socket']}` listening (the "
        f"launcher hands the message to the resident recorder), **{PATHS['exec']}** after `systemctl stop "
        f"{setup['recorder_socket']} {setup['recorder_service']}` (the launcher execs `python3 -I -S`, as "
        "before the recorder).",
        "",
        "CPU/msg is the user+system time of the sender's reaped children (the launcher, and on the exec "
        "path the shim's python3 it became), divided by the messages; for the recorder row it also counts "
        "the recorder's own utime+stime (`/proc/<MainPID>/stat` of the service, every thread, read before "
        "and after the same sends). For the MTAs the work they hand to their daemons is not counted.",
        "",
        "| | p50 ms | p90 ms | CPU/msg ms | failed sends | burst wall s | burst msg/s | burst CPU/msg ms "
        "| burst failed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, row in lat.items():
        b = burst.get(label)
        cells = (
            f"{b['wall']:.1f} | {throughput(b):.0f} | {ms(b['cpu_per_message'])} | {b['failures']}"
            if b
            else "- | - | - | -"
        )
        lines.append(
            f"| {label} | {ms(row['p50'])} | {ms(row['p90'])} | {ms(row['cpu'])} | {row['failures']} "
            f"| {cells} |"
        )
    lines += [
        "",
        f"The recorder row's CPU split: latency {ms(lat[rec]['caller_cpu'])} ms in the launcher and "
        f"{ms(lat[rec]['recorder_cpu'])} ms in the recorder per message; burst "
        f"{ms(burst[rec]['caller_cpu_per_message'])} ms and {ms(burst[rec]['recorder_cpu_per_message'])} "
        f"ms. The recorder kept one process (MainPID {lat[rec]['recorder_pid']}) through the latency sends "
        "and through the burst, and the service stayed stopped through the exec path's.",
        "",
        f"Burst: {setup['burst_procs']} concurrent senders (forked processes, released together) x "
        f"{setup['burst_count']} messages each, wall time from release to the last exit; `/bin/true`'s "
        "burst is the floor: the most that the senders themselves manage on this machine. Checker on the "
        "shim's log (every file of it) after each path's burst:",
        "",
    ]
    for path, label in PATHS.items():
        lines.append(f"- {label}: {check_summary(out['burst_check'][path])}.")
    lines += ["", "The same checker on each path's latency sends:", ""]
    for label in PATHS.values():
        lines.append(f"- {label}: {check_summary(lat[label]['check'])}.")
    lines.append("")
    return lines


def check_summary(check):
    first_bad = check.get("bad_examples", [])[:1]
    return (
        f"{check['lines']} lines, {check['bad_lines']} not strict JSON"
        + "".join(f" (the first: `{example}`)" for example in first_bad)
        + f", {check['present']}/"
        f"{check['expected']} messages present, {check['missing']} missing, {check['duplicated']} "
        f"duplicated, written by {entries(check)}: **{'pass' if check['ok'] else 'FAIL'}**"
    )


def entries(check):
    """Who wrote the checked messages' records, from their entry field."""
    return ", ".join(f"{entry} {count}" for entry, count in sorted(check["entries"].items())) or "nobody"


def by_own_entry(check, path):
    """The checked messages that the path's own entry point recorded."""
    return check["entries"].get(path, 0)


def memory_lines(out):
    setup, rss, flood = out["setup"], out["rss"], out["flood"]
    lines = [
        "## Memory",
        "",
        "One message at a time. Exec path: the peak RSS of the launcher's child after its exec into "
        "python3 (`ru_maxrss` from `os.wait4`). Recorder: `VmHWM` of a freshly started recorder "
        "(`/proc/<MainPID>/status`; the service is stopped before each size and started by the message "
        "itself, so the figure is that message's peak, start-up included).",
        "",
        "| message | exec path MiB | exit | seconds | bytes not read | recorder MiB | exit | seconds "
        "| bytes not read |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size in setup["rss_sizes"]:
        e, r = rss["exec"][str(size)], rss["recorder"][str(size)]
        lines.append(
            f"| {size // MIB} MiB | {mib(e['maxrss_kib'])} | {e['status']} | {e['seconds']:.1f} "
            f"| {e['unsent']} | {mib(r['vmhwm_kib'])} | {r['status']} | {r['seconds']:.1f} | {r['unsent']} |"
        )
    procs, size = setup["flood_procs"], setup["flood_size"]
    lines += [
        "",
        f"{procs} messages of {size // MIB} MiB at once (forked writers released together, each feeding "
        "its own caller through a pipe), then the checker on the whole log (every line strict JSON, each "
        "of these messages exactly once):",
        "",
        "| path | peak MiB | what the peak is | exit 0 | wall s | CPU s per GiB | bytes not read "
        "| log check |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for path, label in PATHS.items():
        f = flood[path]
        what = (
            f"VmHWM of the recorder (idle before: {mib(f['idle_kib'])} MiB)"
            if path == "recorder"
            else f"largest `ru_maxrss` of the {procs} shims (all {procs} summed: {mib(f['rss_sum_kib'])} MiB)"
        )
        lines.append(
            f"| {label} | {mib(f['peak_kib'])} | {what} | {f['exit_ok']}/{procs} | {f['wall']:.1f} "
            f"| {f['cpu'] / (procs * size / (1 << 30)):.2f} "
            f"| {f['unsent'] / MIB:.0f} MiB | {check_summary(f['check'])} |"
        )
    limits, rec = out["recorder_limits"], flood["recorder"]
    lines += [
        "",
        "The recorder's limits in the installed configuration: "
        + ", ".join(f"`{key}` {value}" for key, value in limits.items())
        + f". On the recorder path {procs - by_own_entry(rec['check'], 'recorder')} of the {procs} "
        "messages were not recorded by the recorder (a launcher past its uid's share, or without the "
        "recorder's greeting or `A` within 10 s, takes the exec path). CPU s per GiB counts the callers' "
        "CPU (the launchers, or the shims they became) and the recorder's over the step: every byte is "
        "read and hashed, whatever is kept.",
        "",
    ]
    return lines


def path_goals(out, path):
    """[(goal, measured, met)] of one shim path, from this run's figures."""
    label, setup = PATHS[path], out["setup"]
    lat, burst, flood = out["latency"], out["burst"], out["flood"][path]
    mine, null, true = lat[label], lat["nullmailer"], lat["/bin/true"]
    speed, null_speed = throughput(burst[label]), throughput(burst["nullmailer"])
    check = out["burst_check"][path]
    own_checks = [mine["check"], check, flood["check"]]
    if path == "recorder":
        peak = (f"{mib(flood['peak_kib'])} MiB, the recorder", flood["peak_kib"] <= RECORDER_BOUND_MIB * 1024)
    else:
        peak = (
            f"{mib(flood['peak_kib'])} MiB the largest shim ({mib(flood['rss_sum_kib'])} MiB summed)",
            flood["peak_kib"] <= RSS_PER_MESSAGE_MIB * 1024,
        )
    rows = [
        (
            "p50 <= 0.5 x nullmailer's (issue 18)",
            f"{mine['p50'] / null['p50']:.2f} x ({ms(mine['p50'])} ms vs {ms(null['p50'])} ms)",
            mine["p50"] <= 0.5 * null["p50"],
        ),
        (
            "p50 <= 3 x the exec floor `/bin/true` (issue 18)",
            f"{mine['p50'] / true['p50']:.1f} x ({ms(mine['p50'])} ms vs {ms(true['p50'])} ms)",
            mine["p50"] <= 3 * true["p50"],
        ),
        (
            "burst msg/s >= 2 x nullmailer's (issue 18)",
            f"{speed / null_speed:.2f} x ({speed:.0f} vs {null_speed:.0f} msg/s; the senders' floor "
            f"{throughput(burst['/bin/true']):.0f})",
            speed >= 2 * null_speed,
        ),
        (
            "burst: every line strict JSON, every message once",
            f"{check['bad_lines']} bad, {check['missing']} missing, {check['duplicated']} duplicated",
            check["ok"],
        ),
        ("CPU per message <= 2 ms (issue 18; latency run)", f"{ms(mine['cpu'])} ms", mine["cpu"] <= 2),
        (
            f"peak RSS, {setup['flood_procs']} x {setup['flood_size'] // MIB} MiB at once: the recorder "
            f"<= {RECORDER_BOUND_MIB} MiB (issue 18; docs/recorder.md's bound with the default limits), "
            f"each exec-path shim <= {RSS_PER_MESSAGE_MIB} MiB (issue 15)",
            *peak,
        ),
        (
            "the same: every message in the log once, every line strict JSON",
            f"{flood['check']['present']}/{flood['check']['expected']} present, "
            f"{flood['check']['bad_lines']} bad, {flood['check']['duplicated']} duplicated",
            flood["check"]["ok"],
        ),
        (
            "every message recorded by this path's own entry point (latency, burst, messages at once)",
            ", ".join(
                f"{step} {by_own_entry(c, path)}/{c['expected']}"
                for step, c in zip(("latency", "burst", "at once"), own_checks)
            ),
            all(by_own_entry(c, path) == c["expected"] for c in own_checks),
        ),
        (
            "p50 <= postfix p50 (issue 8)",
            f"{ms(mine['p50'])} ms vs {ms(lat['postfix']['p50'])} ms",
            mine["p50"] <= lat["postfix"]["p50"],
        ),
        (
            "p50 <= exim4 p50 (issue 8)",
            f"{ms(mine['p50'])} ms vs {ms(lat['exim4']['p50'])} ms",
            mine["p50"] <= lat["exim4"]["p50"],
        ),
        (
            "p90 <= exim4 p90 (issue 8)",
            f"{ms(mine['p90'])} ms vs {ms(lat['exim4']['p90'])} ms",
            mine["p90"] <= lat["exim4"]["p90"],
        ),
        (
            "burst wall <= exim4's (issue 8)",
            f"{burst[label]['wall']:.1f} s vs {burst['exim4']['wall']:.1f} s",
            burst[label]["wall"] <= burst["exim4"]["wall"],
        ),
    ]
    one_gib = out["rss"][path].get(str(1024 * MIB))
    if one_gib:
        kib = one_gib["vmhwm_kib" if path == "recorder" else "maxrss_kib"]
        rows.append(
            (
                f"peak RSS for one 1 GiB message <= {RSS_PER_MESSAGE_MIB} MiB (issue 15)",
                f"{mib(kib)} MiB",
                kib <= RSS_PER_MESSAGE_MIB * 1024,
            )
        )
    return rows  # fmt: skip


def goals(out):
    """(goal, [(measured, met) for each shim path])."""
    per_path = [path_goals(out, path) for path in PATHS]
    return [(rows[0][0], [(measured, ok) for _, measured, ok in rows]) for rows in zip(*per_path)]


def goal_lines(out):
    lines = [
        "## Goals, from this run",
        "",
        f"| goal | {PATHS['recorder']} | | {PATHS['exec']} | |",
        "|---|---|---|---|---|",
    ]
    for goal, cells in goals(out):
        lines.append(
            f"| {goal} | "
            + " | ".join(f"{measured} | {'met' if ok else '**not met**'}" for measured, ok in cells)
            + " |"
        )
    lines.append("")
    if "converge" in out:
        lines += ["| converge goal (issue 8) | measured | |", "|---|---|---|"]
        lines += [
            f"| {goal} | {measured} | {'met' if ok else '**not met**'} |"
            for goal, measured, ok in converge_goals(out)
        ]
        lines.append("")
    return lines


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
        "## Fleet",
        "",
        "ansible-playbook, containers.podman.podman connection, fresh containers from the image with "
        "exim4 installed and no apt lists; the floor is bench/floor.yml, one apt task that swaps exim4 for "
        "nullmailer on a sibling host:",
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


def message_analysis(out):
    """Where the per-message time goes, on both paths."""
    lat, prof, burst = out["latency"], out["profile"], out["burst"]
    rec, exe = lat[PATHS["recorder"]], lat[PATHS["exec"]]
    true, bare = lat["/bin/true"], lat["python3 -I -S -c pass"]
    lines = [
        "## Where the time goes",
        "",
        "### Per message",
        "",
        f"Recorder path: its p50 of {ms(rec['p50'])} ms is {rec['p50'] / true['p50']:.1f} times an exec "
        f"as such (`/bin/true`, {ms(true['p50'])} ms); the {ms(rec['p50'] - true['p50'])} ms above it are "
        "the launcher's checks, the connect and the hand-off, the recorder's parsing and append, and the "
        f"status byte back. Per message the launcher used {ms(rec['caller_cpu'])} ms of CPU and the "
        f"recorder {ms(rec['recorder_cpu'])} ms; in the burst the recorder used "
        f"{ms(burst[PATHS['recorder']]['recorder_cpu_per_message'])} ms per message.",
        "",
        f"Exec path: of its p50 of {ms(exe['p50'])} ms, {ms(true['p50'])} ms is an exec as such and "
        f"{ms(bare['p50'])} ms is what a bare `python3 -I -S -c pass` takes in all; the "
        f"{ms(exe['p50'] - bare['p50'])} ms above that are the setuid launcher (which first looks for "
        "the recorder's socket and finds none: the stopped socket unit removes it) and the shim's own "
        "work. Under `-X importtime` (instrumented, so larger than in a plain run) the bare "
        "interpreter's own imports take "
        f"{prof['interpreter_imports_ms']:.1f} ms and the {prof['shim_import_count']} modules the shim "
        f"adds {prof['shim_imports_ms']:.1f} ms.",
        "",
        "The exec path's own imports (`-X importtime`, one cron message, run as the service user the way "
        "the launcher runs it, caches warm; modules the bare interpreter also imports left out):",
        "",
        "| module | self ms | cumulative ms |",
        "|---|---|---|",
    ]
    lines += [f"| {i['module']} | {i['self_ms']:.2f} | {i['cumulative_ms']:.2f} |" for i in prof["imports"]]
    lines += ["", "cProfile of the same run, by cumulative time:", "", "```", *prof["cprofile"], "```", ""]
    rec_prof = out["recorder_profile"]
    lines += [
        f"The recorder's CPU by function: {rec_prof['messages']} cron messages through the launcher to a "
        "recorder started by hand on the same socket under cProfile, one profiler per thread (the "
        f"accepting thread and each connection's) counting that thread's CPU time, merged "
        f"({rec_prof['summary']}). cProfile slows what it measures: read the shares, not the times.",
        "",
        "```",
        *rec_prof["cprofile"],
        "```",
        "",
    ]
    return lines


def converge_analysis(out):
    cost, conv, rerun = out["podman_costs"], out["converge"], out["rerun"]
    per_task = 2 * cost["exec"] + cost["cp"]
    lines = [
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
    ]
    if "fleet" in out:
        fleet = out["fleet"]
        lines += [
            f"With {fleet['hosts']} hosts and forks={fleet['hosts']} the same calls run {fleet['hosts']} at "
            f"a time on 2 cores: a task took {conv['seconds'] / conv['tasks_run']:.1f} s on one host and "
            f"{fleet['seconds'] / fleet['tasks_run']:.1f} s across the fleet, and apt downloads the lists "
            f"and installs on every host at once: {fleet['hosts']} hosts' work took "
            f"{fleet['seconds'] / conv['seconds']:.1f} times one host's time.",
            "",
        ]
    return lines


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
    "alternatives -> setuid launcher -> the recorder's socket (recorder path) or `python3 -I -S` as the "
    "service user (exec path) -> one line appended to the log. Each shim measurement is taken on the "
    "path it is labelled with: the bench starts or stops the recorder's socket before it, and checks "
    "after it that the recorder ran (the same MainPID before and after) or stayed stopped.",
    "- The shim host is installed by the role (bench/converge.yml) from the .deb that `make package` left "
    "in dist/, on a fresh host running exim4. With `--messages-only` that install is not timed and the "
    "fleet figures are not measured.",
    "- Timings are wall-clock from inside the containers (`bench/sender.py`); podman's own overhead is "
    "only in the fleet figures, where it is what ansible pays per task.",
    "- Every figure is native amd64. The tests' arm64 host is emulated with qemu-user (docs/arm64.md), "
    "where apt runs about 20 times slower: its times are not performance figures, and `make bench` does "
    "not run there.",
    "",
]


def render(out):
    intro = "Written by `make bench` (scripts/bench.sh, bench/run.py): figures as measured, never asserted."
    lines = ["# Benchmarks", "", intro, "", *machine_lines(out)]
    lines += latency_lines(out)
    lines += memory_lines(out)
    if "converge" in out:
        lines += converge_lines(out)
    else:
        lines += [
            "## Fleet",
            "",
            "Not measured in this run (`--messages-only`): `make bench` without it measures the converge "
            "of one fresh host, its re-run and a fleet of fresh hosts.",
            "",
        ]
    lines += goal_lines(out)
    lines += message_analysis(out)
    if "converge" in out:
        lines += converge_analysis(out)
    lines += METHOD_NOTES
    return "\n".join(lines)
