# SPDX-License-Identifier: MIT
"""The fleet report: the `report --json` documents of many hosts merged into one table by kind.

The shim's `sendmail-shim report --fleet` and the collection's fleet_table filter (playbooks/report.yml,
on the controller) both run this file: stdlib-only and importing nothing of the shim, it is also the
collection's module_utils/sendmail_shim_fleet.py (a link here; the built collection holds the file).
"""

import json

# Lines that could not be parsed are counted; this many are named.
NAMED_PROBLEMS = 20
OTHER = "other"


def cell(value, width):
    """The value as text, cut to width with a ~ where it was longer."""
    text = "-" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "~"


def fleet(docs, top=None):
    """One fleet table from the --json reports of many hosts ({host: report or its text}), by kind.

    Each row: count, kind, kind_template, example_subject, first/last seen, and the hosts, users and
    parent processes behind it with their counts, largest first. The hosts' reports must be by kind.
    """
    kinds = {}
    totals = {"records": 0, "other": 0, "excluded": 0, "unparsable": 0}
    unparsable = []
    for host, doc in sorted(docs.items()):
        if isinstance(doc, str):
            doc = json.loads(doc)  # noqa: PLW2901 - a host's --json output as it printed it
        for name in ("records", "excluded"):
            totals[name] += doc.get(name, 0)
        totals["other"] += doc.get("other", {}).get("count", 0)
        totals["unparsable"] += doc.get("unparsable", {}).get("count", 0)
        unparsable += [f"{host}: {where}" for where in doc.get("unparsable", {}).get("named", [])]
        for row in doc.get("rows", []):
            merged = kinds.setdefault(
                row["kind"],
                {
                    "kind": row["kind"],
                    "kind_template": row.get("kind_template"),
                    "example_subject": row.get("example_subject"),
                    "count": 0,
                    "first_seen": row["first_seen"],
                    "last_seen": row["last_seen"],
                    "hosts": {},
                    "users": {},
                    "parents": {},
                },
            )
            merged["count"] += row["count"]
            merged["first_seen"] = min(merged["first_seen"], row["first_seen"])
            merged["last_seen"] = max(merged["last_seen"], row["last_seen"])
            for key, field in (("hosts", host), ("users", row.get("user")), ("parents", row.get("parent"))):
                label = "-" if field is None else str(field)
                merged[key][label] = merged[key].get(label, 0) + row["count"]
    rows = sorted(kinds.values(), key=lambda row: (-row["count"], row["kind"]))
    for row in rows:
        for key in ("hosts", "users", "parents"):
            row[key] = [
                {"name": k, "count": v} for k, v in sorted(row[key].items(), key=lambda kv: (-kv[1], kv[0]))
            ]
    shown, rest = (rows[:top], rows[top:]) if top else (rows, [])
    totals["other"] += sum(row["count"] for row in rest)
    return {"rows": shown, "hosts": len(docs), **totals, "unparsable_named": unparsable[:NAMED_PROBLEMS]}


def _counted(entries, limit=3):
    names = [f"{entry['name']} ({entry['count']})" for entry in entries[:limit]]
    if len(entries) > limit:
        names.append(f"+{len(entries) - limit} more")
    return ", ".join(names)


def fleet_table(merged, out):
    out.write(f"{'count':>8}  {'kind':<12}  {'template':<44}  hosts; users; parent processes\n")
    for row in merged["rows"]:
        who = "; ".join(_counted(row[key]) for key in ("hosts", "users", "parents"))
        out.write(f"{row['count']:>8}  {row['kind']:<12}  {cell(row['kind_template'], 44):<44}  {who}\n")
    if merged["other"]:
        out.write(f"{merged['other']:>8}  {OTHER}\n")
    out.write(f"{merged['records']:>8}  records on {merged['hosts']} hosts")
    if merged["excluded"]:
        out.write(f" ({merged['excluded']} more excluded)")
    out.write("\n")
    if merged["unparsable"]:
        named = ", ".join(merged["unparsable_named"][:5])
        out.write(f"{merged['unparsable']:>8}  unparsable lines, not counted: {named}\n")
