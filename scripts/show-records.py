#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Prints sendmail-shim log records (JSON lines on stdin, ecs or classic) the way a person reads mail: who
sent it, through which program, to whom, the subject and kind, and the first lines of the body."""

import argparse
import pathlib
import sys

# The record schema lives with the shim; this script runs from the checkout.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "files"))

from sendmail_shim import schema


def body_lines(message, count):
    _, _, body = message.replace("\r\n", "\n").partition("\n\n")
    return [line for line in body.splitlines() if line.strip()][:count]


def show(view, host):
    kind_id, kind_template = view.kind
    print(f"--- {host or view.host}  {view.timestamp}  event.id={view.event_id or '-'}")
    print(f"    sent by   {view.user} (uid {view.user_id}) via {view.parent or '-'}")
    print(f"    argv      {' '.join(view.args or [])}")
    print(f"    to        {', '.join(view.recipients or []) or '(none)'}")
    print(f"    subject   {view.subject or ''}")
    print(f"    kind      {kind_id}  {kind_template}")
    for line in body_lines(view.message or "", 3):
        print(f"    | {line[:110]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="", help="host name to show (classic records carry none)")
    parser.add_argument("--grep", action="append", default=[], help="show only records containing this")
    args = parser.parse_args()
    for number, line in enumerate(sys.stdin, 1):
        try:
            view = schema.parse(line, args.host or None)
        except schema.SchemaError as exc:
            print(f"--- line {number}: not a record: {exc}")
            continue
        if not args.grep or any(needle in (view.message or "") for needle in args.grep):
            show(view, args.host)


if __name__ == "__main__":
    main()
