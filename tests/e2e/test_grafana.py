"""deploy/grafana/tollgate.json against what Prometheus would scrape: after
traffic that moves every series the board draws (answers, upstream errors,
estimates, cached tokens, streams, a failover retry, refusals), every metric
named in every panel's PromQL and in the board's variables is in Envoy's
/stats/prometheus or the control plane's /metrics."""

from __future__ import annotations

import json
import re

from .helpers import chat_body, stackmod
from .failover_fleet import model, provider, wait_routed

BOARD = stackmod.ROOT / "deploy" / "grafana" / "tollgate.json"

# PromQL's words that are not metric names: aggregations, their modifiers,
# the binary and set operators, and the functions called without a parenthesis
# right after them (none here, but `bool` and `offset` stand alone).
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                "bool", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers left once the
    strings, label matchers, ranges, grouping lists, $variables and function
    calls are taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", text):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def test_the_extraction_finds_names_and_only_names():
    expr = ('histogram_quantile(0.95, sum by (le, model) (rate(x_ms_bucket{model=~"$model",a="b(c)"}[$__rate_interval])))'
            ' / ignoring(code) sum(rate(y_total[5m])) or vector(0) > bool 1e3')
    assert metric_names(expr) == {"x_ms_bucket", "y_total"}
    assert metric_names("count(a < scalar(max(b))) or vector(0)") == {"a", "b"}


def test_the_board_is_one_grafana_can_import():
    board = json.loads(BOARD.read_text())
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    taken = set()
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24 and pos["h"] > 0, panel["title"]
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]


def board_queries() -> list[tuple[str, str]]:
    board = json.loads(BOARD.read_text())
    out = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            # label_values(<series>, <label>): the series is PromQL.
            found = re.fullmatch(r"label_values\((.+),\s*\w+\)", var["definition"])
            assert found, var["definition"]
            out.append((f"variable {var['name']}", found.group(1)))
    return out


def scraped_names(text: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{|\s)", text, re.M)}


def scrape(url: str) -> str:
    body = stackmod.http("GET", url, timeout=5)[2]
    return body.decode() if isinstance(body, bytes) else body


def chat(stack, key: str, model_id: str, stream: bool = False, **headers) -> int:
    body = json.loads(chat_body(model_id))
    if stream:
        body["stream"] = True
    h = {"authorization": f"Bearer {key}", **{k.replace("_", "-"): v for k, v in headers.items()}}
    return stackmod.http("POST", f"{stack.gateway}/v1/chat/completions", body, h, timeout=30)[0]


def test_every_metric_the_grafana_board_draws_is_scraped_after_traffic(stack, key):
    queries = board_queries()
    assert len(queries) >= 30
    for title, expr in queries:
        assert metric_names(expr), (title, expr)
    # A model whose first deployment refuses connections: one failover retry.
    dead = provider(stack, f"http://127.0.0.1:{stackmod.free_port()}/v1")
    failing_over = model(stack, (dead, "up-dead", 0), ("mock", "mock-demo-chat", 1))
    wait_routed(stack, [failing_over])
    assert chat(stack, key, failing_over) == 200
    assert chat(stack, key, "demo-chat") == 200
    assert chat(stack, key, "demo-chat", stream=True) == 200
    assert chat(stack, key, "demo-chat", x_mock_cache_read="2") == 200
    assert chat(stack, key, "demo-chat", x_mock_no_usage="1") == 200
    assert chat(stack, key, "demo-chat", x_mock_status="500") == 502, "an upstream 5xx is the gateway's 502"
    assert chat(stack, "tg-not-a-key", "demo-chat") == 401

    used = set().union(*(metric_names(expr) for _, expr in queries))
    assert len(used) >= 25, sorted(used)

    def missing_from(envoy: str, control_plane: str) -> set[str]:
        have = scraped_names(envoy) | scraped_names(control_plane)
        return {f"{title}: {name}" for title, expr in queries for name in metric_names(expr) if name not in have}

    def both():
        return stack.envoy_prometheus(), scrape(f"{stack.control_plane}/metrics")

    # Histograms reach the admin output at Envoy's stats flush (5 s), the
    # native build's counters at its next tick, a labelled control-plane
    # family once the first record was shipped. Waiting for any one series
    # is not enough: a module run before this one on the same stack (such as
    # test_metrics) may have put it there already.
    try:
        stackmod.wait_until(lambda: not missing_from(*both()), timeout=15, interval=0.5, what="every series")
    except TimeoutError:
        pass  # the assertion below names what is missing
    envoy, control_plane = both()
    missing = missing_from(envoy, control_plane)
    assert not missing, sorted(missing)
    # Both sources are drawn.
    assert used & scraped_names(control_plane) and used & scraped_names(envoy)
