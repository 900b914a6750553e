#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Bench of `sendmail-shim report`: records per second and peak RSS on a 1 GiB log.

Writes a log of realistic records (a real record of the shim, varied: hosts, users, cron jobs, sudo
alerts, unique subjects for the many-groups case) into a temporary directory, then runs the report as
the admin command does (`python3 -I -S .../admin.py report`) on it, once per case, and prints a table.
"""

import argparse
import copy
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
ADMIN = ROOT / "files" / "sendmail_shim" / "admin.py"
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
BODY = "".join(f"backup step {i}: 1234 files, 56789 bytes, ok\n" for i in range(20))


def sample_record(workdir):
    """One record as the shim writes it, from the checkout."""
    log = workdir / "sample.ndjson"
    conf = workdir / "shim.conf"
    conf.write_text(f"log_path = {log}\n")
    env = dict(os.environ, SENDMAIL_SHIM_CONFIG=str(conf), PYTHONPATH=str(ROOT / "files"))
    message = f"From: root\nTo: root\nSubject: Cron <root@web01> /usr/local/bin/backup.sh\n\n{BODY}".encode()
    subprocess.run([PYTHON, "-m", "sendmail_shim", "-i", "root"], input=message, env=env, check=True)
    return json.loads(log.read_text())


def subject_of(number, unique):
    if unique:
        return f"Report {number:x} {number * 7919 % 100003:x}zz"
    return (
        f"Cron <root@web{number % 50:02d}> /usr/local/bin/backup.sh",
        f"*** SECURITY information for web{number % 50:02d} ***",
        f"Job {number} failed at 2026-11-29 20:{number % 60:02d}",
    )[number % 3]


def write_log(path, size, sample, unique):
    """Writes records until the file holds `size` bytes; returns how many."""
    count = 0
    written = 0
    with path.open("w", encoding="utf-8") as stream:
        while written < size:
            record = copy.deepcopy(sample)
            subject = subject_of(count, unique)
            record["@timestamp"] = f"2026-11-{1 + count % 28:02d}T{count % 24:02d}:00:00.000000Z"
            record["event"]["id"] = record["email"]["local_id"] = f"{count:032x}"
            record["host"]["hostname"] = f"web{count % 50:02d}"
            record["user"]["name"] = ("root", "www-data", "backup", "alice")[count % 4]
            record["email"]["subject"] = subject
            # Records of older versions carry no kind: the report computes it, the slower path.
            del record["sendmail_shim"]["kind"]
            record["message"] = f"Subject: {subject}\n\n{BODY}"
            line = json.dumps(record, separators=(",", ":")) + "\n"
            stream.write(line)
            written += len(line)
            count += 1
    return count


def run_report(log, *options):
    """(the report's JSON, seconds, CPU seconds, peak RSS in MiB) of one run."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            [PYTHON, "-I", "-S", str(ADMIN), "report", "--json", *options, str(log)], stdout=out
        )
        # wait4 gives this child's own peak RSS (KiB on Linux).
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - start
        if process.returncode != 0:
            sys.exit(f"the report exited {process.returncode}")
        out.seek(0)
        # CPU time too: on a shared machine wall time measures the neighbours as much as the report.
        return json.load(out), seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024, help="log size (default 1024 MiB)")
    args = parser.parse_args()
    size = args.size_mib << 20
    rows = []
    with tempfile.TemporaryDirectory(prefix="sendmail-shim-report-bench-") as tmp:
        workdir = pathlib.Path(tmp)
        sample = sample_record(workdir)
        log = workdir / "mail.ndjson"
        for unique, cases in (
            (
                False,
                [
                    (["--by", "kind"], "12 kinds (3 subjects x 4 users), by kind"),
                    (["--by", "host,user,parent,kind"], "the same by host,user,parent,kind: 600 groups"),
                ],
            ),
            (True, [(["--by", "kind", "--max-groups", "10000"], "every subject unique, --max-groups 10000")]),
        ):
            count = write_log(log, size, sample, unique)
            for options, case in cases:
                result, seconds, cpu, peak = run_report(log, *options)
                if result["records"] != count:
                    sys.exit(f"{case}: the report counted {result['records']} records of {count}")
                rows.append((case, count, seconds, count / seconds, cpu, count / cpu, peak))
    load = os.getloadavg()[0]
    python = sys.version.split()[0]
    print(f"Python {python}, {os.cpu_count()} cores (load {load:.1f}), log of {args.size_mib} MiB\n")
    print("| case | records | seconds | records/s | CPU seconds | records per CPU second | peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for case, count, seconds, per_second, cpu, per_cpu_second, peak in rows:
        timing = f"{seconds:.1f} | {per_second:,.0f} | {cpu:.1f} | {per_cpu_second:,.0f}"
        print(f"| {case} | {count} | {timing} | {peak:.0f} |")


if __name__ == "__main__":
    main()
