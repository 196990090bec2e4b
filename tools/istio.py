"""The stack's Envoy as Istio's agent would configure it for
deploy/istio/wasmplugin.yaml: the filter's configuration is the
WasmPlugin's `pluginConfig` (as JSON, which is how Istio hands it over),
and each cluster it names exists under that name (Istio's
`outbound|<port>||<host>`), a copy of the stack's cluster that does that
job. There is no bootstrap singleton and a VM per worker, as in the stack.
What stays the stack's: the listener, its routes to the control plane and
the ports. Used by `Stack(istio=True)` (TOLLGATE_E2E_ISTIO=1) and by
tests/e2e/test_manifests.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WASMPLUGIN = ROOT / "deploy" / "istio" / "wasmplugin.yaml"

# The plugin configuration's cluster fields, and the stack's cluster that
# does each one's job (the plaintext one when a name serves both).
CLUSTER_FIELDS = {"control_plane_cluster": "tollgate_control_plane",
                  "upstream_cluster": "tollgate_upstream", "upstream_tls_cluster": "tollgate_upstream_tls"}


def plugin_config() -> dict:
    import yaml  # PyYAML, in the project's virtualenv (./tollgate setup)

    for doc in yaml.safe_load_all(WASMPLUGIN.read_text()):
        if doc and doc.get("kind") == "WasmPlugin":
            return doc["spec"]["pluginConfig"]
    raise ValueError(f"no WasmPlugin in {WASMPLUGIN}")


def with_plugin(config: dict, plugin: dict) -> tuple[dict, list[str]]:
    """`config` (a parsed Envoy bootstrap of the stack) with the wasm
    filter's configuration replaced by `plugin` and a cluster made for each
    name it gives; returns the new config and the names made."""
    config = copy.deepcopy(config)
    clusters = config["static_resources"]["clusters"]
    by_name = {c["name"]: c for c in clusters}
    made: list[str] = []
    for name_field, template in CLUSTER_FIELDS.items():
        wanted = plugin.get(name_field)
        if not wanted or wanted in made or wanted in by_name:
            continue
        cluster = copy.deepcopy(by_name[template])
        cluster["name"] = wanted
        if "load_assignment" in cluster:
            cluster["load_assignment"]["cluster_name"] = wanted
        clusters.append(cluster)
        made.append(wanted)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    wasm = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.wasm")
    wasm["typed_config"]["config"]["configuration"]["value"] = json.dumps(plugin)
    return config, made


def istio_envoy(rendered: str) -> str:
    """The stack's rendered Envoy config, as Istio would run the filter."""
    import yaml

    config, _ = with_plugin(yaml.safe_load(rendered), plugin_config())
    return yaml.safe_dump(config, sort_keys=False)
