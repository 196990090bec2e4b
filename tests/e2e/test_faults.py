"""Faults on the channel between Envoy and the control plane, each under
steady load and each ending in a ledger check: the usage records equal what
the mock upstream served, in count, tokens and cost; none lost, none doubled.

A private stack (SQLite) whose Envoy reaches the control plane through a
fault proxy (`faultproxy.py`), so that the usage sink can answer 500, answer
garbage, hang or reset while the control plane itself stays healthy."""

from __future__ import annotations

import http.client
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from .faultproxy import FaultProxy
from .helpers import chat_body, fresh_key, ledger_check, post_chat, psql, raw, records_of, stackmod
from .tcpfault import TcpFault

FAULT_S = float(os.environ.get("TOLLGATE_E2E_FAULT_S", "5"))
# Issue 10 asks for 60 s and 10 min: CI runs 60 s, TOLLGATE_E2E_DOWN_S=600 the other.
DOWN_S = float(os.environ.get("TOLLGATE_E2E_DOWN_S", "60"))


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    work = tmp_path_factory.mktemp("faulty")
    s = stackmod.Stack(work_dir=work)
    proxy = FaultProxy(s.control_plane_port)
    s.control_plane_via_port = proxy.port
    s.proxy = proxy
    with s.running(proxy):
        yield s


class Load:
    """Requests one after another (streams and not) on fresh connections,
    every 20 ms, from one thread; what was answered 200, by request id."""

    def __init__(self, stack, key: str):
        self.stack, self.key = stack, key
        self.ok: list[str] = []
        self.failed: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            body = chat_body(stream=True) if n % 3 == 0 else chat_body()
            try:
                status, headers, _ = raw(self.stack, "POST", "/v1/chat/completions",
                                         [("authorization", f"Bearer {self.key}")], body)
            except (OSError, http.client.HTTPException):
                status = -1  # no answer (the Envoy was killed)
            if status == 200:
                self.ok.append(headers["x-request-id"])
            else:
                self.failed.append(status)
            time.sleep(0.02)

    def __enter__(self) -> "Load":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


@pytest.mark.parametrize("fault", ["500", "garbage", "hang", "reset"])
def test_a_failing_usage_sink_loses_and_doubles_nothing(faulty, record, fault):
    key = fresh_key(faulty, f"sink-{fault}")
    with Load(faulty, key) as load:
        time.sleep(1)
        faulty.proxy.fail(fault)
        time.sleep(FAULT_S)
        faulty.proxy.heal()
        time.sleep(1)
    assert load.failed == [], "the data path never noticed the sink's trouble"
    assert faulty.proxy.faulted >= 1, "the fault was exercised"
    result = ledger_check(faulty, key, load.ok)
    record("fault_records", result["served"], fault=f"usage sink {fault}")
    record("fault_records_lost", result["lost"], fault=f"usage sink {fault}")
    record("fault_records_doubled", result["doubled"], fault=f"usage sink {fault}")
    assert (result["lost"], result["doubled"], result["wrong"]) == (0, 0, [])
    assert result["served"] > FAULT_S * 10


def test_the_control_plane_down_with_an_envoy_cold_started_meanwhile(faulty, record):
    """The control plane SIGKILLed for DOWN_S under load: serving goes on from
    the last snapshot; a second Envoy started meanwhile has never had a
    config and answers 503 `gateway_not_ready` (never fails open); when the
    control plane is back every record arrives once."""
    key = fresh_key(faulty, "down")
    with Load(faulty, key) as load:
        time.sleep(1)
        faulty.procs["control-plane"].stop(sig=signal.SIGKILL)
        try:
            port = faulty.start_second_envoy()
            status, body = post_chat(port, key)
            assert status == 503 and b"gateway_not_ready" in body
            time.sleep(DOWN_S)
        finally:
            faulty.start_control_plane()
        # The cold Envoy gets its first snapshot and serves.
        stackmod.wait_until(lambda: post_chat(port, key)[0] == 200, timeout=15, what="the cold Envoy's first config")
        time.sleep(1)
    assert load.failed == [], "the warm Envoy kept serving"
    result = ledger_check(faulty, key, load.ok, timeout=90)
    record("fault_records", result["served"], fault=f"control plane down {DOWN_S:.0f} s")
    record("fault_records_lost", result["lost"], fault=f"control plane down {DOWN_S:.0f} s")
    record("fault_records_doubled", result["doubled"], fault=f"control plane down {DOWN_S:.0f} s")
    assert (result["lost"], result["doubled"], result["wrong"]) == (0, 0, [])
    faulty.procs.pop("envoy-2").stop()


def test_envoy_sigkilled_under_load_loses_only_what_the_access_log_recovers(faulty, record):
    """Envoy SIGKILLed with requests and streams in flight (three clients on
    fresh connections), then started again: what its workers had not shipped
    is lost from the usage records, counted, and recovered from the access
    log by `tools/recover_usage.py`, after which the ledger check holds."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    import recover_usage

    key = fresh_key(faulty, "sigkill")
    loads = [Load(faulty, key) for _ in range(3)]
    for load in loads:
        load.__enter__()
    try:
        time.sleep(3)
        faulty.procs["envoy"].stop(sig=signal.SIGKILL)
        time.sleep(0.5)
    finally:
        for load in loads:
            load.__exit__()
    ok = [rid for load in loads for rid in load.ok]
    # Every request answered 200 before the kill was served by the upstream.
    faulty.start_envoy()
    faulty.wait_config()
    time.sleep(2)  # what the new Envoy might still ship: nothing, it starts empty
    _, _, body = stackmod.http("GET", f"{faulty.mock}/_mock/ledger")
    served = [e for e in body["entries"] if e["authorization"] and e["x_request_id"] in set(ok)]
    before = ledger_counts(faulty, {e["x_request_id"] for e in served})
    totals = recover_usage.recover([str(faulty.access_log)], faulty.control_plane, faulty.filter_secret)
    after = ledger_counts(faulty, {e["x_request_id"] for e in served})
    again = recover_usage.recover([str(faulty.access_log)], faulty.control_plane, faulty.filter_secret)
    lost_before, lost_after = len(ok) - before, len(ok) - after
    record("sigkill_requests", len(ok))
    record("sigkill_records_lost_before_recovery", lost_before)
    record("sigkill_records_recovered", totals["accepted"])
    record("sigkill_records_lost_after_recovery", lost_after)
    print(f"SIGKILL: {len(ok)} answered, {lost_before} records lost, {totals['accepted']} recovered, "
          f"{lost_after} lost for good")
    assert totals["accepted"] == lost_before - lost_after, "recovery stores only what was missing"
    assert again["accepted"] == 0, "a second recovery changes nothing"
    # What is lost for good is what the access log had not flushed (every
    # 20 ms, `--file-flush-interval-msec`) when the kill came: 0 in the runs
    # seen, at most the last few requests.
    assert lost_after <= 10, (lost_after, len(ok))


def ledger_counts(stack, ids: set[str]) -> int:
    """How many of `ids` have a usage record."""
    return len({r["request_id"] for r in records_of(stack, ids)})


DB_DOWN_S = float(os.environ.get("TOLLGATE_E2E_DB_DOWN_S", "30"))


@pytest.fixture
def postgres_behind_a_fault(tmp_path):
    """A private stack on PostgreSQL, reached through a TCP proxy that can be
    taken down (`tcpfault.py`): the database's outage, not the machine's."""
    dbname = f"tollgate_e2e_{os.urandom(6).hex()}"
    psql(f"CREATE DATABASE {dbname}")
    proxy = TcpFault(5432)
    s = stackmod.Stack(work_dir=tmp_path / "stack", database_url=f"postgres://127.0.0.1:{proxy.port}/{dbname}")
    s.db = proxy
    try:
        with s.running(proxy):
            yield s
    finally:
        psql(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")


def test_postgres_stopped_the_data_path_serves_and_no_usage_is_lost(postgres_behind_a_fault, record):
    s = postgres_behind_a_fault
    key = fresh_key(s, "db-down")
    with Load(s, key) as load:
        time.sleep(1)
        s.db.down()
        t0 = time.monotonic()
        status, _, body = s.admin("POST", "/admin/accounts", {"name": "during the outage"})
        during = (status, body)
        _, _, health = stackmod.http("GET", f"{s.gateway}/api/status")
        time.sleep(max(0.0, DB_DOWN_S - (time.monotonic() - t0)))
        s.db.up()
        time.sleep(1)
    assert load.failed == [], "the data path never noticed the database's outage"
    assert during[0] == 503 and during[1]["error"]["code"] == "database_unavailable", during
    assert health["control_plane"]["database"] == "unavailable" and health["control_plane"]["status"] == "degraded"
    assert health["gateway"]["status"] == "ok", "the gateway serves from its snapshot"
    assert s.db.refused >= 1, "the outage was exercised"
    result = ledger_check(s, key, load.ok, timeout=90)
    record("fault_records", result["served"], fault=f"postgres down {DB_DOWN_S:.0f} s")
    record("fault_records_lost", result["lost"], fault=f"postgres down {DB_DOWN_S:.0f} s")
    assert (result["lost"], result["doubled"], result["wrong"]) == (0, 0, [])
    assert result["served"] > DB_DOWN_S * 10
    # Writes work again, and reach the Envoy.
    assert stackmod.http("GET", f"{s.gateway}/api/status")[2]["control_plane"]["database"] == "ok"
    fresh_key(s, "after the outage")
