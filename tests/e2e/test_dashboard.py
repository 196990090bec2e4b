"""The dashboard in real Chromium (Debian's, under Playwright) against the
real stack: every page renders without console errors (screenshots saved as
artefacts), a key created in the UI works through Envoy with the openai SDK
and gets 401 within a second of its revocation in the UI, limits and the
model allowlist edited in the UI are enforced, a top-up in the UI restores a
402'd account, a key holder cannot open operator pages, XSS payloads show
as text, and inline script does not run under the CSP."""

from __future__ import annotations

import time

import openai
import pytest
from openai import OpenAI

from .browser import KEY_HOLDER_PAGES, OPERATOR_PAGES
from .helpers import chat_body, new_account, new_key, raw, stackmod, tag, until_every_worker, wait_for_key


def chat(stack, key: str, model: str = "demo-chat", **extra) -> int:
    return raw(stack, "POST", "/v1/chat/completions", [("authorization", f"Bearer {key}")],
               chat_body(model, **extra))[0]


def sdk(stack, key: str) -> OpenAI:
    return OpenAI(base_url=f"{stack.gateway}/v1", api_key=key, max_retries=0)


def test_every_page_renders_without_console_errors(stack, ui, account):
    created = new_key(stack, account["id"], "pages")
    for _ in range(3):
        assert chat(stack, created["key"]) == 200
    stream = sdk(stack, created["key"]).chat.completions.create(
        model="demo-chat", messages=[{"role": "user", "content": "hi"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    stackmod.wait_until(lambda: stack.must("GET", f"/admin/usage?key_id={created['id']}")["data"],
                        what="usage records")
    ui.sign_in(stack.admin_token)
    for name in OPERATOR_PAGES:
        ui.open(name)
        if name in ("overview", "accounts"):
            ui.page.wait_for_timeout(300)  # the charts draw after uPlot loads
        assert ui.page.locator("main h1").first.inner_text()
        ui.screenshot(name)
    ui.open("keys")
    # Beyond page 1 on a busy stack. The search's answer is awaited: its
    # request left after the sign-out below would be a 401 in the console.
    with ui.page.expect_response(lambda r: "/admin/keys?" in r.url and "search=" in r.url):
        ui.page.get_by_label("Search keys").fill(created["id"])
    stackmod.wait_until(lambda: ui.page.locator("main table tbody tr").count() == 1, what="the one key found")
    ui.page.get_by_role("button", name=f"Usage of {created['id']}").click()
    ui.page.locator("main .chart canvas").first.wait_for()
    ui.screenshot("key-usage")
    ui.page.get_by_role("button", name="Sign out").click()
    ui.page.get_by_label("Admin token or API key").wait_for()
    ui.screenshot("sign-in")

    ui.sign_in(created["key"])
    for name in KEY_HOLDER_PAGES:
        ui.open(name)
        assert ui.page.locator("main h1").first.inner_text()
        ui.screenshot(f"key-holder-{name}")
    assert ui.errors == [], ui.errors


def test_a_key_created_in_the_ui_works_through_envoy_and_is_refused_within_a_second_of_its_revocation(stack, ui, account, record):
    name = f"ui-{tag()}"
    ui.sign_in(stack.admin_token)
    ui.open("keys")
    ui.page.get_by_role("button", name="New key").click()
    form = ui.page.get_by_role("form", name="New key")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Account").select_option(account["id"])
    form.get_by_role("button", name="Create key").click()
    secret = ui.page.locator(".secret-value").inner_text().strip()
    stack.secrets.add(secret)
    assert secret.startswith("tg-")
    ui.screenshot("key-created")
    wait_for_key(stack, secret)
    reply = sdk(stack, secret).chat.completions.create(model="demo-chat", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content

    # The secret is shown once: not after a reload, nor in the admin API.
    ui.page.reload()
    ui.page.locator("main .page").wait_for()
    assert secret not in ui.page.content()
    key_id = next(k["id"] for k in stack.must("GET", "/admin/keys?limit=100&account_id=" + account["id"])["data"]
                  if k["name"] == name)
    assert "key" not in stack.must("GET", f"/admin/keys/{key_id}")

    ui.page.get_by_label("Search keys").fill(name)
    revoke = ui.page.get_by_role("button", name=f"Revoke {key_id}")
    revoke.wait_for()
    t0 = time.monotonic()
    revoke.click()
    ui.wait_text("Key revoked.")
    until_every_worker(stack, secret, 401, path="/v1/models", timeout=2)
    took = time.monotonic() - t0
    record("ui_revoke_to_401_s", took, db=stack.database_url or "sqlite")
    assert took < 1.0, f"{took:.3f} s from the click to 401 on every worker"
    with pytest.raises(openai.AuthenticationError):
        sdk(stack, secret).chat.completions.create(model="demo-chat", messages=[{"role": "user", "content": "hi"}])
    assert ui.errors == [], ui.errors


def test_limits_and_models_edited_in_the_ui_are_enforced(stack, ui, account):
    created = new_key(stack, account["id"], f"limits-{tag()}")
    ui.sign_in(stack.admin_token)
    ui.open("keys")
    ui.page.get_by_label("Search keys").fill(created["id"])
    ui.page.get_by_role("button", name=f"Edit {created['id']}").click()
    form = ui.page.get_by_role("form", name=f"Edit key {created['id']}")
    form.get_by_label("Requests per minute").fill("3")
    form.get_by_label("Every model in the catalog").uncheck()
    form.get_by_label("Filter models").fill("demo-c")
    form.locator("input[name=model][value=demo-chat]").check()
    form.get_by_role("button", name="Save").click()
    ui.wait_text("Saved.")
    stored = stack.must("GET", f"/admin/keys/{created['id']}")
    assert stored["rpm"] == 3 and stored["models"] == ["demo-chat"]
    # The allowlist reaches every worker: another model is refused.
    until_every_worker(stack, created["key"], 403, path="/v1/embeddings",
                       body=b'{"model":"demo-embed","input":"x"}')
    statuses = sorted(chat(stack, created["key"]) for _ in range(5))
    assert statuses == [200] * 3 + [429] * 2, statuses
    assert ui.errors == [], ui.errors


def test_a_top_up_in_the_ui_restores_an_account_that_got_402(stack, ui):
    model = f"pricey-{tag()}"
    stack.must("POST", "/admin/models", {"id": model, "pricing": {"input_per_1m": 1000, "output_per_1m": 1000},
                                        "deployments": [{"provider": "mock", "upstream_model": "mock-pricey"}]})
    account = new_account(stack, f"prepaid-{tag()}", balance_usd=0.01)
    key = new_key(stack, account["id"])["key"]
    statuses = [chat(stack, key, model, max_tokens=5) for _ in range(4)]
    assert statuses[0] == 200 and statuses[-1] == 402, statuses
    ui.sign_in(stack.admin_token)
    ui.open("accounts")
    ui.page.get_by_role("button", name=f"Open {account['id']}").click()
    ui.page.get_by_label("Top-up amount (USD)").fill("5")
    ui.page.get_by_role("button", name="Top up").click()
    ui.wait_text("Balance now")
    ui.screenshot("account-topped-up")
    stackmod.wait_until(lambda: all(chat(stack, key, model, max_tokens=5) == 200 for _ in range(4)),
                        timeout=2, what="the top-up on every worker")
    assert stack.must("GET", f"/admin/accounts/{account['id']}")["balance_usd"] > 4.9
    assert ui.errors == [], ui.errors


def test_a_key_holder_sees_their_own_account_and_no_operator_page(stack, ui):
    mine = new_account(stack, f"mine-{tag()}", balance_usd=7)
    other = new_account(stack, f"other-{tag()}", balance_usd=99)
    key = new_key(stack, mine["id"], "holder", rpm=50, models=["demo-chat"])["key"]
    assert chat(stack, key) == 200
    ui.sign_in(key)
    ui.open("me")
    text = ui.page.locator("main").inner_text()
    assert mine["name"] in text and other["name"] not in text and "demo-chat" in text
    assert "demo-embed" not in text
    for name in OPERATOR_PAGES:
        if name == "status":
            continue
        ui.page.goto(f"{ui.base}#/{name}")
        ui.wait_text("This page is for operators")
    # Clicking a model fills it into every snippet.
    ui.open("me")
    ui.page.get_by_role("link", name="demo-chat").click()
    ui.page.locator(".snippet").first.wait_for()
    snippets = ui.page.locator(".snippet").all_inner_texts()
    assert len(snippets) >= 6 and all("demo-chat" in s for s in snippets)
    assert any("ANTHROPIC_BASE_URL" in s for s in snippets) and any("OPENAI_BASE_URL" in s for s in snippets)
    assert f"{stack.gateway}/v1" in ui.page.locator(".base-url").inner_text()
    assert ui.errors == [], ui.errors


PAYLOADS = ['<img src=x onerror="window.__xss=1">', "<script>window.__xss=1</script>", '"><svg onload=window.__xss=1>']


def test_xss_payloads_in_names_and_descriptions_are_shown_as_text(stack, ui):
    payload = " ".join(PAYLOADS)
    account = new_account(stack, f"acct {payload}")
    created = new_key(stack, account["id"], f"key {payload}")
    model = f"xss-{tag()}"
    stack.must("POST", "/admin/models", {"id": model, "name": f"model {payload}", "description": f"desc {payload}",
                                        "category": PAYLOADS[1],
                                        "deployments": [{"provider": "mock", "upstream_model": "mock-x"}]})
    stack.must("POST", "/admin/providers", {"id": f"p-{tag()}", "name": f"provider {payload}", "kind": "openai",
                                           "base_url": f"{stack.mock}/v1", "api_key": "sk-xss-provider"})
    assert chat(stack, created["key"]) == 200
    ui.sign_in(stack.admin_token)
    for name in ("keys", "accounts", "catalog", "usage", "overview"):
        ui.open(name)
        ui.page.wait_for_timeout(200)
        assert ui.page.evaluate("window.__xss") is None, name
        assert ui.page.locator("main img[src=x], main svg[onload], main script").count() == 0, name
    ui.open("catalog")
    text = ui.page.locator("main").inner_text()
    for p in PAYLOADS:
        assert p in text
    ui.screenshot("xss-as-text")
    ui.open("accounts")
    assert PAYLOADS[0] in ui.page.locator("main").inner_text()
    ui.page.get_by_role("button", name=f"Open {account['id']}").click()
    ui.wait_text("Usage, last 30 days")
    assert ui.page.locator("main .card h2").first.inner_text().startswith(f"acct {payload}")
    assert ui.page.evaluate("window.__xss") is None
    ui.page.get_by_role("button", name="Sign out").click()
    ui.sign_in(created["key"])
    ui.open("me")
    assert PAYLOADS[1] in ui.page.locator("main").inner_text()
    assert ui.page.evaluate("window.__xss") is None
    assert ui.errors == [], ui.errors


def test_the_csp_forbids_inline_script(stack, ui):
    status, headers, _ = stackmod.http("GET", f"{stack.control_plane}/ui/")
    assert status == 200
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "object-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp
    ui.sign_in(stack.admin_token)
    blocked = ui.page.evaluate("""() => new Promise((resolve) => {
        document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective), {once: true});
        const s = document.createElement('script');
        s.textContent = 'window.__inline = 1';
        document.body.append(s);
        setTimeout(() => resolve('no violation'), 2000);
    })""")
    assert blocked.startswith("script-src"), blocked
    assert ui.page.evaluate("window.__inline") is None


WEIGHT = """() => [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')]
    .map((e) => ({name: e.name, bytes: e.decodedBodySize}))"""


def test_the_first_page_is_small(stack, ui, key, record):
    """Bytes of every file the browser loaded (decoded bodies): the sign-in
    page, and the overview an operator lands on (with uPlot, drawn once
    there is traffic)."""
    assert chat(stack, key) == 200
    stackmod.wait_until(lambda: stack.must("GET", "/admin/usage?limit=1")["data"], what="a usage record")
    ui.page.goto(ui.base)
    ui.page.get_by_label("Admin token or API key").wait_for()
    ui.page.wait_for_load_state("networkidle")
    signin = ui.page.evaluate(WEIGHT)
    signin_bytes = sum(e["bytes"] for e in signin)
    ui.sign_in(stack.admin_token)
    ui.page.locator("main .page").wait_for()
    ui.page.locator("main .chart canvas").first.wait_for()
    ui.page.wait_for_load_state("networkidle")
    landed = ui.page.evaluate(WEIGHT)
    files = [e for e in landed if "/ui/" in e["name"]]
    landed_bytes = sum(e["bytes"] for e in files)
    record("ui_first_page_bytes", signin_bytes, page="sign-in", files=len(signin))
    record("ui_overview_bytes", landed_bytes, page="overview after sign-in", files=len(files))
    assert any(e["name"].endswith("/ui/js/app.js") for e in signin)
    assert any("uPlot" in e["name"] for e in files)
    assert signin_bytes < 40_000 and landed_bytes < 150_000, (signin_bytes, landed_bytes)
    assert ui.errors == [], ui.errors


def test_keyboard_sign_in_and_a_phone_width_without_sideways_scrolling(stack, chromium):
    from .browser import Ui

    context = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        ui = Ui(context.new_page(), stack, "phone")
        ui.page.goto(ui.base)
        ui.page.get_by_label("Admin token or API key").wait_for()
        # The token field has the focus; typing and Enter sign in.
        ui.page.keyboard.type(stack.admin_token)
        ui.page.keyboard.press("Enter")
        ui.page.get_by_role("button", name="Sign out").wait_for()
        for name in ("overview", "keys", "accounts", "usage", "status"):
            ui.open(name)
            ui.page.wait_for_timeout(200)
            overflow = ui.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} scrolls sideways by {overflow} px at 390 px"
            ui.screenshot(f"phone-{name}")
        # Tab reaches the navigation links and the focused one opens its page.
        ui.open("overview")
        for _ in range(12):
            ui.page.keyboard.press("Tab")
            if ui.page.evaluate("document.activeElement.textContent") == "Keys":
                break
        ui.page.keyboard.press("Enter")
        ui.page.get_by_role("heading", name="Keys").wait_for()
        assert ui.errors == [], ui.errors
    finally:
        context.close()


def test_the_usage_explorer_filters_by_key_and_status_and_exports_csv(stack, ui, account):
    created = new_key(stack, account["id"], "explorer")
    auth = [("authorization", f"Bearer {created['key']}")]
    for _ in range(2):
        assert raw(stack, "POST", "/v1/chat/completions", auth, chat_body())[0] == 200
    assert raw(stack, "POST", "/v1/chat/completions", [*auth, ("x-mock-status", "500")], chat_body())[0] >= 500
    stackmod.wait_until(lambda: len(stack.must("GET", f"/admin/usage?key_id={created['id']}")["data"]) == 3,
                        what="three usage records")
    ui.sign_in(stack.admin_token)
    ui.open("usage")
    ui.page.get_by_label("Key id").fill(created["id"])
    ui.page.get_by_label("Status").select_option("error")
    ui.page.get_by_role("button", name="Apply").click()
    rows = ui.page.locator("main tbody tr")
    stackmod.wait_until(lambda: rows.count() == 1, what="one error row")
    assert created["id"] in rows.first.inner_text()
    ui.page.get_by_label("Status").select_option("")
    ui.page.get_by_role("button", name="Apply").click()
    stackmod.wait_until(lambda: rows.count() == 3, what="all three rows")
    with ui.page.expect_download() as download:
        ui.page.get_by_role("button", name="Export CSV").click()
    lines = open(download.value.path()).read().splitlines()
    assert lines[0].startswith("created_at,request_id,key_id,account_id,model")
    assert len(lines) == 4 and all(created["id"] in line for line in lines[1:])
    statuses = sorted(int(line.split(",")[7]) for line in lines[1:])
    assert statuses[:2] == [200, 200] and statuses[2] >= 500
    assert ui.errors == [], ui.errors


def test_the_status_page_refreshes_itself(stack, ui):
    ui.sign_in(stack.admin_token)
    ui.open("status")
    stamp = ui.page.get_by_text("refreshes every 5 s")
    first = stamp.inner_text()
    assert "Config version" in ui.page.locator("main").inner_text()
    assert "fails closed" in ui.page.locator("main").inner_text()
    stackmod.wait_until(lambda: stamp.inner_text() != first, timeout=8, interval=0.2, what="a refresh")
    assert ui.errors == [], ui.errors


def test_providers_and_models_are_edited_in_the_ui_with_the_credential_write_only(stack, ui):
    pid, model = f"ui-p-{tag()}", f"ui-m-{tag()}"
    credential = f"sk-ui-{tag()}-{tag()}-{tag()}"
    stack.secrets.add(credential)
    ui.sign_in(stack.admin_token)
    ui.open("catalog")
    ui.page.get_by_role("button", name="New provider").click()
    form = ui.page.get_by_role("form", name="New provider")
    form.get_by_label("Id").fill(pid)
    form.get_by_label("Base URL").fill(f"{stack.mock}/v1")
    form.get_by_label("API key").fill(credential)
    form.get_by_role("button", name="Add provider").click()
    ui.wait_text("Provider added.")
    provider = stack.must("GET", f"/admin/providers/{pid}")
    assert provider["has_api_key"] is True and credential not in str(provider)
    assert credential not in ui.page.content()

    ui.page.get_by_role("button", name="New model").click()
    form = ui.page.get_by_role("form", name="New model")
    form.get_by_label("Id", exact=True).fill(model)
    form.get_by_label("Context window (tokens)").fill("32000")
    form.get_by_label("Input price (USD / 1M tokens)").fill("2.5")
    form.get_by_label("Provider").select_option(pid)
    form.get_by_label("Upstream model").fill("mock-ui")
    form.get_by_label("Weight").fill("3")
    form.get_by_label("Priority (lower first)").fill("1")
    form.get_by_role("button", name="Add model").click()
    ui.wait_text("Saved.")
    made = stack.must("GET", f"/admin/models/{model}")
    assert made["context_window"] == 32000 and made["pricing"]["input_per_1m"] == 2.5
    assert made["deployments"] == [{"provider": pid, "upstream_model": "mock-ui", "weight": 3, "priority": 1}]
    # The new model, on the new provider, serves through Envoy.
    key = new_key(stack, new_account(stack, "catalog")["id"])["key"]
    stackmod.wait_until(lambda: chat(stack, key, model) == 200, what="the new model on the gateway")
    assert ui.errors == [], ui.errors
