#!/usr/bin/env python3
"""Recover usage records from Envoy's access log: every line carries the
filter's whole usage record (`usage`), so records that a killed Envoy had not
shipped yet can be delivered afterwards. The control plane stores each
request id once, so running this over a log whose records all arrived
already changes nothing.

    tools/recover_usage.py ACCESS_LOG [...] --control-plane http://127.0.0.1:8081 \\
        --filter-secret "$TOLLGATE_FILTER_SECRET"

Prints how many records were read, stored and already there."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request

BATCH = 500


def records_in(path: str) -> list[dict]:
    out = []
    with open(path, "rb") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut by the kill
            usage = entry.get("usage")
            if isinstance(usage, str):
                try:
                    usage = json.loads(usage)
                except ValueError:
                    continue
            if isinstance(usage, dict) and usage.get("request_id"):
                out.append(usage)
    return out


def post(url: str, secret: str, records: list[dict]) -> dict:
    req = urllib.request.Request(f"{url}/internal/usage", data=json.dumps({"records": records}).encode(),
                                 method="POST", headers={"content-type": "application/json",
                                                         "x-tollgate-filter-secret": secret})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def recover(paths: list[str], url: str, secret: str) -> dict:
    records = [r for p in paths for r in records_in(p)]
    totals = {"read": len(records), "accepted": 0, "duplicates": 0}
    for i in range(0, len(records), BATCH):
        answer = post(url, secret, records[i:i + BATCH])
        totals["accepted"] += int(answer.get("accepted", 0))
        totals["duplicates"] += int(answer.get("duplicates", 0))
    return totals


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--control-plane", default="http://127.0.0.1:8081")
    ap.add_argument("--filter-secret", required=True)
    args = ap.parse_args()
    totals = recover(args.logs, args.control_plane.rstrip("/"), args.filter_secret)
    print(f"read {totals['read']} records: {totals['accepted']} stored, {totals['duplicates']} already there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
