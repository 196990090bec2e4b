"""The filter channel: changes made through the admin API reach every Envoy
worker fast, the gateway keeps serving while the control plane is away, and a
gateway that never had a config refuses to guess."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from .helpers import chat_body, raw, stackmod, until_every_worker


def test_a_revoked_key_is_refused_by_every_worker_within_a_second(stack, account, record):
    created = stack.must("POST", "/admin/keys", {"name": "to revoke", "account_id": account["id"]})
    until_every_worker(stack, created["key"], 200, body=chat_body())
    t0 = time.monotonic()
    stack.must("DELETE", f"/admin/keys/{created['id']}")
    until_every_worker(stack, created["key"], 401, body=chat_body())
    # The streak itself takes a few requests; the first refusal is what counts.
    elapsed = time.monotonic() - t0
    record("revocation_propagation_s", elapsed, db=stack.database_url or "sqlite")
    assert elapsed < 1.0 + 0.5, f"revocation took {elapsed:.3f} s"


def test_an_allowlist_change_applies_within_a_second(stack, account, record):
    created = stack.must("POST", "/admin/keys", {"name": "narrowed", "account_id": account["id"]})
    until_every_worker(stack, created["key"], 200, body=chat_body())
    t0 = time.monotonic()
    stack.must("PATCH", f"/admin/keys/{created['id']}", {"models": ["demo-embed"]})
    until_every_worker(stack, created["key"], 403, body=chat_body())
    elapsed = time.monotonic() - t0
    record("allowlist_propagation_s", elapsed, db=stack.database_url or "sqlite")
    assert elapsed < 1.5


def test_the_gateway_keeps_serving_while_the_control_plane_restarts(stack, account, key, record):
    revoked = stack.must("POST", "/admin/keys", {"name": "stays revoked", "account_id": account["id"]})
    stack.must("DELETE", f"/admin/keys/{revoked['id']}")
    until_every_worker(stack, revoked["key"], 401, body=chat_body())
    cp = stack.procs["control-plane"]
    cp.stop()
    try:
        for _ in range(20):
            assert raw(stack, "POST", "/v1/chat/completions", [("authorization", f"Bearer {key}")], chat_body())[0] == 200
            assert raw(stack, "POST", "/v1/chat/completions", [("authorization", f"Bearer {revoked['key']}")], chat_body())[0] == 401
        time.sleep(1.0)  # several failed polls: still serving on the last snapshot
        assert raw(stack, "POST", "/v1/chat/completions", [("authorization", f"Bearer {key}")], chat_body())[0] == 200
    finally:
        stack.start_control_plane()
    # The channel comes back by itself: a new key works on every worker soon.
    fresh = stack.must("POST", "/admin/keys", {"name": "after restart", "account_id": account["id"]})
    elapsed = until_every_worker(stack, fresh["key"], 200, body=chat_body(), timeout=10)
    record("reconnect_and_propagate_s", elapsed, db=stack.database_url or "sqlite")


def test_a_gateway_that_never_had_a_config_answers_503(tmp_path):
    lonely = stackmod.Stack(work_dir=tmp_path / "lonely")  # no control plane on its port
    try:
        lonely.start_envoy()
        status, headers, body = raw(lonely, "POST", "/v1/chat/completions", [("authorization", "Bearer x")], chat_body())
        assert status == 503
        assert json.loads(body)["error"]["code"] == "gateway_not_ready"
        assert headers["x-request-id"].startswith("req_")
    finally:
        lonely.stop()


def test_the_envoy_configs_validate_and_the_compose_one_is_up_to_date(tmp_path):
    s = stackmod.Stack(work_dir=tmp_path / "validate")
    compose = stackmod.ROOT / "envoy" / "envoy.yaml"
    assert compose.read_text() == stackmod.render_compose(), "run: python3 tools/stack.py render-compose"
    # The compose config with its container paths pointed at this machine's files.
    local_compose = tmp_path / "compose-local.yaml"
    local_compose.write_text(compose.read_text().replace("/etc/tollgate/tollgate_filter.wasm", str(stackmod.WASM)))
    compose_secret = "compose-demo-filter-secret-change-me"
    assert compose_secret in (stackmod.ROOT / "docker-compose.yml").read_text()

    def validate(config, secret: str | None):
        env = {k: v for k, v in os.environ.items() if k != "TOLLGATE_FILTER_SECRET"}
        # Where the native module is, when the stacks run it.
        env.update({k: v for k, v in s.envoy_env().items() if k != "TOLLGATE_FILTER_SECRET"})
        if secret is not None:
            env["TOLLGATE_FILTER_SECRET"] = secret
        return subprocess.run(
            [str(stackmod.envoy_binary()), "--mode", "validate", "-c", str(config), "--base-id", str(s.base_id)],
            capture_output=True, text=True, env=env)

    for config, secret in ((s.envoy_config(), s.filter_secret), (local_compose, compose_secret)):
        assert s.filter_secret not in config.read_text(), "the filter secret is in no config file"
        out = validate(config, secret)
        assert out.returncode == 0, out.stdout + out.stderr
    # Without the secret in Envoy's environment the filter refuses to start, and says why.
    out = validate(local_compose, None)
    assert out.returncode != 0 and "TOLLGATE_FILTER_SECRET" in out.stdout + out.stderr


def test_a_change_made_through_another_control_plane_reaches_every_worker_fast(stack, account, record):
    """Two control planes on one PostgreSQL: the gateway polls the first, the
    admin writes go to the second, NOTIFY carries the change across."""
    if not stack.database_url:
        pytest.skip("several control planes share PostgreSQL, not a SQLite file")
    port = stackmod.free_port()
    # The same data directory: the second one needs the same sealing key.
    env = {**stack.control_plane_env(), "TOLLGATE_LISTEN": f"127.0.0.1:{port}"}
    other = stackmod.Proc("control-plane-2", [str(stackmod.binary("tollgate-control-plane"))], stack.work_dir, env=env)
    other.start(ready="listening on")
    try:
        status, _, created = stackmod.http(
            "POST", f"http://127.0.0.1:{port}/admin/keys",
            {"name": "via the other", "account_id": account["id"]},
            {"authorization": f"Bearer {stack.admin_token}"})
        assert status == 201
        t0 = time.monotonic()
        until_every_worker(stack, created["key"], 200, body=chat_body(), timeout=4.0)
        elapsed = time.monotonic() - t0
        record("cross_control_plane_propagation_s", elapsed, db="postgres")
        assert elapsed < 1.0, f"took {elapsed:.3f} s (the periodic refresh alone takes up to 5 s)"
    finally:
        other.stop()


def test_envoys_config_dump_holds_no_filter_secret(stack):
    """The secret reaches the filter through Envoy's environment, so Envoy's
    admin `/config_dump` (which prints every filter's configuration) has it
    nowhere."""
    status, _, dump = stackmod.http("GET", f"http://127.0.0.1:{stack.admin_port}/config_dump")
    text = json.dumps(dump)
    assert status == 200 and "tollgate_control_plane" in text, "the dump has the filter's configuration"
    assert stack.filter_secret not in text
