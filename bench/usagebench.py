"""Usage ingestion throughput (POST /internal/usage) and admin usage queries
over a million records."""

from __future__ import annotations

import json
import random
import sqlite3
import statistics
import threading
import time
import urllib.request
from pathlib import Path

MODELS = [f"model-{i:02d}" for i in range(50)]
DAY_MS = 86_400_000


def record(request_id: str, key_id: str, account_id: str, model: str, now_ms: int, rng: random.Random) -> dict:
    stream = rng.random() < 0.4
    latency = int(rng.lognormvariate(6.5, 0.8))
    return {
        "request_id": request_id, "key_id": key_id, "account_id": account_id, "model": model,
        "upstream_model": f"up-{model}", "provider": "mock", "status": 200 if rng.random() < 0.97 else 429,
        "input_tokens": rng.randint(5, 4000), "output_tokens": rng.randint(1, 1500),
        "estimated": False, "stream": stream, "latency_ms": latency,
        "ttft_ms": latency // 4 if stream else None, "cost_nanos": rng.randint(1_000, 5_000_000),
        "created_at_ms": now_ms,
    }


def ingest(control_plane: str, filter_secret: str, key_id: str, account_id: str,
           seconds: float, threads: int = 4, batch: int = 200) -> dict:
    """`threads` clients each POST batches of `batch` records with unique
    request ids for `seconds`; returns records/s (accepted, i.e. committed)."""
    accepted = [0] * threads
    batches = [0] * threads
    errors: list[str] = []
    run_id = f"{time.time_ns():x}"
    stop_at = time.monotonic() + seconds

    def worker(index: int) -> None:
        rng = random.Random(index)
        n = 0
        while time.monotonic() < stop_at:
            now = int(time.time() * 1000)
            recs = [record(f"bench-{run_id}-{index}-{n + i}", key_id, account_id, rng.choice(MODELS), now, rng)
                    for i in range(batch)]
            n += batch
            req = urllib.request.Request(
                f"{control_plane}/internal/usage", data=json.dumps({"records": recs}).encode(), method="POST",
                headers={"content-type": "application/json", "x-tollgate-filter-secret": filter_secret})
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    answer = json.loads(resp.read())
                accepted[index] += answer["accepted"]
                batches[index] += 1
            except Exception as e:  # noqa: BLE001 - reported
                errors.append(repr(e))
                if len(errors) > 20:
                    return

    t0 = time.monotonic()
    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=seconds + 60)
    elapsed = time.monotonic() - t0
    if errors:
        raise RuntimeError(f"usage ingest errors: {errors[:3]}")
    return {"records": sum(accepted), "batches": sum(batches), "seconds": elapsed,
            "per_s": sum(accepted) / elapsed}


def fill(db: Path, count: int, hours: bool = True) -> tuple[float, float]:
    """Inserts `count` records straight into SQLite's usage_records, then the
    rollup from them (the migration's backfill; `hours`: 0010's per-key
    hourly rows too); (seconds to insert, seconds to roll up)."""
    t0 = time.monotonic()
    con = sqlite3.connect(db, timeout=30)
    try:
        con.execute("PRAGMA synchronous = OFF")
        con.execute("PRAGMA cache_size = -1000000")
        # The records' indexes are dropped for the fill and built again after
        # it (one sort each instead of ten million random inserts).
        indexes = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                              "AND tbl_name = 'usage_records' AND sql IS NOT NULL").fetchall()
        for name, _ in indexes:
            con.execute(f"DROP INDEX {name}")
        sql = f"INSERT INTO usage_records ({FILL_COLUMNS}) VALUES ({', '.join('?' * 15)})"
        rows = synthetic_rows(count)
        while True:
            chunk = [r for _, r in zip(range(100_000), rows)]
            if not chunk:
                break
            con.executemany(sql, chunk)
            con.commit()
        for _, index_sql in indexes:
            con.execute(index_sql)
        con.commit()
        t1 = time.monotonic()
        con.executescript(rollup_backfill_sql("sqlite", hours))
        # A control plane with the rollup's mark (migration 0012) must not
        # add these records again.
        if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'usage_rollup_mark'").fetchone():
            con.execute("UPDATE usage_rollup_mark SET last_id = (SELECT COALESCE(MAX(id), 0) FROM usage_records)")
        con.execute("ANALYZE")
        con.commit()
    finally:
        con.close()
    return t1 - t0, time.monotonic() - t1


def sqlite_has_table(db: Path, table: str) -> bool:
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone() is not None
    finally:
        con.close()


MIGRATIONS = Path(__file__).resolve().parents[1] / "control-plane" / "migrations"


def rollup_backfill_sql(backend: str, hours: bool = True) -> str:
    """The rollup migrations' own backfill (their INSERT ... SELECT
    statements), for records inserted behind the control plane's back: 0005
    for the per-model views, 0006 for the per-key ones it rebuilt, 0010 for
    the per-key hourly ones (`hours`; not for a control plane built before
    0010)."""
    statements = []
    names = ["0005_usage_rollup.sql", "0006_rollup_coarse_key_histogram.sql"]
    if hours:
        names.append("0010_rollup_writer.sql")
    for name in names:
        text = (MIGRATIONS / backend / name).read_text()
        statements += [s for s in text.split(";") if "INSERT INTO" in s]
    # The last INSERT into each table is the one that built its current shape.
    last = {s.split("INSERT INTO", 1)[1].split()[0]: s for s in statements}
    return ";\n".join(last.values()) + ";"


def synthetic_rows(count: int, days: int = 30, keys: int = 1000, accounts: int = 100, seed: int = 7):
    """The rows `fill` inserts (usage_records' columns in `FILL_COLUMNS` order)."""
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    start = now - days * DAY_MS
    for i in range(count):
        k = rng.randrange(keys)
        model = MODELS[min(int(rng.expovariate(1 / 8)), len(MODELS) - 1)]  # a few models dominate
        stream = rng.random() < 0.4
        latency = int(rng.lognormvariate(6.5, 0.8))
        yield (f"fill-{i:08d}", f"key_{k:04d}", f"acct_{k % accounts:03d}", model, f"up-{model}", "mock",
               200 if rng.random() < 0.97 else 429, rng.randint(5, 4000), rng.randint(1, 1500), 0,
               int(stream), latency, latency // 4 if stream else None, rng.randint(1_000, 5_000_000),
               start + (i * days * DAY_MS) // count + rng.randrange(1000))


FILL_COLUMNS = ("request_id, key_id, account_id, model, upstream_model, provider, status, input_tokens, "
                "output_tokens, estimated, stream, latency_ms, ttft_ms, cost_nanos, created_at_ms")


def fill_postgres(dbname: str, count: int, hours: bool = True) -> tuple[float, float]:
    """`count` records into PostgreSQL's usage_records with COPY, then the
    rollup from them; (seconds to insert, seconds to roll up)."""
    import subprocess

    t0 = time.monotonic()
    proc = subprocess.Popen(["psql", "-h", "127.0.0.1", "-d", dbname, "-v", "ON_ERROR_STOP=1", "-qc",
                             f"COPY usage_records ({FILL_COLUMNS}) FROM STDIN"], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    buf = []
    for row in synthetic_rows(count):
        buf.append("\t".join("\\N" if v is None else str(v) for v in row))
        if len(buf) >= 50_000:
            proc.stdin.write(("\n".join(buf) + "\n").encode())
            buf.clear()
    if buf:
        proc.stdin.write(("\n".join(buf) + "\n").encode())
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("COPY into usage_records failed")
    t1 = time.monotonic()
    subprocess.run(["psql", "-h", "127.0.0.1", "-d", dbname, "-v", "ON_ERROR_STOP=1", "-qc",
                    rollup_backfill_sql("postgres", hours) + " ANALYZE;"], check=True)
    return t1 - t0, time.monotonic() - t1


def time_queries(get, queries: list[tuple[str, str]], runs: int = 3, timeout: float = 120.0) -> list[tuple[str, float, int]]:
    """(label, median ms, rows) for each query, `runs` times each. `get(path,
    timeout)` returns (status, data)."""
    out = []
    for label, path in queries:
        times = []
        rows = 0
        for _ in range(runs):
            t0 = time.perf_counter()
            status, data = get(path, timeout)
            times.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"GET {path} -> {status}: {str(data)[:300]}")
            rows = len(data.get("data", [])) if isinstance(data, dict) else 0
        out.append((label, statistics.median(times), rows))
    return out
