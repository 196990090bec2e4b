"""The dashboard in real Chromium: Debian's /usr/bin/chromium driven by
Playwright's Python package (it cannot download browsers here). `Ui` signs
in, opens pages, collects console errors and saves screenshots as test
artefacts (tmp/artefacts/screenshots, or TOLLGATE_E2E_ARTEFACTS)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .helpers import stackmod

CHROMIUM = os.environ.get("TOLLGATE_CHROMIUM", "/usr/bin/chromium")
ARTEFACTS = Path(os.environ.get("TOLLGATE_E2E_ARTEFACTS") or Path(__file__).resolve().parents[2] / "tmp" / "artefacts")

OPERATOR_PAGES = ["overview", "keys", "accounts", "catalog", "usage", "status", "operators"]
KEY_HOLDER_PAGES = ["me", "quickstart", "status"]


class Ui:
    def __init__(self, page, stack, label: str):
        self.page = page
        self.stack = stack
        self.label = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:120]
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        # The dashboard asks before it revokes or rotates.
        page.on("dialog", lambda d: d.accept())

    @property
    def base(self) -> str:
        return f"{self.stack.control_plane}/ui/"

    def sign_in(self, token: str) -> None:
        self.page.goto(self.base)
        self.page.get_by_label("Admin token or API key").fill(token)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.get_by_role("button", name="Sign out").wait_for()

    def open(self, name: str) -> None:
        """Opens a page (a fresh load) and waits until it has rendered."""
        self.page.goto(f"{self.base}#/{name}")
        self.page.reload()
        self.page.locator("main .page").wait_for()

    def screenshot(self, name: str) -> Path:
        db = "postgres" if self.stack.database_url else "sqlite"
        path = ARTEFACTS / "screenshots" / db / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def cookies(self) -> str:
        """The session cookie as a `Cookie` header, for HTTP checks."""
        return "; ".join(f"{c['name']}={c['value']}" for c in self.page.context.cookies())

    def wait_text(self, text: str, timeout: float = 10_000) -> None:
        self.page.get_by_text(text, exact=False).first.wait_for(timeout=timeout)


def session_http(stack, method: str, path: str, cookie: str, body=None, csrf: str | None = None, base: str | None = None):
    headers = {"cookie": cookie}
    if csrf is not None:
        headers["x-csrf-token"] = csrf
    return stackmod.http(method, f"{base or stack.control_plane}{path}", body, headers)
