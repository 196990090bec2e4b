"""The dashboard over plain HTTP: its files and headers, sessions (cookie
attributes, CSRF on every change, sign out, expiry on a short-TTL stack), a
key holder's session kept off the admin API and other accounts, and the key
holders' own data (`/v1/me`, the legacy billing routes) through real Envoy
with the key."""

from __future__ import annotations

import http.client
import json
import time

import pytest

from .browser import session_http
from .helpers import chat_body, ingest, new_account, new_key, raw, stackmod, tag, wait_for_key


def sign_in(stack, token: str, base: str | None = None):
    """(status, headers, body) of a sign-in."""
    return stackmod.http("POST", f"{base or stack.control_plane}/ui/api/session", {"token": token})


def session(stack, token: str, base: str | None = None) -> tuple[str, str]:
    """A signed-in session: (the Cookie header, the CSRF token)."""
    status, headers, body = sign_in(stack, token, base)
    assert status == 201, body
    return headers["set-cookie"].split(";")[0], body["csrf_token"]


def test_the_dashboard_is_served_from_the_binary_with_its_headers(stack):
    conn = http.client.HTTPConnection("127.0.0.1", stack.control_plane_port, timeout=10)
    conn.request("GET", "/")
    resp = conn.getresponse()
    assert (resp.status, resp.getheader("location")) == (303, "/ui/")
    conn.close()
    status, headers, body = stackmod.http("GET", f"{stack.control_plane}/ui/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"<script type=\"module\" src=\"/ui/js/app.js\"></script>" in body
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    for path, kind in (("/ui/js/app.js", "text/javascript"), ("/ui/app.css", "text/css"),
                       ("/ui/vendor/uPlot.iife.min.js", "text/javascript")):
        status, headers, _ = stackmod.http("GET", f"{stack.control_plane}{path}")
        assert status == 200 and headers["content-type"].startswith(kind), path
        assert headers["cache-control"] == "no-cache", path
    status, _, body = stackmod.http("GET", f"{stack.control_plane}/ui/js/nothing.js")
    assert status == 404 and body["error"]["code"] == "not_found"
    # The JSON API keeps no-store.
    assert stackmod.http("GET", f"{stack.control_plane}/api/status")[1]["cache-control"] == "no-store"


def test_an_operator_session_is_a_strict_http_only_cookie_and_every_change_needs_its_csrf_token(stack):
    status, headers, body = sign_in(stack, stack.admin_token)
    assert status == 201 and body["kind"] == "operator" and len(body["csrf_token"]) >= 20
    cookie = headers["set-cookie"]
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="):
        assert attr in cookie, cookie
    assert "Secure" not in cookie  # plain HTTP here
    # Behind a TLS front that says so, the cookie is Secure (sign-in and sign-out).
    for proto in ({"x-forwarded-proto": "https"}, {"forwarded": "for=10.0.0.1;proto=https"}):
        status, tls_headers, tls_body = stackmod.http("POST", f"{stack.control_plane}/ui/api/session",
                                                      {"token": stack.admin_token}, proto)
        assert status == 201 and "; Secure" in tls_headers["set-cookie"], tls_headers
        jar_tls = tls_headers["set-cookie"].split(";")[0]
        status, out, _ = session_http(stack, "DELETE", "/ui/api/session", jar_tls, csrf=tls_body["csrf_token"])
        assert status == 204 and "Secure" not in out["set-cookie"]  # this sign-out came over plain HTTP
    status, http_headers, _ = stackmod.http("POST", f"{stack.control_plane}/ui/api/session",
                                            {"token": stack.admin_token}, {"x-forwarded-proto": "http"})
    assert status == 201 and "Secure" not in http_headers["set-cookie"]
    jar, csrf = cookie.split(";")[0], body["csrf_token"]
    # Reads need no CSRF token.
    status, _, keys = session_http(stack, "GET", "/admin/keys", jar)
    assert status == 200 and keys["object"] == "list"
    # A change without the token, or with another session's, is refused.
    _, other_csrf = session(stack, stack.admin_token)
    for token in (None, "", "wrong", other_csrf):
        status, _, err = session_http(stack, "POST", "/admin/accounts", jar, {"name": f"csrf-{tag()}"}, csrf=token)
        assert status == 403 and err["error"]["code"] == "csrf_failed", (token, err)
    status, _, made = session_http(stack, "POST", "/admin/accounts", jar, {"name": f"csrf-{tag()}"}, csrf=csrf)
    assert status == 201 and made["object"] == "account"
    # A bad admin bearer is not rescued by a good cookie.
    status, _, _ = stackmod.http("GET", f"{stack.control_plane}/admin/keys",
                                 headers={"cookie": jar, "authorization": "Bearer nope"})
    assert status == 401
    # Sign out needs the token too, then the session is gone.
    assert session_http(stack, "DELETE", "/ui/api/session", jar)[0] == 403
    status, headers, _ = session_http(stack, "DELETE", "/ui/api/session", jar, csrf=csrf)
    assert status == 204 and "Max-Age=0" in headers["set-cookie"]
    assert session_http(stack, "GET", "/admin/keys", jar)[0] == 401
    assert session_http(stack, "GET", "/ui/api/session", jar)[2]["kind"] is None


def test_bad_sign_ins_are_refused_in_the_openai_shape(stack, account):
    revoked = new_key(stack, account["id"])
    stack.must("DELETE", f"/admin/keys/{revoked['id']}")
    for token in ("", "nope", stack.admin_token + "x", "tg-" + "a" * 40, revoked["key"]):
        status, _, body = sign_in(stack, token)
        assert status == 401 and body["error"]["code"] == "invalid_api_key", token[:8]
    status, _, body = stackmod.http("POST", f"{stack.control_plane}/ui/api/session", b"token=x",
                                    {"content-type": "application/x-www-form-urlencoded"})
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    status, _, body = stackmod.http("POST", f"{stack.control_plane}/ui/api/session", {"token": "x", "extra": 1})
    assert status == 400 and body["error"]["message"]


def test_a_key_holder_session_reaches_only_its_own_account(stack):
    mine = new_account(stack, f"mine-{tag()}", balance_usd=3)
    other = new_account(stack, f"other-{tag()}", balance_usd=50)
    created = new_key(stack, mine["id"], rpm=10)
    other_key = new_key(stack, other["id"])
    jar, csrf = session(stack, created["key"])
    assert session_http(stack, "GET", "/ui/api/session", jar)[2]["account_id"] == mine["id"]
    for method, path in (("GET", "/admin/keys"), ("GET", f"/admin/accounts/{other['id']}"),
                         ("GET", f"/admin/accounts/{mine['id']}"), ("GET", "/admin/usage"),
                         ("POST", f"/admin/accounts/{mine['id']}/credit"), ("DELETE", f"/admin/keys/{other_key['id']}")):
        status, _, body = session_http(stack, method, path, jar, {"amount_usd": 100} if method == "POST" else None, csrf=csrf)
        assert status == 403 and body["error"]["code"] == "permission_denied", (method, path, body)
    assert stack.must("GET", f"/admin/accounts/{mine['id']}")["balance_usd"] == 3
    assert not stack.must("GET", f"/admin/keys/{other_key['id']}")["revoked"]
    status, _, me = session_http(stack, "GET", "/v1/me", jar)
    assert status == 200 and me["account"]["id"] == mine["id"] and me["key"]["id"] == created["id"]
    assert other["id"] not in str(me)
    # The usage list is the caller's account's; it takes no account to choose.
    status, _, body = session_http(stack, "GET", f"/v1/usage?account_id={other['id']}", jar)
    assert status == 400
    # An operator session is not a key holder's: no /v1/me for it.
    op, _ = session(stack, stack.admin_token)
    assert session_http(stack, "GET", "/v1/me", op)[0] == 401
    # Revoking the key ends its session at once.
    stack.must("DELETE", f"/admin/keys/{created['id']}")
    assert session_http(stack, "GET", "/v1/me", jar)[0] == 401


def test_v1_me_and_the_billing_routes_through_envoy_with_the_key(stack):
    account = new_account(stack, f"billing-{tag()}", balance_usd=10, rpm=100)
    created = new_key(stack, account["id"], rpm=5, tpm=10000, budget_usd=4, models=["demo-chat"])
    key = created["key"]
    auth = [("authorization", f"Bearer {key}")]
    for _ in range(2):
        assert raw(stack, "POST", "/v1/chat/completions", auth, chat_body())[0] == 200
    stackmod.wait_until(lambda: len(stack.must("GET", f"/admin/usage?key_id={created['id']}")["data"]) == 2,
                        what="the two usage records")
    status, _, body = raw(stack, "GET", "/v1/me", auth)
    assert status == 200
    me = json.loads(body)
    assert me["object"] == "me" and me["key"]["id"] == created["id"] and me["account"]["id"] == account["id"]
    assert me["models"] == ["demo-chat"]
    assert me["limits_now"]["key"]["rpm"] == {"limit": 5, "used": 2, "remaining": 3}
    assert me["limits_now"]["account"]["rpm"]["used"] == 2
    tpm = me["limits_now"]["key"]["tpm"]
    assert tpm["limit"] == 10000 and tpm["used"] > 0 and tpm["remaining"] == 10000 - tpm["used"]
    spent = me["key"]["spent_usd"]
    assert spent > 0 and me["key"]["budget_remaining_usd"] == pytest.approx(4 - spent)
    assert me["account"]["balance_usd"] == pytest.approx(10 - spent)

    # The key's budget ($4) binds before the account's $10: that is the limit.
    status, _, body = raw(stack, "GET", "/v1/dashboard/billing/subscription", auth)
    sub = json.loads(body)
    assert status == 200 and sub["object"] == "billing_subscription" and sub["has_payment_method"] is True
    assert sub["hard_limit_usd"] == sub["soft_limit_usd"] == sub["system_hard_limit_usd"] == 4
    assert sub["access_until"] == 0
    status, _, body = raw(stack, "GET", "/v1/dashboard/billing/usage", auth)
    usage = json.loads(body)
    assert status == 200 and usage["total_usage"] == pytest.approx(spent * 100)
    assert sub["hard_limit_usd"] - usage["total_usage"] / 100 == pytest.approx(me["key"]["budget_remaining_usd"])
    # The account's own summary through Envoy with the key: its two requests.
    status, _, body = raw(stack, "GET", f"/v1/usage/summary?group_by=hour&since={int(time.time()) - 7200}", auth)
    summary = json.loads(body)
    assert status == 200, body
    assert summary["total"]["requests"] == 2 and sum(r["requests"] for r in summary["data"]) == 2
    assert summary["total"]["cost_usd"] == pytest.approx(spent)
    status, _, body = raw(stack, "GET", "/v1/usage/summary?group_by=account", auth)
    assert status == 400 and json.loads(body)["error"]["param"] == "group_by"
    # Dates (UTC, the end exclusive): today's records are in [today, tomorrow)
    # and not in [yesterday, today).
    day = 86400
    today = time.strftime("%Y-%m-%d", time.gmtime())
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + day))
    yesterday = time.strftime("%Y-%m-%d", time.gmtime(time.time() - day))
    for query, want in ((f"start_date={today}&end_date={tomorrow}", spent * 100),
                        (f"start_date={yesterday}&end_date={today}", 0), (f"start_date={tomorrow}", 0),
                        (f"end_date={tomorrow}", spent * 100)):
        status, _, body = raw(stack, "GET", f"/v1/dashboard/billing/usage?{query}", auth)
        assert status == 200 and json.loads(body)["total_usage"] == pytest.approx(want), (query, body)
    for query, param in (("start_date=2026-02-30", "start_date"), ("end_date=12/31/2026", "end_date"),
                         (f"start_date={today}&end_date={today}", "end_date")):
        status, _, body = raw(stack, "GET", f"/v1/dashboard/billing/usage?{query}", auth)
        error = json.loads(body)["error"]
        assert status == 400 and error["type"] == "invalid_request_error" and error["param"] == param, (query, body)

    # Without the budget, the account's money is the limit: balance + spent.
    stack.must("PATCH", f"/admin/keys/{created['id']}", {"budget_usd": None})
    stackmod.wait_until(lambda: json.loads(raw(stack, "GET", "/v1/dashboard/billing/subscription", auth)[2])["hard_limit_usd"]
                        == pytest.approx(10), what="the account's limit")
    # No key, or someone else's headers: refused by the filter in the OpenAI shape.
    for headers in ([], [("authorization", "Bearer tg-nope")], [("x-tollgate-account-id", account["id"])]):
        for path in ("/v1/me", "/v1/dashboard/billing/subscription", "/v1/dashboard/billing/usage"):
            status, _, body = raw(stack, "GET", path, headers)
            assert status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key", path
    status, _, body = raw(stack, "POST", "/v1/me", auth, b"{}")
    assert status == 405


def test_the_billing_usage_counts_the_records_of_the_days_asked(stack):
    """Records on two UTC days, three days apart: each date range counts the
    cost of its own days' records (the end date exclusive)."""
    account = new_account(stack, f"dates-{tag()}", balance_usd=5)
    key = stack.must("POST", "/admin/keys", {"name": "dates", "account_id": account["id"]})
    auth = [("authorization", f"Bearer {key['key']}")]
    day_ms = 86_400_000
    now_ms = int(time.time() * 1000)
    # $0.25 at noon UTC three days ago, $0.10 now.
    old_ms = (now_ms // day_ms - 3) * day_ms + day_ms // 2
    ingest(stack, key, old_ms, cost_nanos=250_000_000)
    ingest(stack, key, now_ms, cost_nanos=100_000_000)
    stackmod.wait_until(lambda: len(stack.must("GET", f"/admin/usage?key_id={key['id']}")["data"]) == 2,
                        what="the two records")
    wait_for_key(stack, key["key"])

    def date(ms: int) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))

    old, today = date(old_ms), date(now_ms)
    after_old, tomorrow = date(old_ms + day_ms), date(now_ms + day_ms)
    for query, cents in (("", 35), (f"start_date={old}&end_date={after_old}", 25),
                         (f"start_date={after_old}&end_date={tomorrow}", 10), (f"start_date={old}&end_date={tomorrow}", 35),
                         (f"start_date={today}", 10), (f"end_date={today}", 25), (f"end_date={old}", 0),
                         (f"start_date={after_old}&end_date={today}", 0)):
        status, _, body = raw(stack, "GET", f"/v1/dashboard/billing/usage?{query}", auth)
        assert status == 200 and json.loads(body)["total_usage"] == pytest.approx(cents), (query, body)
    # The account's money binds (no key budget): $5 in all, $4.65 left.
    status, _, body = raw(stack, "GET", "/v1/dashboard/billing/subscription", auth)
    assert status == 200 and json.loads(body)["hard_limit_usd"] == pytest.approx(5), body
    for query, param in (("start_date=yesterday", "start_date"), ("end_date=2026-13-01", "end_date"),
                         (f"start_date={today}&end_date={old}", "end_date"), ("start_date=2026-1-05", "start_date"),
                         ("since=2026-01-01", None)):
        status, _, body = raw(stack, "GET", f"/v1/dashboard/billing/usage?{query}", auth)
        error = json.loads(body)["error"]
        assert status == 400 and error["type"] == "invalid_request_error", (query, body)
        if param:
            assert error["param"] == param and param in error["message"], (query, body)


@pytest.fixture(scope="module")
def short_sessions(tmp_path_factory):
    """A stack of its own (SQLite) whose dashboard sessions live 2 s."""
    s = stackmod.Stack(work_dir=tmp_path_factory.mktemp("short-sessions"),
                       control_plane_extra_env={"TOLLGATE_UI_SESSION_TTL": "2s"})
    with s.running():
        yield s


def test_a_session_expires_after_its_ttl(short_sessions):
    s = short_sessions
    status, headers, body = sign_in(s, s.admin_token)
    assert status == 201 and "Max-Age=2" in headers["set-cookie"] and body["expires_in"] <= 2
    jar = headers["set-cookie"].split(";")[0]
    assert session_http(s, "GET", "/admin/keys", jar)[0] == 200
    key = s.demo["key"]["key"]
    holder, _ = session(s, key)
    assert session_http(s, "GET", "/v1/me", holder)[0] == 200
    time.sleep(2.3)
    assert session_http(s, "GET", "/admin/keys", jar)[0] == 401
    assert session_http(s, "GET", "/v1/me", holder)[0] == 401
    assert session_http(s, "GET", "/ui/api/session", jar)[2]["kind"] is None


def test_every_dashboard_module_parses(tmp_path):
    """Each ES module of the dashboard parses (Node's own parser, as an .mjs
    copy): a syntax error shows here, not as a page that never renders."""
    import shutil
    import subprocess

    node = shutil.which("node")
    assert node, "node is needed for this check (the Node SDK test uses it too)"
    modules = sorted((stackmod.ROOT / "control-plane" / "ui" / "js").glob("*.js"))
    assert len(modules) >= 10, modules
    for js in modules:
        copy = tmp_path / (js.stem + ".mjs")
        copy.write_bytes(js.read_bytes())
        done = subprocess.run([node, "--check", str(copy)], capture_output=True, text=True)
        assert done.returncode == 0, f"{js.name}: {done.stderr}"
    broken = tmp_path / "broken.mjs"
    broken.write_text('export const x = f(1));\n')
    assert subprocess.run([node, "--check", str(broken)], capture_output=True).returncode != 0
