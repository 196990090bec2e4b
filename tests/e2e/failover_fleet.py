"""What the failover tests share (issue 11, docs/routing.md): a mock
upstream started per deployment with the way it fails (`--steer`),
providers and models made of them, the wait until Envoy has their failover
clusters, and the requests and usage records the tests read. Used by
test_failover.py, test_timeouts.py, test_key_pools.py and test_grafana.py,
so that no test module imports another."""

from __future__ import annotations

import http.client
import json
import time

from .helpers import chat_body, records_of, stackmod, tag


class Mock:
    def __init__(self, stack, name: str, *steer: str, port: int | None = None):
        self.port = port or stackmod.free_port()
        args = [str(stackmod.binary("tollgate-mock-upstream")), "--listen", f"127.0.0.1:{self.port}"]
        for s in steer:
            args += ["--steer", s]
        self.proc = stackmod.Proc(f"mock-{name}-{self.port}", args, stack.work_dir).start(ready="listening on")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def calls(self, request_id: str | None = None) -> list[dict]:
        _, _, body = stackmod.http("GET", f"{self.url}/_mock/ledger")
        return [e for e in body["entries"] if request_id is None or e.get("x_request_id") == request_id]

    def stop(self) -> None:
        self.proc.stop()


def provider(stack, base_url: str) -> str:
    pid = f"fo-{tag()}"
    stack.must("POST", "/admin/providers", {"id": pid, "kind": "openai", "base_url": base_url, "api_key": f"sk-{pid}"})
    return pid


def model(stack, *deployments: tuple, max_attempts: int | None = None, strategy: str | None = None) -> str:
    """A model whose deployments are (provider, upstream model, priority[,
    first-byte timeout in ms[, idle timeout in ms]])."""
    mid = f"fo-{tag()}"
    stack.must("POST", "/admin/models", {
        "id": mid,
        **({"max_attempts": max_attempts} if max_attempts else {}),
        **({"strategy": strategy} if strategy else {}),
        "pricing": {"input_per_1m": 1.0, "output_per_1m": 2.0},
        "deployments": [
            {"provider": d[0], "upstream_model": d[1], "priority": d[2], "weight": 1,
             **({"first_byte_timeout_ms": d[3]} if len(d) > 3 and d[3] else {}),
             **({"idle_timeout_ms": d[4]} if len(d) > 4 else {})}
            for d in deployments
        ],
    })
    return mid


def envoy_clusters(stack) -> str:
    return stackmod.http("GET", f"{stack.envoy_admin}/clusters", timeout=5)[2]


def wait_routed(stack, models: list[str]) -> None:
    """The filter sends to a failover cluster once it has known it for 3 s
    (`CLUSTER_WARMUP_MS`), so that Envoy has fetched it: wait until Envoy
    has every cluster the control plane serves for `models`, then 3.5 s."""
    node = {"node": {"id": "test", "cluster": "test",
                     "metadata": {"tollgate_wasm": "/x", "tollgate_ca_bundle": "/x"}}}
    _, _, cds = stackmod.http("POST", f"{stack.control_plane}/v3/discovery:clusters", body=node)
    names = [c["name"] for c in cds["resources"]
             if c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["metadata"]["filter_metadata"]
             ["tollgate"]["model"] in models]
    assert len(names) >= len(models), (names, models)
    stackmod.wait_until(lambda: all(n in envoy_clusters(stack).decode() for n in names), timeout=15,
                        what="the failover clusters in Envoy")
    time.sleep(3.5)


def chat(stack, key: str, mid: str, stream: bool = False, headers: dict | None = None):
    body = json.loads(chat_body(mid))
    if stream:
        body["stream"] = True
    h = {"authorization": f"Bearer {key}", "content-type": "application/json", **(headers or {})}
    return stackmod.http("POST", f"{stack.gateway}/v1/chat/completions", body=body, headers=h, timeout=30)


def stream_whole(stack, key: str, mid: str, timeout: float = 30) -> tuple[int, str, bytes, float]:
    """A streamed chat read to its end: status, request id, the bytes (what
    arrived, when the stream was cut) and the seconds it took."""
    body = json.loads(chat_body(mid))
    body["stream"] = True
    conn = http.client.HTTPConnection("127.0.0.1", stack.gateway_port, timeout=timeout)
    t0 = time.monotonic()
    conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                 headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
    resp = conn.getresponse()
    try:
        got = resp.read()
    except http.client.IncompleteRead as cut:
        got = cut.partial
    took = time.monotonic() - t0
    conn.close()
    return resp.status, resp.getheader("x-request-id"), got, took


def served_record(stack, request_id: str) -> dict:
    got = stackmod.wait_until(lambda: records_of(stack, {request_id}), timeout=15, interval=0.3, what="the usage record")
    assert len(got) == 1, got
    return got[0]


def records_of_all(stack, ids: list[str]) -> list[dict]:
    got = stackmod.wait_until(lambda: (lambda r: r if len(r) == len(ids) else None)(records_of(stack, set(ids))),
                              timeout=15, interval=0.3, what="the usage records")
    return got
