# SPDX-License-Identifier: MIT
"""`sendmail-shim report`: mail volume by host, user, parent process and kind, from the log and its rotations.

Memory stays bounded whatever the log: lines are streamed, at most --max-groups groups are kept (when
full, the smaller half is folded into "other", so the total is always exact), and only the first few
unparsable lines are named.
"""

import argparse
import gzip
import json
import os
import sys
import time

from sendmail_shim import config, schema
from sendmail_shim.fleet import NAMED_PROBLEMS, OTHER, cell, fleet, fleet_table

KEYS = ("host", "user", "parent", "kind")
_UNITS = {"m": 60, "h": 3600, "d": 86400}


def rotations(log):
    """The log and its rotations (`.1`, `.2.gz`, ...), oldest first, those that exist."""
    directory, base = os.path.split(log)
    numbered = []
    try:
        names = os.listdir(directory or ".")
    except OSError:
        names = []
    for name in names:
        if not name.startswith(base + "."):
            continue
        suffix = name[len(base) + 1 :]
        number = suffix[:-3] if suffix.endswith(".gz") else suffix
        if number.isdigit():
            numbered.append((int(number), os.path.join(directory, name)))
    found = [path for _, path in sorted(numbered, reverse=True)]
    if os.path.exists(log):
        found.append(log)
    return found


def read_lines(path):
    """(line number, bytes) of a plain or gzip-compressed file."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as stream:
        yield from enumerate(stream, 1)


def moment(text, now=None):
    """An option's time as the record's `YYYY-MM-DDTHH:MM:SS` (UTC), for comparison as text.

    Takes an ISO date or date and time (UTC), or an age such as `90m`, `24h`, `7d`.
    """
    text = text.strip()
    if text[:-1].isdigit() and text[-1:] in _UNITS:
        seconds = (time.time() if now is None else now) - int(text[:-1]) * _UNITS[text[-1]]
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    stamp = text.rstrip("Z").replace(" ", "T")
    for layout in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return time.strftime("%Y-%m-%dT%H:%M:%S", time.strptime(stamp, layout))
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(f"not a UTC date/time or an age (90m, 24h, 7d): {text!r}")


class Group:
    __slots__ = ("count", "example", "first", "kind_template", "last")

    def __init__(self, stamp, example, kind_template):
        self.count = 0
        self.first = stamp
        self.last = stamp
        self.example = example
        self.kind_template = kind_template

    def add(self, stamp, count=1):
        self.count += count
        self.first = min(self.first, stamp)
        self.last = max(self.last, stamp)


class Report:
    """Counts records by the chosen keys within bounded memory."""

    def __init__(self, by, *, max_groups, since=None, until=None, exclude=(), host=None):
        self.by = tuple(by)
        self.max_groups = max_groups
        self.since, self.until = since, until
        self.exclude = set(exclude)
        self.host = host
        self.groups = {}
        self.other = None
        self.records = 0
        self.excluded = 0
        self.unparsable = 0
        self.problems = []
        self.files = []

    def _key(self, view):
        values = {"host": view.host, "user": view.user, "parent": view.parent}
        return tuple(values[key] if key != "kind" else view.kind[0] for key in self.by)

    def add_view(self, view):
        stamp = view.timestamp[:19]
        if (self.since and stamp < self.since) or (self.until and stamp >= self.until):
            return
        needs_kind = "kind" in self.by or self.exclude
        kind_id, kind_template = view.kind if needs_kind else (None, None)
        if kind_id in self.exclude or kind_template in self.exclude:
            self.excluded += 1
            return
        self.records += 1
        key = self._key(view)
        group = self.groups.get(key)
        if group is None:
            if len(self.groups) >= self.max_groups:
                self._fold()
            group = self.groups[key] = Group(stamp, view.subject, kind_template)
        group.add(stamp)

    def _fold(self):
        """Folds the smaller half of the groups into "other" (ties: the oldest last seen go first)."""
        ranked = sorted(self.groups.items(), key=lambda item: (item[1].count, item[1].last))
        for key, group in ranked[: max(1, len(ranked) // 2)]:
            del self.groups[key]
            if self.other is None:
                self.other = Group(group.first, None, None)
            self.other.add(group.first, group.count)
            self.other.add(group.last, 0)

    def problem(self, where, reason):
        self.unparsable += 1
        if len(self.problems) < NAMED_PROBLEMS:
            self.problems.append(f"{where}: {reason}")

    def read(self, path):
        self.files.append(path)
        name = os.path.basename(path)
        try:
            for number, line in read_lines(path):
                if not line.strip():
                    continue
                try:
                    view = schema.parse(line, self.host)
                except schema.SchemaError as exc:
                    self.problem(f"{name}:{number}", exc)
                    continue
                self.add_view(view)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            # A truncated or unreadable rotation costs its remainder, not the report.
            self.problem(name, f"cannot read on: {exc}")

    def rows(self):
        """The groups, largest first, as dicts with count, first_seen, last_seen, example_subject."""
        rows = []
        # Ties in count are ordered by key; a key may hold None (a classic record has no parent).
        ordered = sorted(
            self.groups.items(), key=lambda item: (-item[1].count, [str(v or "") for v in item[0]])
        )
        for key, group in ordered:
            row = dict(zip(self.by, key))
            if "kind" in self.by:
                row["kind_template"] = group.kind_template
            row.update(
                count=group.count,
                first_seen=group.first,
                last_seen=group.last,
                example_subject=group.example,
            )
            rows.append(row)
        return rows

    def to_json(self):
        other = self.other
        return {
            "by": list(self.by),
            "rows": self.rows(),
            "other": {"count": other.count, "first_seen": other.first, "last_seen": other.last}
            if other
            else {"count": 0},
            "records": self.records,
            "excluded": self.excluded,
            "unparsable": {"count": self.unparsable, "named": self.problems},
            "files": self.files,
        }


def table(report, out, *, top=None):
    rows = report.rows()
    shown = rows[:top] if top else rows
    widths = {"host": 20, "user": 14, "parent": 16, "kind": 12}
    out.write("  ".join([f"{'count':>8}", f"{'first seen':<19}", f"{'last seen':<19}"]))
    for key in report.by:
        out.write(f"  {key:<{widths[key]}}")
    out.write("  example subject\n")
    for row in shown:
        cells = [f"{row['count']:>8}", f"{row['first_seen']:<19}", f"{row['last_seen']:<19}"]
        cells += [f"{cell(row[key], widths[key]):<{widths[key]}}" for key in report.by]
        cells.append(cell(row["example_subject"], 80))
        out.write("  ".join(cells) + "\n")
    hidden = sum(row["count"] for row in rows[len(shown) :])
    if report.other or hidden:
        other = (report.other.count if report.other else 0) + hidden
        out.write(f"{other:>8}  {OTHER}\n")
    out.write(f"{report.records:>8}  records")
    if report.excluded:
        out.write(f" ({report.excluded} more excluded)")
    out.write("\n")


def arguments(argv):
    parser = argparse.ArgumentParser(prog="sendmail-shim report", description=__doc__.splitlines()[0])
    parser.add_argument(
        "files", nargs="*", help="logs to read (default: the configured log and its rotations)"
    )
    parser.add_argument(
        "--since", type=moment, help="UTC date/time (2026-11-29, 2026-11-29T20:00) or age (24h)"
    )
    parser.add_argument("--until", type=moment, help="the same; records before it")
    parser.add_argument(
        "--by", default="kind", help=f"comma-separated keys among {','.join(KEYS)} (default kind)"
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON document with the rows, each with count"
    )
    parser.add_argument("--max-groups", type=int, default=10000, help="groups kept in memory (rest: other)")
    parser.add_argument("--top", type=int, help="rows printed in the table (the rest: other)")
    parser.add_argument("--exclude", action="append", default=[], metavar="KIND", help="kind id or template")
    parser.add_argument("--host", help="host name for classic records, which carry none (default: this host)")
    parser.add_argument(
        "--fleet",
        metavar="FILE",
        help="merge the --json reports of many hosts (a JSON object host -> report or its text; - for stdin)",
    )
    args = parser.parse_args(argv)
    by = [key.strip() for key in args.by.split(",") if key.strip()]
    unknown = [key for key in by if key not in KEYS]
    if unknown or not by:
        parser.error(f"--by takes keys among {', '.join(KEYS)}, not {', '.join(unknown) or 'nothing'}")
    args.by = list(dict.fromkeys(by))
    if args.max_groups < 2:
        parser.error("--max-groups must be at least 2")
    return args


def main(argv, out=sys.stdout, err=sys.stderr):
    args = arguments(argv)
    if args.fleet:
        with open(0 if args.fleet == "-" else args.fleet, encoding="utf-8") as stream:
            merged = fleet(json.load(stream), top=args.top)
        if args.json:
            json.dump(merged, out)
            out.write("\n")
        else:
            fleet_table(merged, out)
        return 0
    files = args.files
    if not files:
        cfg, problems = config.from_environ(os.environ)
        for problem in problems:
            err.write(f"sendmail-shim report: {problem}\n")
        files = rotations(cfg.log_path)
        if not files:
            err.write(f"sendmail-shim report: no log at {cfg.log_path}\n")
    report = Report(
        args.by,
        max_groups=args.max_groups,
        since=args.since,
        until=args.until,
        exclude=args.exclude,
        host=args.host or os.uname().nodename,
    )
    for path in files:
        report.read(path)
    if args.json:
        json.dump(report.to_json(), out)
        out.write("\n")
    else:
        table(report, out, top=args.top)
        if report.unparsable:
            err.write(f"sendmail-shim report: {report.unparsable} unparsable lines, not counted:\n")
            for problem in report.problems:
                err.write(f"  {problem}\n")
    return 0
