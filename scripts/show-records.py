#!/usr/bin/env python3
"""Prints sendmail-shim log records (JSON lines on stdin) the way a person reads mail: who sent it,
through which program, to whom, the subject and the first lines of the body."""

import argparse
import json
import sys


def body_lines(message, count):
    _, _, body = message.replace("\r\n", "\n").partition("\n\n")
    return [line for line in body.splitlines() if line.strip()][:count]


def show(record, host):
    email, user, parent = record.get("email", {}), record.get("user", {}), record["process"]["parent"]
    print(f"--- {host}  {record['@timestamp']}  event.id={record['event']['id']}")
    print(f"    sent by   {user.get('name')} (uid {user.get('id')}) via {parent.get('name')}")
    print(f"    argv      {' '.join(record['process']['args'])}")
    print(f"    to        {', '.join(record['sendmail_shim']['envelope']['recipients']) or '(none)'}")
    print(f"    subject   {email.get('subject', '')}")
    for line in body_lines(record.get("message", ""), 3):
        print(f"    | {line[:110]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="")
    parser.add_argument("--grep", action="append", default=[], help="show only records containing this")
    args = parser.parse_args()
    for line in sys.stdin:
        record = json.loads(line)
        if not args.grep or any(needle in record.get("message", "") for needle in args.grep):
            show(record, args.host)


if __name__ == "__main__":
    main()
