"""The usage explorer's CSV export, `GET /admin/usage/export.csv`: every
record the filters match, streamed a thousand at a time (more than one
batch here), newest first, formula cells defused; bad inputs are 400 naming
the parameter, a key holder's session 403, no credential 401."""

from __future__ import annotations

import csv
import io
import time

from .browser import session_http
from .helpers import new_account, stackmod, tag

COUNT = 2345


def post_records(stack, records: list[dict]) -> None:
    for i in range(0, len(records), 1000):
        status, _, answer = stackmod.http("POST", f"{stack.control_plane}/internal/usage",
                                          {"records": records[i:i + 1000]},
                                          headers={"x-tollgate-filter-secret": stack.filter_secret})
        assert status == 200, answer


def test_the_csv_export_streams_every_matching_record(stack):
    account = new_account(stack, f"export-{tag()}")
    key = stack.must("POST", "/admin/keys", {"name": "export", "account_id": account["id"]})
    now_ms = int(time.time() * 1000)
    run = tag()
    records = [{
        "request_id": f"export-{run}-{i:05d}", "key_id": key["id"], "account_id": account["id"],
        "model": "=HYPERLINK(\"http://x\")" if i == 7 else "demo-chat", "upstream_model": "mock-demo-chat",
        "provider": "mock", "status": 500 if i % 10 == 0 else 200, "input_tokens": i, "output_tokens": 1,
        "estimated": False, "stream": i % 2 == 0, "latency_ms": 5, "ttft_ms": 3 if i % 2 == 0 else None,
        "cost_nanos": 1_000_000, "created_at_ms": now_ms - 10_000_000 + i * 1000,
    } for i in range(COUNT)]
    post_records(stack, records)
    status, headers, body = stackmod.http("GET", f"{stack.control_plane}/admin/usage/export.csv?account_id={account['id']}",
                                          headers={"authorization": f"Bearer {stack.admin_token}"})
    assert status == 200, body
    assert headers["content-type"].startswith("text/csv") and "attachment" in headers["content-disposition"]
    text = body.decode() if isinstance(body, bytes) else body
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:5] == ["created_at", "request_id", "key_id", "account_id", "model"] and len(rows[0]) == 16
    data = rows[1:]
    assert len(data) == COUNT
    # Newest first, every record once.
    assert [r[1] for r in data] == [f"export-{run}-{i:05d}" for i in reversed(range(COUNT))]
    by_id = {r[1]: r for r in data}
    assert by_id[f"export-{run}-00007"][4] == "'=HYPERLINK(\"http://x\")"
    assert by_id[f"export-{run}-00010"][7] == "500" and by_id[f"export-{run}-00010"][13] == "3"
    assert by_id[f"export-{run}-00011"][13] == "" and by_id[f"export-{run}-00011"][14] == "false"
    # The filters narrow it as they narrow the list.
    status, _, body = stackmod.http(
        "GET", f"{stack.control_plane}/admin/usage/export.csv?account_id={account['id']}&status=error",
        headers={"authorization": f"Bearer {stack.admin_token}"})
    errors = list(csv.reader(io.StringIO(body.decode())))[1:]
    assert status == 200 and len(errors) == len(range(0, COUNT, 10)) and {r[7] for r in errors} == {"500"}
    status, _, body = stackmod.http("GET", f"{stack.control_plane}/admin/usage/export.csv?account_id=acct_none_{run}",
                                    headers={"authorization": f"Bearer {stack.admin_token}"})
    assert status == 200 and body.decode().splitlines() == [",".join(rows[0])]


def test_the_csv_export_refuses_bad_inputs_and_other_callers(stack):
    for query, param in (("limit=5", "limit"), ("after=usage_1", "limit"), ("group_by=model", "group_by"),
                         ("status=bogus", "status"), ("since=soon", None), ("colour=red", None)):
        status, _, body = stack.admin("GET", f"/admin/usage/export.csv?{query}")
        assert status == 400 and body["error"]["type"] == "invalid_request_error", (query, body)
        if param:
            assert body["error"]["param"] == param, (query, body)
    status, _, body = stackmod.http("GET", f"{stack.control_plane}/admin/usage/export.csv")
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    holder = stack.must("POST", "/admin/keys", {"name": "holder", "account_id": new_account(stack, f"h-{tag()}")["id"]})
    status, headers, _ = stackmod.http("POST", f"{stack.control_plane}/ui/api/session", {"token": holder["key"]})
    assert status == 201
    status, _, body = session_http(stack, "GET", "/admin/usage/export.csv", headers["set-cookie"].split(";")[0])
    assert status == 403 and body["error"]["code"] == "permission_denied"
