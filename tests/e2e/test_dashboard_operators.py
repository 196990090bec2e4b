"""Named operator accounts (`/admin/operators`): created in the dashboard by
the admin, signed in with name and password in real Chromium, able to make
changes; the admin token still works; deleting the operator ends its
session; bad inputs are 400 naming the field, in the OpenAI shape."""

from __future__ import annotations

from .browser import session_http
from .helpers import new_account, new_key, stackmod, tag


def sign_in(stack, body) -> tuple[int, dict, dict]:
    return stackmod.http("POST", f"{stack.control_plane}/ui/api/session", body)


def test_an_operator_made_in_the_ui_signs_in_with_name_and_password(stack, ui):
    name, password = f"ops-{tag()}", f"correct horse {tag()}"
    stack.secrets.add(password)
    ui.sign_in(stack.admin_token)
    ui.open("operators")
    ui.page.get_by_label("Operator name").fill(name)
    ui.page.get_by_label("Operator password").fill(password)
    ui.page.get_by_role("button", name="Create operator").click()
    ui.page.locator("main table tbody tr", has=ui.page.get_by_text(name, exact=True)).wait_for()
    ui.screenshot("operators")
    assert password not in ui.page.content()
    made = next(o for o in stack.must("GET", "/admin/operators")["data"] if o["name"] == name)
    assert set(made) == {"id", "object", "name", "created_at"} and made["object"] == "operator"

    ui.page.get_by_role("button", name="Sign out").click()
    named = ui.page.get_by_role("form", name="Named operator")
    named.get_by_label("Operator name").fill(name)
    named.get_by_label("Password").fill("not the password")
    named.get_by_role("button", name="Log in as operator").click()
    ui.wait_text("That name and password do not match an operator.")
    # Chromium logs the refused sign-in's 401 itself; that one is expected.
    assert len(ui.errors) == 1 and "401" in ui.errors[0], ui.errors
    ui.errors.clear()
    named.get_by_label("Password").fill(password)
    named.get_by_role("button", name="Log in as operator").click()
    ui.page.get_by_role("button", name="Sign out").wait_for()
    ui.wait_text(f"Operator {name}")
    ui.page.get_by_role("heading", name="Overview").wait_for()
    # A change as the named operator (its session's CSRF token).
    account = f"made by {name}"
    ui.open("accounts")
    ui.page.get_by_role("button", name="New account").click()
    form = ui.page.get_by_role("form", name="New account")
    form.get_by_label("Name").fill(account)
    form.get_by_role("button", name="Create account").click()
    ui.wait_text(account)
    assert any(a["name"] == account for a in stack.must("GET", "/admin/accounts?limit=100")["data"])
    ui.open("operators")
    ui.page.locator("main table tbody tr", has=ui.page.get_by_text(name, exact=True)).get_by_text("you").wait_for()
    status, _, session = session_http(stack, "GET", "/ui/api/session", ui.cookies())
    assert status == 200 and session["operator"] == {"id": made["id"], "name": name}
    assert ui.errors == [], ui.errors

    # The admin token still works; deleting the operator ends its session.
    jar = ui.cookies()
    assert session_http(stack, "GET", "/admin/keys", jar)[0] == 200
    stack.must("DELETE", f"/admin/operators/{made['id']}")
    assert session_http(stack, "GET", "/admin/keys", jar)[0] == 401
    status, _, body = sign_in(stack, {"name": name, "password": password})
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert stack.admin("DELETE", f"/admin/operators/{made['id']}")[0] == 404


def test_operator_accounts_refuse_bad_inputs(stack):
    name, password = f"ops-{tag()}", f"battery staple {tag()}"
    stack.secrets.add(password)
    made = stack.must("POST", "/admin/operators", {"name": name, "password": password})
    for body, param in (({"name": "", "password": password}, "name"), ({"name": "a b", "password": password}, "name"),
                        ({"name": "<script>", "password": password}, "name"), ({"name": "a" * 65, "password": password}, "name"),
                        ({"name": f"x{tag()}", "password": "short"}, "password"),
                        ({"name": f"x{tag()}", "password": "p" * 257}, "password"),
                        ({"name": f"x{tag()}"}, None), ({"name": f"x{tag()}", "password": password, "role": "root"}, None)):
        status, _, answer = stack.admin("POST", "/admin/operators", body)
        assert status == 400 and answer["error"]["type"] == "invalid_request_error", (body, answer)
        if param:
            assert answer["error"]["param"] == param, (body, answer)
    status, _, answer = stack.admin("POST", "/admin/operators", {"name": name, "password": password})
    assert status == 409 and name in answer["error"]["message"]
    # Sign-in shapes: one of token, or name and password.
    for body in ({"name": name}, {"password": password}, {"token": stack.admin_token, "name": name, "password": password}, {}):
        status, _, answer = sign_in(stack, body)
        assert status == 400 and answer["error"]["param"] == "token", (body, answer)
    for body in ({"name": name, "password": password + "x"}, {"name": f"nobody-{tag()}", "password": password},
                 {"name": name.upper(), "password": password}):
        status, _, answer = sign_in(stack, body)
        assert status == 401 and answer["error"]["code"] == "invalid_api_key", body
    status, headers, answer = sign_in(stack, {"name": f"  {name} ", "password": password})
    assert status == 201 and answer["operator"]["name"] == name and "HttpOnly" in headers["set-cookie"]
    # A key holder cannot list or make operators.
    holder = new_key(stack, new_account(stack, f"holder-{tag()}")["id"])
    status, headers, answer = sign_in(stack, {"token": holder["key"]})
    assert status == 201
    jar, csrf = headers["set-cookie"].split(";")[0], answer["csrf_token"]
    for method, body in (("GET", None), ("POST", {"name": f"x{tag()}", "password": password})):
        status, _, answer = session_http(stack, method, "/admin/operators", jar, body, csrf=csrf)
        assert status == 403 and answer["error"]["code"] == "permission_denied", answer
    listed = stack.must("GET", "/admin/operators")["data"]
    assert all("password" not in str(o) and "argon2" not in str(o) for o in listed)
    stack.must("DELETE", f"/admin/operators/{made['id']}")


def test_five_wrong_passwords_lock_the_name_for_five_minutes(stack):
    name, other, password = f"ops-{tag()}", f"ops-{tag()}", f"tr0ub4dor {tag()}"
    stack.secrets.add(password)
    made = [stack.must("POST", "/admin/operators", {"name": n, "password": password}) for n in (name, other)]
    for i in range(5):
        status, _, answer = sign_in(stack, {"name": name, "password": f"guess {i} {tag()}"})
        assert status == 401 and answer["error"]["code"] == "invalid_api_key", i
    # Now even the right password is refused, in the OpenAI shape with Retry-After.
    status, headers, answer = sign_in(stack, {"name": name, "password": password})
    assert status == 429 and answer["error"]["code"] == "rate_limit_exceeded", answer
    assert answer["error"]["type"] == "rate_limit_error" and "try again" in answer["error"]["message"]
    assert 1 <= int(headers["retry-after"]) <= 300
    # Another name, the admin token and API keys are not held back.
    assert sign_in(stack, {"name": other, "password": password})[0] == 201
    assert sign_in(stack, {"token": stack.admin_token})[0] == 201
    for m in made:
        stack.must("DELETE", f"/admin/operators/{m['id']}")
