"""Bad inputs as a suite: hundreds of hostile requests, table-driven through
real Envoy (and the control plane's admin API), in classes. Every case has
its expected status and error code; every answer must be an OpenAI error
body with `content-type: application/json`, arrive within a bound (no hang),
never be an unexpected 5xx, and leave the gateway healthy for the next
class. What reaches the upstream is counted: a refused request sends
nothing."""

from __future__ import annotations

import http.client
import json
import random
import string
from dataclasses import dataclass, field

import pytest

from .helpers import chat_body

# Every case must be answered within this many seconds.
BOUND_S = 10.0


@dataclass
class Case:
    name: str
    method: str
    path: str
    status: int
    code: str | None
    headers: list[tuple[str, bytes | str]] = field(default_factory=list)
    body: bytes | None = None
    # "gateway" (Envoy's listener) or "admin" (the control plane).
    target: str = "gateway"
    # The key to send: "demo" (valid), None, or a literal header list in `headers`.
    auth: str | None = "demo"


def send(stack, case: Case, key: str) -> tuple[int, dict, bytes]:
    port = stack.gateway_port if case.target == "gateway" else stack.control_plane_port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=BOUND_S)
    try:
        conn.putrequest(case.method, case.path, skip_accept_encoding=True, skip_host=False)
        if case.auth == "demo":
            conn.putheader("authorization", f"Bearer {key}")
        elif case.auth == "admin":
            conn.putheader("authorization", f"Bearer {stack.admin_token}")
        for name, value in case.headers:
            conn.putheader(name, value if isinstance(value, bytes) else value.encode("latin-1"))
        if case.body is not None:
            conn.putheader("content-type", "application/json")
            conn.putheader("content-length", str(len(case.body)))
        conn.endheaders(case.body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# --- the cases, by class -------------------------------------------------

CHAT = "/v1/chat/completions"
MODEL_ENDPOINTS = [CHAT, "/v1/completions", "/v1/embeddings", "/v1/responses"]


def auth_cases() -> list[Case]:
    rnd = random.Random(7)
    alphabet = string.ascii_letters + string.digits
    bad_keys: list[tuple[str, bytes | str]] = [
        ("empty", ""),
        ("space", " "),
        ("tg- only", "tg-"),
        ("sk- style", "sk-" + "a" * 48),
        ("short", "tg-abc"),
        ("64 KiB", "tg-" + "a" * 65_536),
        ("sql or", "' OR '1'='1"),
        ("sql union", "tg-x' UNION SELECT hash FROM keys--"),
        ("sql comment", "tg-abc'; DROP TABLE keys; --"),
        ("sql quote", "tg-\"abc\""),
        ("nul", "tg-abc\x00def"),
        ("latin-1", b"tg-caf\xe9"),
        ("non-utf8", b"\xff\xfe\xfd"),
        ("utf8 bom", b"\xef\xbb\xbftg-abc"),
        ("percent", "tg-%41%42%43"),
        ("unicode", "tg-\u00e9\u00e9".encode("utf-8")),
        ("tab", "tg-a\tb"),
        ("json", '{"key":"tg-abc"}'),
        ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"),
        ("long prefix", "tg-" + "Z" * 200),
    ]
    for i in range(20):
        n = rnd.randrange(30, 60)
        bad_keys.append((f"random look-alike {i}", "tg-" + "".join(rnd.choice(alphabet) for _ in range(n))))
    # Refused by Envoy's codec before any filter runs: a header over Envoy's
    # 60 KiB bound, and a NUL in a value.
    by_envoy = {"64 KiB": (431, None), "nul": (400, None)}
    cases = []
    for label, value in bad_keys:
        raw = value if isinstance(value, bytes) else value.encode("latin-1", "replace")
        status, code = by_envoy.get(label, (401, "invalid_api_key"))
        for path, method, body in ((CHAT, "POST", chat_body()), ("/v1/models", "GET", None)):
            cases.append(Case(f"auth: bearer {label} on {path}", method, path, status, code,
                              [("authorization", b"Bearer " + raw)], body, auth=None))
    for header in ("x-api-key", "api-key"):
        for label, value in bad_keys[:10]:
            raw = value if isinstance(value, bytes) else value.encode("latin-1", "replace")
            status, code = by_envoy.get(label, (401, "invalid_api_key"))
            cases.append(Case(f"auth: {header} {label}", "POST", CHAT, status, code,
                              [(header, raw)], chat_body(), auth=None))
    for label, value in [("no header", None), ("basic", "Basic dXNlcjpwYXNz"), ("bearer alone", "Bearer"),
                         ("token scheme", "Token tg-abc"), ("bearer bearer", "Bearer Bearer tg-abc")]:
        headers = [] if value is None else [("authorization", value)]
        cases.append(Case(f"auth: {label}", "POST", CHAT, 401, "invalid_api_key", headers, chat_body(), auth=None))
    return cases


def auth_cases_with_key(key: str) -> list[Case]:
    """Cases built from the valid key: near misses must not pass."""
    cases = []
    for i, pos in enumerate([3, 10, len(key) - 7, len(key) - 1]):
        flipped = key[:pos] + ("A" if key[pos] != "A" else "B") + key[pos + 1:]
        cases.append(Case(f"auth: one character changed at {pos}", "POST", CHAT, 401, "invalid_api_key",
                          [("authorization", f"Bearer {flipped}")], chat_body(), auth=None))
    for label, bad in [("truncated", key[:-1]), ("extended", key + "a"), ("doubled", key + key),
                       ("upper-cased", key.upper()), ("prefix changed", "xx" + key[2:])]:
        cases.append(Case(f"auth: key {label}", "POST", CHAT, 401, "invalid_api_key",
                          [("authorization", f"Bearer {bad}")], chat_body(), auth=None))
    cases.append(Case("auth: two authorization headers", "POST", CHAT, 401, "invalid_api_key",
                      [("authorization", f"Bearer {key}"), ("authorization", "Bearer tg-other")], chat_body(),
                      auth=None))
    for q in ("api_key", "key", "API_KEY"):
        cases.append(Case(f"auth: the key in the query ({q})", "POST", f"{CHAT}?{q}={key}", 400, "invalid_request",
                          [], chat_body(), auth=None))
    return cases


def json_cases() -> list[Case]:
    bodies: list[tuple[str, bytes, int, str]] = [
        ("empty", b"", 400, "invalid_request"),
        ("spaces", b"   ", 400, "invalid_request"),
        ("open brace", b"{", 400, "invalid_request"),
        ("not json", b"not json", 400, "invalid_request"),
        ("array", b"[1,2]", 400, "invalid_request"),
        ("string", b'"model"', 400, "invalid_request"),
        ("number", b"5", 400, "invalid_request"),
        ("null", b"null", 400, "invalid_request"),
        ("bom", b'\xef\xbb\xbf{"model":"demo-chat"}', 400, "invalid_request"),
        ("non-utf8 model", b'{"model":"demo\xff"}', 400, "invalid_request"),
        ("non-utf8 content", b'{"model":"demo-chat","messages":[{"role":"user","content":"\xc3"}]}', 400,
         "invalid_request"),
        ("no model", b'{"messages":[]}', 400, "invalid_request"),
        ("model number", b'{"model":5}', 400, "invalid_request"),
        ("model null", b'{"model":null}', 400, "invalid_request"),
        ("model empty", b'{"model":""}', 400, "invalid_request"),
        ("model array", b'{"model":["demo-chat"]}', 400, "invalid_request"),
        ("model object", b'{"model":{"id":"demo-chat"}}', 400, "invalid_request"),
        ("model true", b'{"model":true}', 400, "invalid_request"),
        ("model 1e400", b'{"model":1e400}', 400, "invalid_request"),
        ("stream string", b'{"model":"demo-chat","stream":"true"}', 400, "invalid_request"),
        ("stream number", b'{"model":"demo-chat","stream":1}', 400, "invalid_request"),
        ("stream object", b'{"model":"demo-chat","stream":{}}', 400, "invalid_request"),
        ("two models", b'{"model":"demo-chat","model":"other"}', 400, "invalid_request"),
        ("two streams", b'{"model":"demo-chat","stream":false,"stream":true}', 400, "invalid_request"),
        ("escaped duplicate", b'{"model":"demo-chat","\\u006dodel":"other"}', 400, "invalid_request"),
        ("trailing garbage", b'{"model":"demo-chat"} x', 400, "invalid_request"),
        ("two objects", b'{"model":"demo-chat"}{"model":"x"}', 400, "invalid_request"),
        ("trailing comma", b'{"model":"demo-chat",}', 400, "invalid_request"),
        ("single quotes", b"{'model':'demo-chat'}", 400, "invalid_request"),
        ("comment", b'{"model":"demo-chat"/* x */}', 400, "invalid_request"),
        ("lone surrogate key", b'{"model":"demo-chat","\\ud800":1}', 400, "invalid_request"),
        ("max_tokens negative", b'{"model":"demo-chat","max_tokens":-1}', 400, "invalid_request"),
        ("max_tokens string", b'{"model":"demo-chat","max_tokens":"5"}', 400, "invalid_request"),
        ("max_tokens fraction", b'{"model":"demo-chat","max_tokens":1.5}', 400, "invalid_request"),
        ("max_completion_tokens huge", b'{"model":"demo-chat","max_completion_tokens":1e30}', 400,
         "invalid_request"),
        ("stream_options array", b'{"model":"demo-chat","stream_options":[]}', 400, "invalid_request"),
        ("include_usage string", b'{"model":"demo-chat","stream_options":{"include_usage":"yes"}}', 400,
         "invalid_request"),
        ("unknown model", b'{"model":"no-such-model"}', 404, "model_not_found"),
        ("unknown model, case", b'{"model":"DEMO-CHAT"}', 404, "model_not_found"),
        ("unknown model, space", b'{"model":"demo-chat "}', 404, "model_not_found"),
        ("unknown model, slash", b'{"model":"../demo-chat"}', 404, "model_not_found"),
        ("unknown model, long", b'{"model":"' + b"m" * 10_000 + b'"}', 404, "model_not_found"),
        ("257 keys", json.dumps({"model": "demo-chat", **{f"k{i}": 0 for i in range(256)}}).encode(), 400,
         "invalid_request"),
        ("depth 129", b'{"model":"demo-chat","x":' + b"[" * 128 + b"]" * 128 + b"}", 400, "invalid_request"),
        ("depth 100000", b'{"model":"demo-chat","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400,
         "invalid_request"),
        ("unclosed string", b'{"model":"demo-chat', 400, "invalid_request"),
        ("bad escape", b'{"model":"demo\\x"}', 400, "invalid_request"),
        ("over 4 MiB", b'{"model":"demo-chat","x":"' + b"a" * (4 * 1024 * 1024) + b'"}', 413,
         "request_too_large"),
    ]
    # Every proper prefix of a valid body is truncated JSON.
    valid = chat_body()
    for cut in range(1, len(valid), 3):
        bodies.append((f"truncated at {cut}", valid[:cut], 400, "invalid_request"))
    cases = []
    for path in MODEL_ENDPOINTS:
        for label, body, status, code in bodies:
            if path != CHAT and label.startswith("truncated") and int(label.split()[-1]) % 9:
                continue  # every prefix on chat, a third of them elsewhere
            cases.append(Case(f"json: {label} on {path}", "POST", path, status, code, [], body))
    return cases


def path_cases() -> list[Case]:
    cases = []
    for path in ["/", "/v1", "/v1/", "/v2/chat/completions", "/v1/chat", "/v1/chat/completions/x",
                 "/v1/engines", "/v1/files", "/v1/fine_tuning/jobs", "/v1/audio/speech", "/internal/config",
                 "/internal/usage", "/internal/leases", "/admin/keys", "/admin/accounts", "/metrics",
                 "/api", "/api/status/x", "/favicon.ico", "/.env", "/v1/chat/completions.json",
                 "/V1/CHAT/COMPLETIONS", "/v1/Chat/Completions", "/internal", "/admin"]:
        for method in ("GET", "POST"):
            body = chat_body() if method == "POST" else None
            cases.append(Case(f"paths: {method} {path}", method, path, 404, "not_found", [], body))
    for path in MODEL_ENDPOINTS + ["/v1/images/generations"]:
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            cases.append(Case(f"paths: {method} {path}", method, path, 405, "method_not_allowed"))
    for path in ["/v1/models", "/v1/usage", "/v1/models/demo-chat"]:
        for method in ("POST", "PUT", "DELETE"):
            cases.append(Case(f"paths: {method} {path}", method, path, 405, "method_not_allowed", [], b"{}"))
    for mid in ["no-such-model", "demo-chat-x", "..", "%2e%2e", "a" * 300]:
        cases.append(Case(f"paths: GET /v1/models/{mid[:20]}", "GET", f"/v1/models/{mid}", 404, None))
    return cases


def stream_cases() -> list[Case]:
    cases = []
    for label, extra, status, code in [
        ("stream string", {"stream": "yes"}, 400, "invalid_request"),
        ("stream_options number", {"stream": True, "stream_options": 5}, 400, "invalid_request"),
        ("include_usage number", {"stream": True, "stream_options": {"include_usage": 1}}, 400,
         "invalid_request"),
        ("unknown model", {"stream": True, "model": "nope"}, 404, "model_not_found"),
    ]:
        body = json.loads(chat_body())
        body.update(extra)
        for path in (CHAT, "/v1/completions", "/v1/responses"):
            cases.append(Case(f"streams: {label} on {path}", "POST", path, status, code, [],
                              json.dumps(body).encode()))
    for bad in ("600", "999", "0999"):
        body = json.dumps({**json.loads(chat_body()), "stream": True}).encode()
        cases.append(Case(f"streams: upstream status {bad}", "POST", CHAT, 502, "upstream_error",
                          [("x-mock-status", bad)], body))
    return cases


def admin_cases() -> list[Case]:
    cases = []
    for label, auth, headers in [("no token", None, []), ("wrong token", None, [("authorization", "Bearer nope")]),
                                 ("basic", None, [("authorization", "Basic YWRtaW46YWRtaW4=")]),
                                 ("non-utf8", None, [("authorization", b"Bearer \xff")])]:
        for path in ("/admin/keys", "/admin/accounts", "/admin/providers", "/admin/models", "/admin/usage"):
            cases.append(Case(f"admin: {label} on {path}", "GET", path, 401, None, headers, target="admin",
                              auth=auth))
    bad_bodies = [("empty", b""), ("not json", b"nope"), ("array", b"[]"), ("string", b'"x"'),
                  ("wrong types", b'{"name":5}'), ("truncated", b'{"name":'), ("null", b"null")]
    for resource in ("accounts", "keys", "providers", "models"):
        for label, body in bad_bodies:
            cases.append(Case(f"admin: POST /admin/{resource} {label}", "POST", f"/admin/{resource}", 400, None, [],
                              body, target="admin", auth="admin"))
        for method in ("GET", "PATCH", "DELETE"):
            body = b"{}" if method == "PATCH" else None
            cases.append(Case(f"admin: {method} unknown {resource}", method, f"/admin/{resource}/nope-404", 404,
                              None, [], body, target="admin", auth="admin"))
    return cases


CLASSES = ["auth", "json", "paths", "streams", "admin"]


def cases_of(cls: str, key: str) -> list[Case]:
    return {
        "auth": lambda: auth_cases() + auth_cases_with_key(key),
        "json": json_cases,
        "paths": path_cases,
        "streams": stream_cases,
        "admin": admin_cases,
    }[cls]()


def check(stack, case: Case, key: str) -> str | None:
    """None when the answer is what the case expects; else what was wrong."""
    try:
        status, headers, body = send(stack, case, key)
    except (TimeoutError, OSError, http.client.HTTPException) as e:
        return f"no answer within {BOUND_S} s: {e!r}"
    problems = []
    if status != case.status:
        problems.append(f"status {status}, wanted {case.status}")
    if case.method != "HEAD":
        if not headers.get("content-type", "").startswith("application/json"):
            problems.append(f"content-type {headers.get('content-type')!r}")
        try:
            err = json.loads(body)["error"]
            assert isinstance(err["message"], str) and err["message"]
            assert isinstance(err["type"], str)
            assert "param" in err and "code" in err
            if case.code is not None and err["code"] != case.code:
                problems.append(f"code {err['code']!r}, wanted {case.code!r}")
        except Exception:  # noqa: BLE001 - any shape error is the finding
            problems.append(f"not an OpenAI error body: {body[:120]!r}")
    if case.target == "gateway" and "x-request-id" not in headers and case.code is not None:
        problems.append("no x-request-id")
    return "; ".join(problems) or None


def healthy(stack, key: str) -> None:
    status, _, _ = send(stack, Case("health", "GET", "/v1/models", 200, None), key)
    assert status == 200
    status, _, body = send(stack, Case("health", "POST", CHAT, 200, None, [], chat_body()), key)
    assert status == 200, body


def test_the_suite_has_at_least_300_cases(key):
    total = sum(len(cases_of(c, key)) for c in CLASSES)
    assert total >= 300, total


@pytest.mark.parametrize("cls", CLASSES)
def test_bad_inputs_get_their_documented_answer(stack, key, ledger, cls):
    cases = cases_of(cls, key)
    wrong = {}
    for case in cases:
        problem = check(stack, case, key)
        if problem:
            wrong[case.name] = problem
    unexpected_5xx = [n for n, p in wrong.items() if p.startswith("status 5")]
    assert not wrong, f"{len(wrong)} of {len(cases)} {cls} cases wrong ({len(unexpected_5xx)} unexpected 5xx):\n" + \
        "\n".join(f"  {n}: {p}" for n, p in list(wrong.items())[:40])
    # Nothing refused reached the upstream (the only upstream calls of a
    # class are the 502s of invalid upstream statuses, which it answered).
    reached = [e for e in ledger() if e.get("headers", {}).get("x-mock-status") is None]
    assert reached == [], reached[:3]
    healthy(stack, key)
