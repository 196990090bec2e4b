"""Dashboard sessions in the database (migration 0011, `ui_sessions`): a
session survives a restart of the control plane, the database holds only
the SHA-256 of its token, and a signed-out, ended or revoked session is
refused, before and after a restart."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess

from .browser import session_http
from .helpers import new_account, new_key, stackmod, tag


def sign_in(stack, token: str) -> tuple[str, str, str]:
    """(the Cookie header, the session token, the CSRF token)."""
    status, headers, body = stackmod.http("POST", f"{stack.control_plane}/ui/api/session", {"token": token})
    assert status == 201, body
    jar = headers["set-cookie"].split(";")[0]
    return jar, jar.split("=", 1)[1], body["csrf_token"]


def query(stack, sql: str) -> list[tuple]:
    """Rows of `sql` on the stack's own database (SQLite file or PostgreSQL),
    each value as text (NULL as "")."""
    if not stack.database_url:
        with sqlite3.connect(stack.work_dir / "data" / "tollgate.db") as db:
            return [tuple("" if v is None else str(v) for v in row) for row in db.execute(sql).fetchall()]
    done = subprocess.run(["psql", stack.database_url, "-v", "ON_ERROR_STOP=1", "-tAF", "\t", "-c", sql],
                          capture_output=True, text=True, check=True)
    return [tuple(line.split("\t")) for line in done.stdout.splitlines() if line]


def stored(stack, token: str) -> list[tuple]:
    digest = hashlib.sha256(token.encode()).hexdigest()
    return query(stack, f"SELECT kind, key_id, account_id FROM ui_sessions WHERE token_hash = '{digest}'")


def restart(stack) -> None:
    stack.procs["control-plane"].stop()
    stack.start_control_plane()


def test_sessions_survive_a_restart_and_only_their_hash_is_stored(stack):
    account = new_account(stack, f"sessions-{tag()}")
    created = new_key(stack, account["id"])
    op_jar, op_token, op_csrf = sign_in(stack, stack.admin_token)
    kh_jar, kh_token, _ = sign_in(stack, created["key"])
    out_jar, _, out_csrf = sign_in(stack, stack.admin_token)
    assert stored(stack, op_token) == [("operator", "", "")]
    assert stored(stack, kh_token) == [("key_holder", created["id"], account["id"])]
    # Neither the token nor the CSRF token is anywhere in the table.
    dump = str(query(stack, "SELECT * FROM ui_sessions"))
    for secret in (op_token, kh_token, op_csrf):
        assert secret not in dump
    # Signed out before the restart: gone from the table.
    assert session_http(stack, "DELETE", "/ui/api/session", out_jar, csrf=out_csrf)[0] == 204
    assert stored(stack, out_jar.split("=", 1)[1]) == []

    restart(stack)
    status, _, body = session_http(stack, "GET", "/ui/api/session", op_jar)
    assert status == 200 and body["kind"] == "operator" and body["csrf_token"] == op_csrf
    assert 0 < body["expires_in"] <= 8 * 3600
    status, _, made = session_http(stack, "POST", "/admin/accounts", op_jar, {"name": f"after-{tag()}"}, csrf=op_csrf)
    assert status == 201 and made["object"] == "account"
    status, _, me = session_http(stack, "GET", "/v1/me", kh_jar)
    assert status == 200 and me["key"]["id"] == created["id"]
    assert session_http(stack, "GET", "/admin/keys", out_jar)[0] == 401

    # Revoking the key ends its holder's session (the row goes).
    stack.must("DELETE", f"/admin/keys/{created['id']}")
    assert session_http(stack, "GET", "/v1/me", kh_jar)[0] == 401
    assert stored(stack, kh_token) == []
    # A session whose end has passed is refused, whatever its cookie says.
    query(stack, "UPDATE ui_sessions SET expires_at_ms = 1 WHERE token_hash = "
                 f"'{hashlib.sha256(op_token.encode()).hexdigest()}' RETURNING kind")
    assert session_http(stack, "GET", "/admin/keys", op_jar)[0] == 401
    assert session_http(stack, "GET", "/ui/api/session", op_jar)[2]["kind"] is None
    # A made-up token, or the stored hash presented as a token, is no session.
    for fake in ("0" * 43, hashlib.sha256(op_token.encode()).hexdigest()):
        status, _, body = session_http(stack, "GET", "/admin/keys", f"tollgate_session={fake}")
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
