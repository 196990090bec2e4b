"""Model groups through Envoy: a key of a group's account sees only the
group's models in /v1/models and the catalog, is answered 404
model_not_found for the others (seed 004: they are not there for it), a
key's own list refuses the group's other models with 403 model_not_allowed
(seed 000), and a change of the group reaches every worker
within a couple of seconds; a key's own list narrows the group's set; the
group's limits are defaults for its keys."""

from __future__ import annotations

import json
import time

from .helpers import chat_body, new_account, new_key, raw, until_every_worker

EMBED = b'{"model":"demo-embed","input":"x"}'


def _models(stack, key: str, path: str = "/v1/models") -> list[str]:
    status, _, body = raw(stack, "GET", path, [("authorization", f"Bearer {key}")])
    assert status == 200, body
    return sorted(m["id"] for m in json.loads(body)["data"])


def _error(answer) -> tuple[int, str | None]:
    status, _, body = answer
    return status, (json.loads(body)["error"]["code"] if status >= 400 else None)


def test_a_groups_keys_see_and_use_only_its_models_and_changes_apply_live(stack, ledger, record):
    group = stack.must("POST", "/admin/groups", {"name": "chat team", "models": ["demo-chat"]})
    account = new_account(stack, "grouped", group_id=group["id"])
    assert account["group_id"] == group["id"]
    key = new_key(stack, account["id"])["key"]
    narrow = new_key(stack, account["id"], models=["demo-chat", "demo-embed"])["key"]
    auth = [("authorization", f"Bearer {key}"), ("content-type", "application/json")]

    assert _models(stack, key) == ["demo-chat"]
    assert _models(stack, key, "/v1/models/catalog") == ["demo-chat"]
    # The key's own list is narrowed by the group: demo-embed is not in it.
    assert _models(stack, narrow) == ["demo-chat"]
    assert _error(raw(stack, "POST", "/v1/embeddings", auth, EMBED)) == (404, "model_not_found")
    assert _error(raw(stack, "POST", "/v1/chat/completions", auth, chat_body())) == (200, None)
    assert [e["path"] for e in ledger()] == ["/v1/chat/completions"]
    # A key whose own list leaves out one of the group's models: 403.
    chat_only = new_key(stack, account["id"], models=["demo-chat"])["key"]
    stack.must("PATCH", f"/admin/groups/{group['id']}", {"models": ["demo-chat", "demo-embed"]})
    until_every_worker(stack, key, 200, "/v1/embeddings", EMBED, timeout=3.0)
    assert _error(raw(stack, "POST", "/v1/embeddings", [("authorization", f"Bearer {chat_only}")], EMBED)) \
        == (403, "model_not_allowed")
    stack.must("PATCH", f"/admin/groups/{group['id']}", {"models": ["demo-chat"]})
    until_every_worker(stack, key, 404, "/v1/embeddings", EMBED, timeout=3.0)

    # The group now enables embeddings only: every worker follows.
    stack.must("PATCH", f"/admin/groups/{group['id']}", {"models": ["demo-embed"]})
    took = until_every_worker(stack, key, 200, "/v1/embeddings", EMBED, timeout=3.0)
    until_every_worker(stack, key, 404, body=chat_body(), timeout=3.0)
    record("group_change_applied_s", took, db="postgres" if stack.database_url else "sqlite")
    assert took < 2.0, took
    assert _models(stack, key) == ["demo-embed"]
    assert _models(stack, narrow) == ["demo-embed"]

    # The group's rpm is a default: 0 pauses its keys (429), a key's own
    # limit wins over it.
    stack.must("PATCH", f"/admin/groups/{group['id']}", {"rpm": 0})
    until_every_worker(stack, key, 429, "/v1/embeddings", EMBED, timeout=3.0)
    own = new_key(stack, account["id"], rpm=1000)["key"]
    assert _error(raw(stack, "POST", "/v1/embeddings", [("authorization", f"Bearer {own}")], EMBED)) == (200, None)

    # A group with an account in it stays; out of the group, every model.
    status, _, body = stack.admin("DELETE", f"/admin/groups/{group['id']}")
    assert status == 409, body
    stack.must("PATCH", f"/admin/accounts/{account['id']}", {"group_id": None})
    # Every model of the catalog again (other tests' models too: a superset).
    every = {"demo-chat", "demo-embed", "demo-image"}
    deadline = time.monotonic() + 3
    while not every <= set(_models(stack, key)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert every <= set(_models(stack, key))
    until_every_worker(stack, key, 200, body=chat_body(), timeout=3.0)
    assert stack.admin("DELETE", f"/admin/groups/{group['id']}")[0] == 204


def test_bad_group_input_is_a_400_naming_the_field(stack):
    for body, param in [
        ({"name": "g", "models": ["no-such-model"]}, "models"),
        ({"name": "g", "models": "demo-chat"}, None),
        ({"name": "g", "models": [], "tpm": -1}, None),
    ]:
        status, _, answer = stack.admin("POST", "/admin/groups", body)
        assert status == 400, (body, answer)
        assert answer["error"]["type"] == "invalid_request_error", answer
        if param:
            assert answer["error"]["param"] == param, answer
    status, _, answer = stack.admin("POST", "/admin/accounts", {"name": "a", "group_id": "grp_none"})
    assert (status, answer["error"]["param"]) == (400, "group_id"), answer
