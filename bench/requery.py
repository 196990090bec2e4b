"""The usage summaries again, over the SQLite database a `run.py
--usage-only --keep` run filled: each control plane binary in turn, for
several rounds, and the median of every query per binary. (One run moves 2x
with the machine's load, and the build that answers second finds the pages
the first one read in the cache: alternating evens that out.)

    .venv/bin/python bench/requery.py /tmp/tollgate-bench-XXXX/usage-sqlite \
        --binary before=/tmp/cp-old --binary after=bench/.target/release/tollgate-control-plane \
        --records 10000000 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import run


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("work_dir", type=Path, help="the kept usage-sqlite work directory")
    ap.add_argument("--binary", action="append", required=True,
                    help="name=path[=work_dir] (a copy of the database for a build that cannot migrate it), "
                         "in the order to run")
    ap.add_argument("--records", type=int, required=True, help="how many records the fill made (the label)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fill-postgres", metavar="DBNAME",
                    help="instead of SQLite: create this PostgreSQL database, make its schema with the last "
                         "binary, fill it with --records records, answer from it, and drop it")
    ap.add_argument("--database-url", help="instead of SQLite: an existing PostgreSQL database, kept")
    args = ap.parse_args()
    binaries = [tuple(b.split("=", 2)) for b in args.binary]
    backend, url = ("postgres", args.database_url) if args.database_url else ("sqlite", None)
    if args.fill_postgres:
        backend, url = "postgres", f"postgres://127.0.0.1:5432/{args.fill_postgres}"
        run.psql(f"CREATE DATABASE {args.fill_postgres}")
        run.stk.binary = lambda _n, p=Path(binaries[-1][1]): p  # noqa: E731
        st = run.stk.Stack(work_dir=args.work_dir, database_url=url)
        st.start_control_plane()
        st.stop()
        secs, rollup_s = run.usagebench.fill_postgres(args.fill_postgres, args.records)
        print(f"postgres: {args.records} records inserted in {secs:.0f} s, rolled up in {rollup_s:.0f} s", flush=True)
    try:
        return answer(args, binaries, backend, url)
    finally:
        if args.fill_postgres:
            run.psql(f"DROP DATABASE IF EXISTS {args.fill_postgres} WITH (FORCE)")


def answer(args, binaries, backend: str, url: str | None) -> int:
    times: dict[tuple[str, str], list[float]] = {}
    rows: dict[str, int] = {}
    order: list[str] = []
    now = int(time.time())
    for _ in range(args.rounds):
        for name, path, *own in binaries:
            run.stk.binary = lambda _n, p=Path(path): p  # noqa: E731
            st = run.stk.Stack(work_dir=Path(own[0]) if own else args.work_dir, database_url=url)
            st.start_control_plane()
            try:
                run.procstat.pin_all_threads(st.procs["control-plane"].popen.pid, {int(run.ENVOY_CPU)})
                fake = SimpleNamespace(plan=SimpleNamespace(usage_records=args.records), results={})
                run.Bench.usage_queries_now(fake, st, backend, "after", now)
                for label, ms, n in fake.results[("queries", backend)]:
                    if label not in order:
                        order.append(label)
                    times.setdefault((name, label), []).append(ms)
                    rows[label] = n
            finally:
                st.stop()
    names = [b[0] for b in binaries]
    print(f"{backend}, {args.records:,} records: median of {args.rounds} rounds (each round: every binary in turn, each query 3 times, their median), ms")
    print(f"  {'summary':52s} " + " ".join(f"{n:>18s}" for n in names))
    for label in order:
        cells = []
        for n in names:
            t = times[(n, label)]
            cells.append(f"{statistics.median(t):7.1f} ({min(t):.0f}-{max(t):.0f})")
        print(f"  {label:52s} " + " ".join(f"{c:>18s}" for c in cells) + f"   ({rows[label]} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
