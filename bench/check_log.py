# SPDX-License-Identifier: MIT
"""The burst checker: every line of the log is strict JSON, every message is present exactly once.

  check_log.py --token T --procs P --count N [--entry-field DOTTED] LOG...

Copied into the shim container and run there by root (the log is not world-readable). A message is
known by its token `T-<worker>-<i>` wherever it appears in the record (subject, body, raw message): the
checker does not depend on the record's field names, only on one record per line. With --entry-field
(the record's field that names the entry point that wrote it, given by the bench from the schema) it also
counts the token's records by that field's value. Prints a JSON summary and exits 1 when a line is bad
or a message is missing or duplicated.
"""

import argparse
import json
import re
import sys


class BadLine(ValueError):
    pass


def _reject_constant(name):
    raise BadLine(f"non-standard JSON constant {name}")


def _no_duplicate_keys(pairs):
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise BadLine("duplicate key in an object")
    return dict(pairs)


def parse_line(raw):
    """The record of one raw line (bytes with its newline), or BadLine: what a strict reader accepts."""
    if not raw.endswith(b"\n"):
        raise BadLine("no newline at the end (a partial record)")
    try:
        text = raw[:-1].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadLine(f"not UTF-8: {exc}") from None
    if not text.strip():
        raise BadLine("a blank line")
    try:
        record = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise BadLine(f"not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise BadLine("not a JSON object")
    return record, text


def field(record, dotted):
    """A dotted field of a record, nested (as the shim writes it) or flat; None when absent."""
    if dotted in record:
        return record[dotted]
    for part in dotted.split("."):
        if not isinstance(record, dict) or part not in record:
            return None
        record = record[part]
    return record


def check(paths, token, procs, count, entry_field=None):
    pattern = re.compile(re.escape(token) + r"-(\d+)-(\d+)\b")
    seen = {}
    bad = []
    lines = 0
    entries = {}
    for path in paths:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, 1):
                lines += 1
                try:
                    record, text = parse_line(raw)
                except BadLine as exc:
                    bad.append(f"{path}:{number}: {exc}")
                    continue
                found = set(pattern.findall(text))
                for key in found:
                    seen.setdefault(key, []).append(f"{path}:{number}")
                if found and entry_field:
                    entry = str(field(record, entry_field))
                    entries[entry] = entries.get(entry, 0) + 1
    expected = {(str(w), str(i)) for w in range(procs) for i in range(count)}
    missing = sorted(expected - set(seen))
    duplicated = sorted(key for key, where in seen.items() if len(where) > 1)
    return {
        "lines": lines,
        "bad_lines": len(bad),
        "bad_examples": bad[:5],
        "expected": len(expected),
        "present": len(expected & set(seen)),
        "missing": len(missing),
        "missing_examples": ["-".join((token, *key)) for key in missing[:5]],
        "duplicated": len(duplicated),
        "duplicated_examples": ["-".join((token, *key)) for key in duplicated[:5]],
        "entries": entries,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--token", required=True)
    parser.add_argument("--procs", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--entry-field")
    parser.add_argument("logs", nargs="+")
    args = parser.parse_args()
    summary = check(args.logs, args.token, args.procs, args.count, args.entry_field)
    summary["ok"] = not (summary["bad_lines"] or summary["missing"] or summary["duplicated"])
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
