"""The dashboard's weight as the running server sends it: starts a stack
(SQLite), makes one chat request so that the overview draws a chart, opens
the sign-in page and then the overview in Chromium (Playwright) to learn
which files each loads (HTML, CSS, JS, vendor, the favicon; not the API
calls), and fetches each of those files from the control
plane: bytes as served (uncompressed: the control plane sends no
Content-Encoding) and gzip at level 6 and 9 (what a compressing front such
as Envoy or nginx would send).

    .venv/bin/python tools/ui_size.py
"""

from __future__ import annotations

import gzip
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT))

import stack as stackmod  # noqa: E402
from tests.e2e.helpers import chat_body, new_account, new_key, raw  # noqa: E402

URLS = """() => [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')]
    .map((e) => e.name)"""


def fetch(url: str) -> tuple[bytes, str | None]:
    with urllib.request.urlopen(urllib.request.Request(url, headers={"accept-encoding": "identity"})) as r:
        return r.read(), r.headers.get("content-encoding")


def files(urls: list[str]) -> list[str]:
    """The dashboard's files (not its API calls), each once, in load order."""
    return list(dict.fromkeys(u.split("#")[0] for u in urls if "/ui/" in u and "/ui/api/" not in u))


def weigh(urls: list[str]) -> dict:
    rows = []
    for u in files(urls):
        body, encoding = fetch(u)
        assert encoding is None, (u, encoding)
        rows.append((u.split("/ui/", 1)[-1] or "index.html", len(body),
                     len(gzip.compress(body, 6)), len(gzip.compress(body, 9))))
    return {"files": rows, "raw": sum(r[1] for r in rows), "gzip6": sum(r[2] for r in rows),
            "gzip9": sum(r[3] for r in rows)}


def show(title: str, w: dict) -> None:
    print(f"\n{title}: {len(w['files'])} files, {w['raw']:,} bytes, gzip -6 {w['gzip6']:,}, gzip -9 {w['gzip9']:,}")
    for name, n, g6, g9 in w["files"]:
        print(f"  {name:32} {n:>8,} {g6:>8,} {g9:>8,}")


def main() -> None:
    from playwright.sync_api import sync_playwright

    s = stackmod.Stack(work_dir=Path(tempfile.mkdtemp(prefix="ui-size-")), database_url=None)
    with s.running():
        key = new_key(s, new_account(s, "size")["id"])["key"]
        assert raw(s, "POST", "/v1/chat/completions", [("authorization", f"Bearer {key}")], chat_body())[0] == 200
        stackmod.wait_until(lambda: s.must("GET", "/admin/usage?limit=1")["data"], what="a usage record")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_context().new_page()
            page.goto(f"{s.control_plane}/ui/")
            page.get_by_label("Admin token or API key").wait_for()
            page.wait_for_load_state("networkidle")
            signin = page.evaluate(URLS)
            page.get_by_label("Admin token or API key").fill(s.admin_token)
            page.get_by_role("button", name="Sign in").click()
            page.locator("main .chart canvas").first.wait_for()
            page.wait_for_load_state("networkidle")
            landed = page.evaluate(URLS)
            browser.close()
        show("Sign-in page", weigh(signin))
        show("Sign-in page and the overview after it", weigh(landed))


if __name__ == "__main__":
    main()
