"""The end-to-end harness: real Envoy with the built filter, the control-plane
binary and the mock upstream, on free ports of 127.0.0.1, once per database
(SQLite, then PostgreSQL on 127.0.0.1:5432 in a fresh database). Each test
gets an account and a key of its own (`account`, `key`), so that none
depends on another's order or cleanup; what tests measure (`record`) goes to
`metrics.jsonl` in pytest's temp dir, whose path the run prints at its end."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from .helpers import new_account, new_key, psql, stackmod
from .tlsfront import make_ca

DATABASES = [d for d in os.environ.get("TOLLGATE_E2E_DATABASES", "sqlite").split(",") if d]
PG_BASE = os.environ.get("TOLLGATE_E2E_POSTGRES", "postgres://127.0.0.1:5432")


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
        psql(f"CREATE DATABASE {dbname}")
        url = f"{PG_BASE}/{dbname}"
    # Snapshots of more than 4 keys go in pages: every test below runs on paged
    # snapshots (the shared-limits and lonely stacks keep the default, inline).
    # The SQLite run logs at debug level (the filter, Envoy and the control
    # plane), so that the search for secrets below reads the most the gateway
    # ever logs (but for Envoy's components that print every header at debug
    # level by design: `stack.ENVOY_COMPONENTS_THAT_PRINT_SECRETS`).
    debug = request.param == "sqlite" and os.environ.get("TOLLGATE_E2E_DEBUG_LOGS", "1") == "1"
    s = stackmod.Stack(work_dir=work, database_url=url, snapshot_page_keys=4,
                       ca_bundle=str(test_ca["bundle"]), debug_logs=debug, metrics_per_key=True)
    leaks: list[str] = []
    dump = []
    try:
        with s.running():
            yield s
            leaks += s.leaked_in_answers()
    finally:
        if dbname:
            # Beside the SQLite file's place: what is in `data` is the database,
            # which holds key hashes by design (`leaked_in_files`).
            path = work / "data" / "pg_dump.sql"
            subprocess.run(["pg_dump", "-h", "127.0.0.1", "-f", str(path), dbname], check=True)
            dump.append(path)
            psql(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    leaks += s.leaked_in_files(dump)
    # Every secret the suite handed out, searched for in every artefact.
    assert len(s.secrets) >= 3
    assert not leaks, "secrets found in artefacts:\n" + "\n".join(leaks[:30])


@pytest.fixture
def account(stack, request) -> dict:
    """An account of this test's own, on the shared stack."""
    return new_account(stack, request.node.name[:200])


@pytest.fixture
def key(stack, account) -> str:
    """The secret of a key of the test's own account, known on every worker."""
    return new_key(stack, account["id"], "e2e")["key"]


METRICS = pytest.StashKey[Path]()


@pytest.fixture(scope="session")
def record(request, tmp_path_factory):
    """`record(name, value, **labels)`: one measurement as a JSON line in
    `metrics.jsonl` in pytest's base temp dir (TOLLGATE_E2E_METRICS names
    another file)."""
    path = Path(os.environ.get("TOLLGATE_E2E_METRICS") or tmp_path_factory.getbasetemp() / "metrics.jsonl")
    request.config.stash[METRICS] = path

    def write(name: str, value: float, **labels) -> None:
        with path.open("a") as f:
            f.write(json.dumps({"metric": name, "value": value, **labels}) + "\n")

    return write


def pytest_terminal_summary(terminalreporter, config) -> None:
    path = config.stash.get(METRICS, None)
    if path is not None and path.exists():
        terminalreporter.write_line(f"metrics: {path}")


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium under Playwright, one for the whole run."""
    from playwright.sync_api import sync_playwright

    from .browser import CHROMIUM

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def ui(chromium, stack, request):
    """A fresh browser context (no cookies) at 1280 px on the stack's dashboard."""
    from .browser import Ui

    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    try:
        yield Ui(context.new_page(), stack, request.node.name)
    finally:
        context.close()


@pytest.fixture
def ledger(stack):
    """The mock upstream's record of what it served, emptied for each test."""
    stackmod.http("DELETE", f"{stack.mock}/_mock/ledger")

    def read() -> list[dict]:
        status, _, body = stackmod.http("GET", f"{stack.mock}/_mock/ledger")
        assert status == 200
        return body["entries"]

    return read
