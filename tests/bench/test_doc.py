# SPDX-License-Identifier: MIT
"""docs/benchmarks.md from figures: the goals are computed from the figures, met or not, for both paths."""

import copy
import json

import doc
import pytest

MIB = doc.MIB
REC, EXE = doc.PATHS["recorder"], doc.PATHS["exec"]


def latency(p50, cpu, **extra):
    return {"p50": p50, "p90": p50 * 1.2, "cpu": cpu, "failures": 0, **extra}


def burst(wall, cpu=1.0, recorder=0.0):
    return {
        "wall": wall,
        "messages": 3200,
        "failures": 0,
        "caller_cpu_per_message": cpu,
        "recorder_cpu_per_message": recorder,
        "cpu_per_message": cpu + recorder,
    }


def check(ok=True, expected=3200, entry="recorder"):
    present = expected if ok else expected - 1
    return {
        "lines": 3300,
        "bad_lines": 0,
        "present": present,
        "expected": expected,
        "missing": expected - present,
        "duplicated": 0,
        "ok": ok,
        "entries": {entry: present},
    }


def one_message(kib):
    return {"maxrss_kib": kib, "vmhwm_kib": kib, "status": 0, "seconds": 4.0, "unsent": 0}


def flood(peak_kib, entry, **extra):
    return {"wall": 90.0, "cpu": 128.0, "writers_failed": 0, "exit_ok": 64, "statuses": [0], "unsent": 0,
            "rss_sum_kib": 64 * 50 * 1024,
            "check": check(expected=64, entry=entry), "peak_kib": peak_kib, **extra}  # fmt: skip


@pytest.fixture
def figures():
    quiet = {"load": [0.2, 0.3, 0.4], "other_containers": []}
    sizes = [10 * MIB, 1024 * MIB]
    return {
        "machine": {"nproc": 2, "date": "2026-11-30 01:00 UTC"},
        "quiet_before": quiet,
        "quiet_after": quiet,
        "phases": {"install": 60.0, "messages": 600.0},
        "duration": 660.0,
        "setup": {
            "latency_count": 200,
            "warmup": 5,
            "burst_procs": 64,
            "burst_count": 50,
            "rss_sizes": sizes,
            "flood_procs": 64,
            "flood_size": 1024 * MIB,
            "cron_args": ["-FCronDaemon", "-i"],
            "sendmail": "/usr/sbin/sendmail",
            "shim_sendmail": "/usr/local/libexec/sendmail-shim/sendmail",
            "recorder_socket": "r.socket",
            "recorder_service": "r.service",
            "socket_after_install": "active",
        },
        "recorder_limits": {"recorder_max_connections": 16, "max_message_bytes": 8 * MIB},
        "latency": {
            REC: latency(
                2.0, 1.5, caller_cpu=0.5, recorder_cpu=1.0, recorder_pid=321, check=check(expected=200)
            ),
            EXE: latency(
                17.0,
                15.7,
                caller_cpu=15.7,
                recorder_cpu=0.0,
                recorder_pid=0,
                check=check(expected=200, entry="exec"),
            ),
            "exim4": latency(11.5, 8.2),
            "postfix": latency(10.2, 9.6),
            "nullmailer": latency(6.0, 5.6),
            "/bin/true": latency(0.8, 0.7),
            "python3 -I -S -c pass": latency(9.2, 9.2),
        },
        "burst": {
            REC: burst(4.0, 0.5, 1.2),
            EXE: burst(26.0, 15.0),
            "exim4": burst(290.0),
            "postfix": burst(18.0),
            "nullmailer": burst(8.0),
            "/bin/true": burst(2.0),
        },
        "burst_check": {"recorder": check(), "exec": check(entry="exec")},
        "rss": {path: {str(size): one_message(49 * 1024) for size in sizes} for path in doc.PATHS},
        "flood": {
            "recorder": flood(600 * 1024, "recorder", idle_kib=20 * 1024),
            "exec": flood(50 * 1024, "exec"),
        },
        "recorder_profile": {
            "messages": 200,
            "summary": "threads profiled: 200; recorder exit: 0",
            "cprofile": ["ncalls tottime"],
        },
        "profile": {
            "interpreter_imports_ms": 3.3,
            "shim_imports_ms": 6.4,
            "shim_import_count": 26,
            "imports": [{"module": "os", "self_ms": 0.5, "cumulative_ms": 1.5}],
            "cprofile": ["ncalls tottime"],
        },
    }


def met(figures):
    return {goal: [ok for _, ok in cells] for goal, cells in doc.goals(figures)}


def test_each_goal_is_judged_for_each_path(figures):
    got = met(figures)
    assert got["p50 <= 0.5 x nullmailer's (issue 18)"] == [True, False]
    assert got["p50 <= 3 x the exec floor `/bin/true` (issue 18)"] == [True, False]
    assert got["burst msg/s >= 2 x nullmailer's (issue 18)"] == [True, False]
    cells = dict(doc.goals(figures))["burst msg/s >= 2 x nullmailer's (issue 18)"]
    assert cells[0][0] == "2.00 x (800 vs 400 msg/s; the senders' floor 1600)"
    assert got["CPU per message <= 2 ms (issue 18; latency run)"] == [True, False]
    assert got["p50 <= postfix p50 (issue 8)"] == [True, False]
    assert got["peak RSS for one 1 GiB message <= 64 MiB (issue 15)"] == [True, True]


def test_a_goal_just_reached_is_met_and_just_missed_is_not(figures):
    figures["latency"][REC]["p50"] = 3.0  # exactly 0.5 x nullmailer's 6.0
    assert met(figures)["p50 <= 0.5 x nullmailer's (issue 18)"][0] is True
    figures["latency"][REC]["p50"] = 3.01
    assert met(figures)["p50 <= 0.5 x nullmailer's (issue 18)"][0] is False
    figures["latency"][REC]["cpu"] = 2.01
    assert met(figures)["CPU per message <= 2 ms (issue 18; latency run)"][0] is False


def flood_goal(figures):
    return next(cells for goal, cells in doc.goals(figures) if goal.startswith("peak RSS, 64 x 1024 MiB"))


def test_the_recorders_bound_is_the_contracts_and_the_exec_paths_is_per_shim(figures):
    figures["flood"]["recorder"]["peak_kib"] = 1024 * 1024
    assert flood_goal(figures)[0] == ("1024.0 MiB, the recorder", True)
    figures["flood"]["recorder"]["peak_kib"] += 1
    assert flood_goal(figures)[0][1] is False
    # Each shim holds one message: the largest of them is what the per-message bound judges.
    assert flood_goal(figures)[1] == ("50.0 MiB the largest shim (3200.0 MiB summed)", True)
    figures["flood"]["exec"]["peak_kib"] = 64 * 1024 + 1
    assert flood_goal(figures)[1][1] is False


def test_a_failed_check_fails_its_goal_and_shows_in_the_doc(figures):
    figures["burst_check"]["recorder"] = check(ok=False)
    figures["flood"]["exec"]["check"]["ok"] = False
    got = met(figures)
    assert got["burst: every line strict JSON, every message once"] == [False, True]
    assert got["the same: every message in the log once, every line strict JSON"] == [True, False]
    assert f"- {REC}: 3300 lines, 0 not strict JSON, 3199/3200 messages present" in doc.render(figures)
    assert "**FAIL**" in doc.render(figures)
    assert "**FAIL**" in doc.render(figures)


def test_the_goal_table_has_both_paths_side_by_side(figures):
    text = doc.render(figures)
    row = next(line for line in text.splitlines() if line.startswith("| p50 <= 0.5 x nullmailer's"))
    assert row == (
        "| p50 <= 0.5 x nullmailer's (issue 18) | 0.33 x (2.00 ms vs 6.00 ms) | met "
        "| 2.83 x (17.0 ms vs 6.00 ms) | **not met** |"
    )


def test_messages_only_says_the_fleet_was_not_measured(figures):
    text = doc.render(figures)
    assert "Not measured in this run (`--messages-only`)" in text
    assert "converge goal" not in text


def test_a_busy_machine_is_said(figures):
    figures["quiet_after"] = {"load": [3.0, 2.0, 1.0], "other_containers": ["someone-else"]}
    assert "**The machine was not quiet for this run**" in doc.render(figures)


def test_the_doc_from_saved_figures_is_the_same(figures):
    saved = json.loads(json.dumps(copy.deepcopy(figures)))
    assert doc.render(saved) == doc.render(figures)


OWN_ENTRY = "every message recorded by this path's own entry point (latency, burst, messages at once)"


def test_messages_the_other_entry_recorded_fail_the_path(figures):
    assert met(figures)[OWN_ENTRY] == [True, True]
    # Three of the flood's messages went the exec path: the launcher waited 10 s for the recorder.
    figures["flood"]["recorder"]["check"]["entries"] = {"recorder": 61, "exec": 3}
    assert met(figures)[OWN_ENTRY] == [False, True]
    text = doc.render(figures)
    assert "On the recorder path 3 of the 64 messages were not recorded by the recorder" in text
    assert "written by exec 3, recorder 61: **pass**" in text
    cells = dict(doc.goals(figures))[OWN_ENTRY]
    assert cells[0] == ("latency 200/200, burst 3200/3200, at once 61/64", False)


def test_a_full_run_has_the_fleet_and_its_goals(figures):
    def ansible(seconds, changed, tasks=12):
        return {"seconds": seconds, "changed": changed, "tasks_run": tasks, "tasks_skipped": 25,
                "slowest": [["Install the package", seconds / 4]], "changed_tasks": []}  # fmt: skip

    figures.update(
        floor=ansible(4.8, 1, tasks=1),
        converge=ansible(18.9, 5),
        rerun=ansible(8.3, 0, tasks=8),
        fleet={**ansible(89.4, 50), "hosts": 10},
        podman_costs={"exec": 187.0, "cp": 158.0},
    )
    text = doc.render(figures)
    assert "| converge, one fresh host | 18.9 | 3.94 | 5 | 12 |" in text
    assert (
        "| re-run <= 1.0 x the floor, changed=0 | 1.73 x (8.3 s vs 4.8 s), changed=0 | **not met** |" in text
    )
    assert "Not measured in this run" not in text


def test_the_flood_cpu_is_per_gib_fed(figures):
    # 64 messages of 1 GiB, 128 CPU seconds in all: 2 s per GiB.
    row = next(line for line in doc.render(figures).splitlines() if line.startswith(f"| {EXE} | 50.0 |"))
    assert "| 64/64 | 90.0 | 2.00 | 0 MiB |" in row


def test_the_first_bad_line_is_quoted(figures):
    figures["flood"]["exec"]["check"].update(
        bad_lines=18, ok=False, bad_examples=["/var/log/x/mail.ndjson:6911: a blank line", "another"]
    )
    assert "18 not strict JSON (the first: `/var/log/x/mail.ndjson:6911: a blank line`), 64/64" in doc.render(
        figures
    )
