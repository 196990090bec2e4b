"""The end-to-end harness: real Envoy with the built filter, the control-plane
binary and the mock upstream, on free ports of 127.0.0.1, once per database
(SQLite, then PostgreSQL on 127.0.0.1:5432 in a fresh database)."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import stack as stackmod  # noqa: E402

from .tlsfront import make_ca  # noqa: E402

DATABASES = [d for d in os.environ.get("TOLLGATE_E2E_DATABASES", "sqlite").split(",") if d]
PG_BASE = os.environ.get("TOLLGATE_E2E_POSTGRES", "postgres://127.0.0.1:5432")


def _psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-d", "test", "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True)


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory) -> dict:
    """A CA of the tests' own, trusted by the gateway's Envoy besides the
    system's, and a certificate for `localhost` that it signed."""
    return make_ca(tmp_path_factory.mktemp("ca"), stackmod.CA_BUNDLE)


@pytest.fixture(scope="session", params=DATABASES)
def stack(request, tmp_path_factory, test_ca):
    work = tmp_path_factory.mktemp(f"stack-{request.param}")
    url = None
    dbname = None
    if request.param == "postgres":
        dbname = f"tollgate_e2e_{secrets.token_hex(6)}"
        _psql(f"CREATE DATABASE {dbname}")
        url = f"{PG_BASE}/{dbname}"
    # Snapshots of more than 4 keys go in pages: every test below runs on paged
    # snapshots (the shared-limits and lonely stacks keep the default, inline).
    # The SQLite run logs at debug level (the filter, Envoy and the control
    # plane), so that the search for secrets below reads the most the gateway
    # ever logs (but for Envoy's components that print every header at debug
    # level by design: `stack.ENVOY_COMPONENTS_THAT_PRINT_SECRETS`).
    debug = request.param == "sqlite" and os.environ.get("TOLLGATE_E2E_DEBUG_LOGS", "1") == "1"
    s = stackmod.Stack(work_dir=work, database_url=url, snapshot_page_keys=4,
                       ca_bundle=str(test_ca["bundle"]), debug_logs=debug)
    leaks: list[str] = []
    try:
        s.start()
        yield s
        leaks += s.leaked_in_answers()
    finally:
        s.stop()
        dump = []
        if dbname:
            path = work / "pg_dump.sql"
            subprocess.run(["pg_dump", "-h", "127.0.0.1", "-f", str(path), dbname], check=True)
            dump.append(path)
            _psql(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    leaks += s.leaked_in_files(dump)
    # Every secret the suite handed out, searched for in every artefact.
    assert len(s.secrets) >= 3
    assert not leaks, "secrets found in artefacts:\n" + "\n".join(leaks[:30])


@pytest.fixture(scope="session")
def key(stack) -> str:
    return stack.demo["key"]["key"]


@pytest.fixture
def ledger(stack):
    """The mock upstream's record of what it served, emptied for each test."""
    stackmod.http("DELETE", f"{stack.mock}/_mock/ledger")

    def read() -> list[dict]:
        status, _, body = stackmod.http("GET", f"{stack.mock}/_mock/ledger")
        assert status == 200
        return body["entries"]

    return read


def raw(stack, method: str, path: str, headers: list[tuple[str, bytes | str]] = (), body: bytes | None = None):
    """A request with headers as raw bytes (for non-UTF-8 values); (status, headers, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.gateway_port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value if isinstance(value, bytes) else value.encode("latin-1"))
        if body is not None:
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def chat_body(model: str = "demo-chat", **extra) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "hello there"}], **extra}).encode()
