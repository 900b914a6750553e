# SPDX-License-Identifier: MIT
"""sendmail-shim report: rotations, time window, grouping, JSON, bounded groups, bad lines, exclusions."""

import gzip
import io
import json
import os
import pathlib
import subprocess
import sys

import pytest
from records_support import classic, ecs
from sendmail_shim import kind, report

FILES = pathlib.Path(__file__).resolve().parents[2] / "files"


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    assert report.main([str(a) for a in argv], out=out, err=err) == 0
    return out.getvalue(), err.getvalue()


def run_json(*argv):
    out, _ = run("--json", *argv)
    return json.loads(out)


def write(path, lines):
    data = "".join(line + "\n" for line in lines).encode()
    if str(path).endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.fixture
def rotated(tmp_path):
    """mail.ndjson with `.1` and `.2.gz`, `.3.gz` rotations, one day each, oldest in .3.gz."""
    log = tmp_path / "mail.ndjson"
    write(tmp_path / "mail.ndjson.3.gz", [ecs("2026-11-26T10:00:00.000001Z", "Job 1 failed")])
    write(tmp_path / "mail.ndjson.2.gz", [ecs("2026-11-27T10:00:00Z", "Job 2 failed")] * 2)
    write(tmp_path / "mail.ndjson.1", [ecs("2026-11-28T10:00:00Z", "Disk 91% full", user="alice")] * 3)
    write(log, [ecs("2026-11-29T10:00:00Z", "Job 3 failed"), ecs("2026-11-29T11:00:00Z", "Disk 95% full")])
    (tmp_path / "mail.ndjson.old").write_text("not a rotation\n")
    return log


def test_rotations_are_found_oldest_first(rotated):
    names = [os.path.basename(p) for p in report.rotations(str(rotated))]
    assert names == ["mail.ndjson.3.gz", "mail.ndjson.2.gz", "mail.ndjson.1", "mail.ndjson"]


def test_default_log_is_the_configured_one_with_its_rotations(rotated, tmp_path, monkeypatch):
    conf = tmp_path / "shim.conf"
    conf.write_text(f"log_path = {rotated}\n")
    monkeypatch.setenv("SENDMAIL_SHIM_CONFIG", str(conf))
    result = run_json()
    assert result["records"] == 8
    # The disk mails of alice and of root are two kinds: the kind includes the user.
    assert [(row["example_subject"], row["count"]) for row in result["rows"]] == [
        ("Job 1 failed", 4),
        ("Disk 91% full", 3),
        ("Disk 95% full", 1),
    ]
    jobs = result["rows"][0]
    assert jobs["kind_template"] == "Job <n> failed"
    assert (jobs["first_seen"], jobs["last_seen"]) == ("2026-11-26T10:00:00", "2026-11-29T10:00:00")
    assert jobs["example_subject"] == "Job 1 failed"
    assert jobs["kind"] == kind.kind_id("root", "cron", "Job <n> failed")


def test_since_and_until_bound_the_window(rotated):
    files = report.rotations(str(rotated))
    assert run_json("--since", "2026-11-27", "--until", "2026-11-29", *files)["records"] == 5
    assert run_json("--since", "2026-11-29T10:30", *files)["records"] == 1
    assert run_json("--until", "2026-11-26T10:00:00", *files)["records"] == 0
    assert run_json("--since", "2026-11-26T10:00:00Z", *files)["records"] == 8


def test_since_takes_an_age():
    assert report.moment("2h", now=86400 * 2) == "1970-01-02T22:00:00"
    assert report.moment("7d", now=86400 * 8) == "1970-01-02T00:00:00"
    with pytest.raises(Exception, match="not a UTC date"):
        report.moment("yesterday")


def test_by_host_user_parent_kind(tmp_path):
    log = write(
        tmp_path / "log",
        [
            ecs("2026-11-29T10:00:00Z", "Job 1 failed", host="a", user="root", parent="cron"),
            ecs("2026-11-29T10:00:01Z", "Job 2 failed", host="a", user="root", parent="cron"),
            ecs("2026-11-29T10:00:02Z", "Job 3 failed", host="b", user="root", parent="cron"),
            ecs("2026-11-29T10:00:03Z", "Oops", host="b", user="bob", parent="sudo"),
        ],
    )
    by_host = run_json("--by", "host", log)["rows"]
    assert [(r["host"], r["count"]) for r in by_host] == [("a", 2), ("b", 2)]
    assert "kind" not in by_host[0]
    rows = run_json("--by", "user,parent", log)["rows"]
    assert [(r["user"], r["parent"], r["count"]) for r in rows] == [("root", "cron", 3), ("bob", "sudo", 1)]
    rows = run_json("--by", "host,kind", log)["rows"]
    assert [(r["host"], r["kind_template"], r["count"]) for r in rows] == [
        ("a", "Job <n> failed", 2),
        ("b", "Job <n> failed", 1),
        ("b", "Oops", 1),
    ]


def test_table_is_sorted_by_count_with_first_last_and_example(tmp_path):
    log = write(
        tmp_path / "log",
        [ecs("2026-11-29T10:00:00Z", "Once")]
        + [ecs(f"2026-11-29T1{i}:00:00Z", f"Job {i} failed") for i in range(3)],
    )
    out, err = run("--by", "user,kind", log)
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["count", "first", "seen", "last", "seen"]
    first = lines[1].split()
    assert first[:4] == ["3", "2026-11-29T10:00:00", "2026-11-29T12:00:00", "root"]
    assert lines[1].endswith("Job 0 failed")
    assert lines[2].split()[0] == "1" and lines[2].endswith("Once")
    assert lines[-1].split() == ["4", "records"]
    assert err == ""


def test_unparsable_lines_are_counted_and_named_and_the_report_goes_on(tmp_path):
    log = write(tmp_path / "mail.ndjson", [ecs("2026-11-29T10:00:00Z", "A"), "garbage", '{"x": 1}', ""])
    broken = tmp_path / "mail.ndjson.2.gz"
    broken.write_bytes(b"not gzip at all")
    result = run_json(broken, log)
    assert result["records"] == 1
    assert result["unparsable"]["count"] == 3
    named = result["unparsable"]["named"]
    assert named[0].startswith("mail.ndjson.2.gz: cannot read on")
    assert named[1].startswith("mail.ndjson:2: not JSON")
    assert named[2].startswith("mail.ndjson:3: neither an ecs record")
    _, err = run(log)
    assert "2 unparsable lines" in err and "mail.ndjson:2" in err


def test_named_problems_are_bounded(tmp_path):
    log = write(tmp_path / "log", ["bad"] * 100)
    result = run_json(log)
    assert result["unparsable"]["count"] == 100
    assert len(result["unparsable"]["named"]) == report.NAMED_PROBLEMS


def test_max_groups_folds_the_smallest_into_other_and_keeps_the_total(tmp_path):
    lines = [ecs("2026-11-29T10:00:00Z", "Big")] * 50
    lines += [
        ecs(f"2026-11-29T11:00:{i % 60:02d}Z", f"Rare {chr(65 + i % 26)}{chr(65 + i // 26)}")
        for i in range(200)
    ]
    lines += [ecs("2026-11-29T12:00:00Z", "Big")] * 10
    log = write(tmp_path / "log", lines)
    result = run_json("--max-groups", "8", log)
    rows = result["rows"]
    assert len(rows) <= 8
    assert rows[0]["example_subject"] == "Big" and rows[0]["count"] == 60
    assert sum(r["count"] for r in rows) + result["other"]["count"] == result["records"] == 260
    assert result["other"]["count"] >= 200 - 7
    assert result["other"]["first_seen"] == "2026-11-29T11:00:00"
    out, _ = run("--max-groups", "8", log)
    assert f"{result['other']['count'] + sum(r['count'] for r in rows[1:])}" not in out.splitlines()[1]
    assert out.splitlines()[-2].split() == [str(result["other"]["count"]), "other"]


def test_top_prints_the_rest_as_other(tmp_path):
    log = write(tmp_path / "log", [ecs("2026-11-29T10:00:00Z", s) for s in ["A", "A", "B", "C"]])
    out, _ = run("--top", "1", log)
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["2", "2", "4"]
    assert out.splitlines()[2].split() == ["2", "other"]


def test_exclude_by_kind_id_or_template(tmp_path):
    log = write(
        tmp_path / "log",
        [ecs("2026-11-29T10:00:00Z", f"Job {i} failed") for i in range(3)]
        + [ecs("2026-11-29T10:00:00Z", "Keep")],
    )
    job = kind.kind_id("root", "cron", "Job <n> failed")
    for exclude in (job, "Job <n> failed"):
        result = run_json("--exclude", exclude, log)
        assert [r["example_subject"] for r in result["rows"]] == ["Keep"]
        assert (result["records"], result["excluded"]) == (1, 3)
    out, _ = run("--by", "host", "--exclude", job, log)
    assert out.splitlines()[-1].split() == ["1", "records", "(3", "more", "excluded)"]


def test_classic_and_ecs_records_in_one_report(tmp_path):
    log = write(
        tmp_path / "log",
        [
            classic("2026-11-29T10:00:00Z", "Job 1 failed"),
            ecs("2026-11-29T10:00:01Z", "Job 2 failed", user="alice"),
        ],
    )
    # Equal counts, and a key that is None for the classic record (no parent): ordered all the same.
    by_parent = run_json("--by", "parent,kind", log)["rows"]
    assert [row["parent"] for row in by_parent] == [None, "cron"]
    out, _ = run("--by", "host,user,parent,kind", log)
    assert out.splitlines()[-1].split() == ["2", "records"]
    rows = run_json("--by", "host,user", "--host", "old01", log)["rows"]
    assert sorted((r["host"], r["user"], r["count"]) for r in rows) == [
        ("old01", "alice", 1),
        ("web01", "alice", 1),
    ]


def test_records_with_their_own_kind_keep_it(tmp_path):
    log = write(tmp_path / "log", [ecs("2026-11-29T10:00:00Z", "Job 1", kind_id="feedfacecafe")])
    assert run_json(log)["rows"][0]["kind"] == "feedfacecafe"


@pytest.mark.parametrize(
    "bad", [["--by", "colour"], ["--by", ","], ["--max-groups", "1"], ["--since", "soon"]]
)
def test_bad_options_are_usage_errors(bad):
    with pytest.raises(SystemExit) as exc:
        report.main(bad, out=io.StringIO(), err=io.StringIO())
    assert exc.value.code == 2


@pytest.mark.parametrize("how", ["path", "module"])
def test_admin_command_runs_by_path_and_as_module(tmp_path, how):
    log = write(tmp_path / "log", [ecs("2026-11-29T10:00:00Z", "Job 1 failed")])
    if how == "path":
        argv = [sys.executable, "-I", "-S", str(FILES / "sendmail_shim" / "admin.py")]
        env = {}
    else:
        argv = [sys.executable, "-m", "sendmail_shim.admin"]
        env = dict(os.environ, PYTHONPATH=str(FILES))
    done = subprocess.run(
        [*argv, "report", "--json", str(log)], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(done.stdout)["rows"][0]["count"] == 1
    usage = subprocess.run([*argv], capture_output=True, text=True, env=env)
    assert usage.returncode == 64 and "report" in usage.stderr
    wrong = subprocess.run([*argv, "repotr"], capture_output=True, text=True, env=env)
    assert wrong.returncode == 64 and "unknown command 'repotr'" in wrong.stderr


def test_fleet_merges_host_reports_by_kind(tmp_path):
    web = write(
        tmp_path / "web", [ecs("2026-11-29T10:00:00Z", f"Job {i} failed") for i in range(3)] + ["bad"]
    )
    db = write(
        tmp_path / "db",
        [ecs("2026-11-28T10:00:00Z", "Job 9 failed", user="alice")] * 2
        + [ecs("2026-11-30T10:00:00Z", "Job 1 failed")],
    )
    docs = {
        "web01": run_json("--by", "host,user,parent,kind", web),
        "db01": json.dumps(run_json("--by", "user,kind", db)),
    }
    merged = report.fleet(docs)
    root_job = kind.kind_id("root", "cron", "Job <n> failed")
    assert [(row["kind"], row["count"]) for row in merged["rows"]] == [
        (root_job, 4),
        (kind.kind_id("alice", "cron", "Job <n> failed"), 2),
    ]
    first = merged["rows"][0]
    assert first["hosts"] == [{"name": "web01", "count": 3}, {"name": "db01", "count": 1}]
    assert first["users"] == [{"name": "root", "count": 4}]
    # db01 reported without parents: its share is "-".
    assert first["parents"] == [{"name": "cron", "count": 3}, {"name": "-", "count": 1}]
    assert (first["first_seen"], first["last_seen"]) == ("2026-11-29T10:00:00", "2026-11-30T10:00:00")
    assert (merged["records"], merged["hosts"], merged["unparsable"]) == (6, 2, 1)
    assert merged["unparsable_named"][0].startswith("web01: web:4: not JSON")
    top = report.fleet(docs, top=1)
    assert [row["count"] for row in top["rows"]] == [4] and top["other"] == 2
