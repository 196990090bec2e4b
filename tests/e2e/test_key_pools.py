"""Provider key pools (issue 11, rule 5; docs/routing.md, "Key pools"),
through real Envoy: a provider holds several credentials and requests
rotate over them; one answered 429 is benched and the others carry on; one
answered 401 is disabled (the admin API and /api/status show it, later
requests never use it, PATCH re-enables it); when every credential is bad
the client gets one 502 in the OpenAI format. The credentials stay
write-only. Each provider is a mock upstream of its own that answers each
credential its own way (`--key-steer KEY:x-mock-NAME=VALUE`)."""

from __future__ import annotations

import http.client
import json
import time

import pytest

from .helpers import chat_body, stackmod, tag
from .failover_fleet import chat, wait_routed


class KeyedMock:
    """A mock upstream; `rules` maps a credential to the `x-mock-*` header
    it is answered with."""

    def __init__(self, stack, name: str, rules: dict[str, str | tuple[str, ...]]):
        self.port = stackmod.free_port()
        args = [str(stackmod.binary("tollgate-mock-upstream")), "--listen", f"127.0.0.1:{self.port}"]
        for secret, rule in rules.items():
            for one in (rule,) if isinstance(rule, str) else rule:
                args += ["--key-steer", f"{secret}:{one}"]
        self.proc = stackmod.Proc(f"mock-{name}-{self.port}", args, stack.work_dir).start(ready="listening on")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def keys_used(self) -> list[str]:
        """The credential of each request it served, in order."""
        _, _, body = stackmod.http("GET", f"http://127.0.0.1:{self.port}/_mock/ledger")
        return [e["authorization"].removeprefix("Bearer ") for e in body["entries"]]

    def stop(self) -> None:
        self.proc.stop()


def secrets(n: int) -> list[str]:
    t = tag()
    return [f"sk-pool-{t}-{i}-{'x' * 8}{i}" for i in range(n)]


def pooled_model(stack, mock: KeyedMock, keys: list[str]) -> tuple[str, str, dict]:
    """A provider holding `keys` and a model of one deployment on it: its
    id, the model's and the provider as the admin API answered."""
    pid = f"kp-{tag()}"
    shown = stack.must("POST", "/admin/providers", {"id": pid, "kind": "openai", "base_url": mock.url, "api_keys": keys})
    mid = f"kp-{tag()}"
    stack.must("POST", "/admin/models", {
        "id": mid, "pricing": {"input_per_1m": 1.0, "output_per_1m": 2.0},
        "deployments": [{"provider": pid, "upstream_model": "up-pool", "priority": 0, "weight": 1}],
    })
    return pid, mid, shown


def no_secret_in(answer, keys: list[str]) -> None:
    text = json.dumps(answer)
    for k in keys:
        assert k not in text, "a credential's secret in an admin answer"


def api_key(stack, pid: str, index: int) -> dict:
    got = stack.must("GET", f"/admin/providers/{pid}")
    return got["api_keys"][index]


def status_credential(stack, pid: str, cid: str) -> dict | None:
    _, _, status = stackmod.http("GET", f"{stack.control_plane}/api/status")
    return next((c for c in status["credentials"] if c["provider"] == pid and c["credential"] == cid), None)


@pytest.fixture(scope="module")
def pools(stack):
    """Every pool the tests use, created at once so that one wait covers
    their clusters."""
    keys = {name: secrets(3) for name in ("rotate", "bench", "disable", "all_bad")}
    keys |= {name: secrets(2) for name in ("pair_a", "pair_b", "retry_after")}
    rules = {"rotate": {}, "pair_a": {}, "pair_b": {},
             "retry_after": {keys["retry_after"][1]: ("x-mock-status=429", "x-mock-retry-after=120")},
             "bench": {keys["bench"][1]: "x-mock-status=429"},
             "disable": {keys["disable"][1]: "x-mock-status=401"},
             "all_bad": {k: "x-mock-status=401" for k in keys["all_bad"]}}
    mocks: dict = {}
    try:
        # Stopped however the set-up or the tests end (a failed set-up left
        # the mocks running before).
        for name, rule in rules.items():
            mocks[name] = KeyedMock(stack, name, rule)
        made = {name: pooled_model(stack, mocks[name], keys[name]) for name in mocks}
        wait_routed(stack, [mid for _, mid, _ in made.values()])
        yield {"keys": keys, "mocks": mocks, "made": made}
    finally:
        for m in mocks.values():
            m.stop()


def test_a_pool_is_shown_by_id_hint_and_state_and_never_by_its_secrets(stack, pools):
    keys = pools["keys"]["rotate"]
    pid, _, created = pools["made"]["rotate"]
    for answer in (created, stack.must("GET", f"/admin/providers/{pid}"), stack.must("GET", "/admin/providers?limit=100")):
        no_secret_in(answer, keys)
    assert created["has_api_key"] is True
    assert [k["hint"] for k in created["api_keys"]] == [k[-4:] for k in keys]
    assert {k["state"] for k in created["api_keys"]} == {"active"}
    assert len({k["id"] for k in created["api_keys"]}) == 3


def test_requests_rotate_over_every_credential_of_a_pool(stack, key, pools):
    mock = pools["mocks"]["rotate"]
    _, mid, _ = pools["made"]["rotate"]
    for _ in range(6):
        status, _, body = chat(stack, key, mid)
        assert status == 200, body
    used = mock.keys_used()
    assert len(used) == 6
    # Round-robin on each worker: six requests over two workers reach all three.
    assert set(used) == set(pools["keys"]["rotate"])


def test_two_pools_rotate_each_on_its_own(stack, key, pools):
    """Requests of two pools, interleaved on one connection (so on one
    worker): each pool walks its own credentials in turn. One counter for
    every pool would send each pool's requests to one credential only."""
    mids = [pools["made"][name][1] for name in ("pair_a", "pair_b")]
    conn = http.client.HTTPConnection("127.0.0.1", stack.gateway_port, timeout=30)
    try:
        for _ in range(4):
            for mid in mids:
                conn.request("POST", "/v1/chat/completions", body=chat_body(mid),
                             headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
                resp = conn.getresponse()
                body = resp.read()
                assert resp.status == 200, body
    finally:
        conn.close()
    for name in ("pair_a", "pair_b"):
        first, second = pools["keys"][name]
        assert pools["mocks"][name].keys_used() == [first, second, first, second], name


def test_a_credential_answered_429_is_benched_and_the_others_carry_on(stack, key, pools):
    mock = pools["mocks"]["bench"]
    pid, mid, _ = pools["made"]["bench"]
    benched = pools["keys"]["bench"][1]
    for _ in range(8):
        status, _, body = chat(stack, key, mid)
        # The 429 is failed over to the next credential of the same deployment.
        assert status == 200, body
    used = mock.keys_used()
    assert used.count(benched) == 1, used
    assert len(used) == 9
    shown = stackmod.wait_until(lambda: (k := api_key(stack, pid, 1))["state"] == "benched" and k, timeout=15,
                                what="the bench in the admin API")
    # No Retry-After: benched for the cooldown, 30 s.
    assert time.time() + 15 < shown["benched_until"] <= time.time() + 31, shown
    assert status_credential(stack, pid, shown["id"])["state"] == "benched"
    assert api_key(stack, pid, 0)["state"] == "active"


def test_a_credential_answered_429_with_retry_after_is_benched_that_long(stack, key, pools):
    mock = pools["mocks"]["retry_after"]
    pid, mid, _ = pools["made"]["retry_after"]
    good, limited = pools["keys"]["retry_after"]
    for _ in range(8):
        status, _, body = chat(stack, key, mid)
        assert status == 200, body
    used = mock.keys_used()
    # Tried once (on one worker or the other), then left out for 120 s:
    # the other credential takes the traffic.
    assert used.count(limited) == 1, used
    assert used.count(good) == 8, used
    shown = stackmod.wait_until(lambda: (k := api_key(stack, pid, 1))["state"] == "benched" and k, timeout=15,
                                what="the bench in the admin API")
    assert time.time() + 100 < shown["benched_until"] <= time.time() + 121, shown
    assert status_credential(stack, pid, shown["id"])["state"] == "benched"


def test_a_credential_answered_401_is_disabled_until_an_admin_re_enables_it(stack, key, pools):
    mock = pools["mocks"]["disable"]
    pid, mid, _ = pools["made"]["disable"]
    bad = pools["keys"]["disable"][1]
    # Rotation is per worker (one counter per pool on each worker), so how
    # many requests reach the bad key first depends on which worker serves
    # them: go on until it was tried, then it is never tried again.
    for _ in range(30):
        status, _, body = chat(stack, key, mid)
        assert status == 200, body
        if bad in mock.keys_used():
            break
    for _ in range(4):
        assert chat(stack, key, mid)[0] == 200
    assert mock.keys_used().count(bad) == 1
    shown = stackmod.wait_until(lambda: (k := api_key(stack, pid, 1))["state"] == "disabled" and k, timeout=15,
                                what="the disable in the admin API")
    assert shown["disabled_reason"] == "the upstream answered 401"
    assert shown["disabled_at"] > 0
    status = status_credential(stack, pid, shown["id"])
    assert status and status["state"] == "disabled" and "hint" not in status
    # Later requests (the republished snapshot leaves it out) never use it.
    for _ in range(6):
        status, _, body = chat(stack, key, mid)
        assert status == 200, body
    assert mock.keys_used().count(bad) == 1
    # An admin re-enables it: it is active again and requests use it again.
    answer = stack.must("PATCH", f"/admin/providers/{pid}/api_keys/{shown['id']}", {"enabled": True})
    no_secret_in(answer, pools["keys"]["disable"])
    assert answer["api_keys"][1]["state"] == "active"
    assert "disabled_reason" not in answer["api_keys"][1]

    def used_again():
        chat(stack, key, mid)
        return mock.keys_used().count(bad) >= 2

    stackmod.wait_until(used_again, timeout=20, interval=0.2, what="the re-enabled credential in use")


def test_when_every_credential_is_refused_the_client_gets_one_502_naming_the_attempts(stack, key, pools):
    mock = pools["mocks"]["all_bad"]
    pid, mid, _ = pools["made"]["all_bad"]
    status, _, body = chat(stack, key, mid)
    assert status == 502, body
    assert body["error"]["code"] == "upstream_error"
    assert "each of the 3 attempts" in body["error"]["message"]
    text = json.dumps(body)
    assert "127.0.0.1" not in text and str(mock.port) not in text
    no_secret_in(body, pools["keys"]["all_bad"])
    # Each credential was tried once, none twice.
    assert sorted(mock.keys_used()) == sorted(pools["keys"]["all_bad"])
    stackmod.wait_until(lambda: all(k["state"] == "disabled" for k in stack.must("GET", f"/admin/providers/{pid}")["api_keys"]),
                        timeout=15, what="every credential disabled")
    # A pool with none left (once the snapshot says so): refused here,
    # nothing sent upstream.
    def refused_here():
        before = len(mock.keys_used())
        status, _, body = chat(stack, key, mid)
        return status == 502 and body["error"]["code"] == "upstream_error" and len(mock.keys_used()) == before

    stackmod.wait_until(refused_here, timeout=10, interval=0.3, what="a request refused without an upstream call")


def test_a_pool_is_changed_one_credential_at_a_time(stack):
    keys = secrets(3)
    pid = f"kp-{tag()}"
    stack.must("POST", "/admin/providers", {"id": pid, "kind": "openai", "base_url": "http://127.0.0.1:9/v1",
                                            "api_key": keys[0]})
    status, _, added = stack.admin("POST", f"/admin/providers/{pid}/api_keys", {"api_key": keys[1]})
    assert status == 201, added
    assert [k["hint"] for k in added["api_keys"]] == [keys[0][-4:], keys[1][-4:]]
    removed = stack.must("DELETE", f"/admin/providers/{pid}/api_keys/{added['api_keys'][0]['id']}")
    assert [k["hint"] for k in removed["api_keys"]] == [keys[1][-4:]]
    replaced = stack.must("PATCH", f"/admin/providers/{pid}/api_keys/{removed['api_keys'][0]['id']}", {"api_key": keys[2]})
    assert replaced["api_keys"][0]["hint"] == keys[2][-4:]
    whole = stack.must("PATCH", f"/admin/providers/{pid}", {"api_keys": keys[:2]})
    assert len(whole["api_keys"]) == 2
    cleared = stack.must("PATCH", f"/admin/providers/{pid}", {"api_key": ""})
    assert cleared["api_keys"] == [] and cleared["has_api_key"] is False
    for answer in (added, removed, replaced, whole, cleared):
        no_secret_in(answer, keys)


@pytest.mark.parametrize("method,path,body,want,param", [
    ("POST", "/admin/providers", {"base_url": "http://127.0.0.1:9/v1", "api_key": "sk-aaaaaaaaaa", "api_keys": ["sk-bbbbbbbbbb"]}, 400, "api_keys"),
    ("POST", "/admin/providers", {"base_url": "http://127.0.0.1:9/v1", "api_keys": ["sk-cccccccccc", "sk-cccccccccc"]}, 400, "api_keys"),
    ("POST", "/admin/providers", {"base_url": "http://127.0.0.1:9/v1", "api_keys": [f"sk-{i:010}" for i in range(17)]}, 400, "api_keys"),
    ("POST", "/admin/providers", {"base_url": "http://127.0.0.1:9/v1", "api_keys": ["sk with space"]}, 400, "api_keys"),
    ("POST", "/admin/providers", {"base_url": "http://127.0.0.1:9/v1", "api_keys": "sk-dddddddddd"}, 400, None),
    ("POST", "{p}/api_keys", {"api_key": ""}, 400, "api_key"),
    ("POST", "{p}/api_keys", {"api_key": "sk-eeeeeeeeee", "extra": 1}, 400, None),
    ("POST", "{p}/api_keys", {"api_key": "sk-ffffffffff-first"}, 409, None),
    ("PATCH", "{p}/api_keys/cred_nope", {"enabled": True}, 404, None),
    ("DELETE", "{p}/api_keys/cred_nope", None, 404, None),
    ("PATCH", "{p}/api_keys/{k}", {}, 400, None),
    ("PATCH", "{p}/api_keys/{k}", {"enabled": False}, 400, "enabled"),
    ("POST", "/admin/providers/kp-none/api_keys", {"api_key": "sk-gggggggggg"}, 404, None),
])
def test_a_bad_pool_change_is_a_clear_error(stack, method, path, body, want, param):
    pid = f"kp-{tag()}"
    made = stack.must("POST", "/admin/providers", {"id": pid, "base_url": "http://127.0.0.1:9/v1",
                                                   "api_key": "sk-ffffffffff-first"})
    path = path.replace("{p}", f"/admin/providers/{pid}").replace("{k}", made["api_keys"][0]["id"])
    status, _, answer = stack.admin(method, path, body)
    assert status == want, answer
    assert answer["error"]["message"]
    if param:
        assert answer["error"]["param"] == param
    assert "sk-ffffffffff-first" not in json.dumps(answer)
