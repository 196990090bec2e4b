"""The dashboard's figures in real Chromium: the overview's latency and time
to first token are those of the whole range (the usage summary's total and
`/admin/usage/streams`), not of the latest records, checked against the
true percentiles of every record of the range; the Keys page finds keys
by their account's name or id, a page of 20 at a time; the usage explorer
filters by account, model and time range, a page of 50 at a time."""

from __future__ import annotations

import math
import time

from openai import OpenAI

from .helpers import ingest, new_account, new_key, stackmod, tag


def nearest_rank(values: list[int], p: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * p)) - 1]


def all_records(stack, since: int) -> list[dict]:
    """Every usage record since `since` (unix seconds), every page."""
    got, after = [], None
    while True:
        page = stack.must("GET", f"/admin/usage?since={since}&limit=100" + (f"&after={after}" if after else ""))
        got += page["data"]
        if not page["has_more"]:
            return got
        after = page["data"][-1]["id"]


def stat(ui, label: str) -> str:
    return ui.page.locator(".stat", has=ui.page.get_by_text(label, exact=True)).locator("strong").inner_text()


def test_the_overview_shows_latency_and_first_token_of_the_whole_range(stack, ui, account):
    created = new_key(stack, account["id"], "overview")
    client = OpenAI(base_url=f"{stack.gateway}/v1", api_key=created["key"], max_retries=0)
    for _ in range(2):
        stream = client.chat.completions.create(
            model="demo-chat", messages=[{"role": "user", "content": "hi"}], stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    client.chat.completions.create(model="demo-chat", messages=[{"role": "user", "content": "hi"}])
    # Known latencies and first tokens besides, spread over the last 20 hours
    # (whole hours of the rollup and the records of the hours at the edges).
    now_ms = int(time.time() * 1000)
    for i in range(30):
        ingest(stack, created, now_ms - i * 2_400_000, latency_ms=250 + 97 * i,
               stream=i % 2 == 0, ttft_ms=40 + 13 * i if i % 2 == 0 else None)
    stackmod.wait_until(lambda: len(stack.must("GET", f"/admin/usage?key_id={created['id']}&limit=100")["data"]) == 33,
                        what="the 33 usage records")
    since = int(time.time()) - 86400
    # The truth, from every record of the range.
    latencies, ttfts = [], []
    for r in all_records(stack, since):
        latencies.append(r["latency_ms"])
        if r["ttft_ms"] is not None:
            ttfts.append(r["ttft_ms"])
    total = stack.must("GET", f"/admin/usage/summary?group_by=model&since={since}")["total"]
    streams = stack.must("GET", f"/admin/usage/streams?since={since}")
    assert total["requests"] >= 3 and streams["streams"] >= 2, (total, streams)
    assert total["requests"] == len(latencies) and streams["streams"] == len(ttfts)
    for p, field in ((0.5, "latency_p50_ms"), (0.95, "latency_p95_ms")):
        # The upper edge of the true value's bucket: never below it, less
        # than 2^(1/3) (26%) above it.
        true = nearest_rank(latencies, p)
        assert true <= total[field] <= max(1, true * 2 ** (1 / 3)), (p, true, total[field])
    assert (streams["ttft_p50_ms"], streams["ttft_p95_ms"]) == (nearest_rank(ttfts, 0.5), nearest_rank(ttfts, 0.95))
    ui.sign_in(stack.admin_token)
    ui.page.get_by_role("heading", name="Overview").wait_for()
    assert stat(ui, "Requests") == f"{total['requests']:,}"
    assert stat(ui, "Latency p50 / p95") == f"{total['latency_p50_ms']} / {total['latency_p95_ms']} ms"
    assert stat(ui, "Time to first token p50 / p95") == f"{streams['ttft_p50_ms']} / {streams['ttft_p95_ms']} ms"
    ui.wait_text("at most 26% above")
    share = streams["estimated_tokens"] / streams["tokens"] * 100
    shown = stat(ui, "Estimated tokens")
    assert shown.endswith("%") and abs(float(shown[:-1]) - share) <= 0.05, (shown, share)
    ui.wait_text(f"first token over {streams['streams']:,} streams")
    ui.page.locator("main .chart canvas").first.wait_for()
    # Rankings: the first of each is the full width, costs (under $1) too.
    for title in ("Top models by requests", "Top keys by cost", "Top accounts by tokens"):
        ranking = ui.page.locator("figure.bars", has=ui.page.get_by_text(title, exact=True))
        assert ranking.locator(".bar").first.get_attribute("style") == "width: 100%;", title
    ui.screenshot("overview-whole-range")
    assert ui.errors == [], ui.errors


def test_keys_are_found_by_their_account_name_a_page_at_a_time(stack, ui):
    name = f"Searchable Works {tag()}"
    account = new_account(stack, name)
    other = new_account(stack, f"Elsewhere {tag()}")
    stack.must("POST", "/admin/keys", {"name": "not mine", "account_id": other["id"]})
    ids = sorted(stack.must("POST", "/admin/keys", {"name": f"k{i}", "account_id": account["id"]})["id"]
                 for i in range(23))
    ui.sign_in(stack.admin_token)
    ui.open("keys")
    ui.page.get_by_label("Search keys").fill(name.upper())  # any case
    pager = ui.page.get_by_role("navigation", name="Pages of keys")
    rows = ui.page.locator("main table tbody tr")
    stackmod.wait_until(lambda: rows.count() == 20 and rows.first.locator("td").nth(2).inner_text() == name,
                        what="the first page of the account's keys")
    seen = rows.locator("td:nth-child(2) code").all_inner_texts()
    ui.screenshot("keys-search-account")
    pager.get_by_role("button", name="Next").click()
    pager.get_by_text("Page 2").wait_for()
    stackmod.wait_until(lambda: rows.count() == 3, what="the second page")
    seen += rows.locator("td:nth-child(2) code").all_inner_texts()
    assert seen == ids
    assert set(rows.locator("td:nth-child(3)").all_inner_texts()) == {name}
    assert pager.get_by_role("button", name="Next").is_disabled()
    pager.get_by_role("button", name="Previous").click()
    pager.get_by_text("Page 1").wait_for()
    stackmod.wait_until(lambda: rows.count() == 20, what="the first page again")
    # The account's id finds its keys too, and a key's id that one key.
    search = ui.page.get_by_label("Search keys")
    search.fill(account["id"])
    stackmod.wait_until(lambda: rows.count() == 20 and set(rows.locator("td:nth-child(3)").all_inner_texts()) == {name},
                        what="the account's keys by its id")
    assert rows.locator("td:nth-child(2) code").all_inner_texts() == ids[:20]
    search.fill(ids[7])
    stackmod.wait_until(lambda: rows.count() == 1, what="the one key by its id")
    assert rows.locator("td:nth-child(2) code").all_inner_texts() == [ids[7]]
    assert pager.get_by_role("button", name="Next").is_disabled()
    # Nothing matches: an empty list, not an error.
    search.fill(f"no such key {tag()}")
    stackmod.wait_until(lambda: rows.locator("td:nth-child(2) code").count() == 0, what="no key")
    assert ui.errors == [], ui.errors


def test_the_usage_explorer_filters_by_account_model_and_time_range_a_page_at_a_time(stack, ui):
    account = new_account(stack, f"explorer-{tag()}")
    key = stack.must("POST", "/admin/keys", {"name": "explorer", "account_id": account["id"]})
    other = stack.must("POST", "/admin/keys", {"name": "elsewhere", "account_id": new_account(stack, f"else-{tag()}")["id"]})
    now_ms = int(time.time() * 1000)
    old_ms = now_ms - 3 * 86_400_000
    # The account: 52 recent records of demo-chat, 3 of another model, 4
    # three days old; another account's record besides.
    for i in range(52):
        ingest(stack, key, now_ms - 60_000 - i * 1000)
    odd_model = f"explorer-model-{tag()}"
    for i in range(3):
        ingest(stack, key, now_ms - 30_000 - i * 1000, model=odd_model)
    for i in range(4):
        ingest(stack, key, old_ms + i * 1000)
    ingest(stack, other, now_ms - 60_000)

    def minute(ms: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M", time.gmtime(ms / 1000))

    ui.sign_in(stack.admin_token)
    ui.open("usage")
    rows = ui.page.locator("main tbody tr")
    pager = ui.page.get_by_role("navigation", name="Pages of usage")

    def apply(**fields) -> None:
        for label, value in (("Account id", fields.get("account", "")), ("Model", fields.get("model", "")),
                             ("From (UTC)", fields.get("since", "")), ("To (UTC)", fields.get("until", ""))):
            ui.page.get_by_label(label).fill(value)
        ui.page.get_by_role("button", name="Apply").click()

    def accounts_shown() -> set[str]:
        return set(rows.locator("td:nth-child(3)").all_inner_texts())

    apply(account=account["id"])
    pager.get_by_text("Page 1").wait_for()
    stackmod.wait_until(lambda: rows.count() == 50, what="a page of 50")
    assert accounts_shown() == {account["id"]}
    pager.get_by_role("button", name="Next").click()
    pager.get_by_text("Page 2").wait_for()
    stackmod.wait_until(lambda: rows.count() == 9, what="the 9 left")
    assert pager.get_by_role("button", name="Next").is_disabled()
    apply(account=account["id"], model=odd_model)
    stackmod.wait_until(lambda: rows.count() == 3 and pager.get_by_text("Page 1").count() == 1, what="the other model's 3")
    assert set(rows.locator("td:nth-child(4)").all_inner_texts()) == {odd_model}
    apply(account=account["id"], since=minute(now_ms - 2 * 3_600_000))
    pager.get_by_role("button", name="Next").click()
    pager.get_by_text("Page 2").wait_for()
    stackmod.wait_until(lambda: rows.count() == 5, what="55 recent records: 5 on page 2")
    apply(account=account["id"], until=minute(now_ms - 2 * 86_400_000))
    stackmod.wait_until(lambda: rows.count() == 4, what="the 4 old records")
    assert accounts_shown() == {account["id"]}
    apply(account=account["id"], model=f"no-such-{tag()}")
    ui.wait_text("No records match.")
    ui.screenshot("usage-filtered")
    assert ui.errors == [], ui.errors
