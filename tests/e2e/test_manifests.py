"""The deployment files (deploy/, docker-compose.yml, the Dockerfiles),
checked without a cluster or a Docker engine: each Kubernetes object has the
fields its kind needs, the control plane's ports and environment are the ones
the binary reads (from control-plane/src), the Istio WasmPlugin's and Envoy
Gateway's plugin configurations are accepted by the real filter in real Envoy
and route a real request through the clusters they name, and every COPY
source exists in the build context."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml

from . import manifests as m
from .helpers import chat_body, stackmod

# (apiVersion, kind) of every object deploy/ may hold; a new kind needs its
# checks here first.
KINDS = {
    ("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "PersistentVolumeClaim"),
    ("v1", "Service"), ("apps/v1", "Deployment"),
    ("extensions.istio.io/v1alpha1", "WasmPlugin"),
    ("networking.istio.io/v1", "Gateway"), ("networking.istio.io/v1", "VirtualService"),
    ("networking.istio.io/v1", "ServiceEntry"), ("networking.istio.io/v1", "DestinationRule"),
    ("gateway.networking.k8s.io/v1", "Gateway"), ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("gateway.envoyproxy.io/v1alpha1", "Backend"),
    ("gateway.envoyproxy.io/v1alpha1", "EnvoyExtensionPolicy"),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
}
NO_SPEC = {"Namespace", "ConfigMap", "Secret", "Kustomization"}
# Not applied as a resource: a patch for `kubectl patch` (kustomization.yaml says how).
PATCHES = {m.DEPLOY / "istio" / "ingressgateway-patch.yaml"}


def objects(kind: str) -> list[dict]:
    return [doc for path, doc in m.documents() if doc.get("kind") == kind and path not in PATCHES]


def one(kind: str) -> dict:
    found = objects(kind)
    assert len(found) == 1, f"{len(found)} {kind} in deploy/"
    return found[0]


def test_every_object_has_what_its_kind_needs():
    docs = m.documents()
    assert len(docs) >= 15
    for path, doc in docs:
        where = f"{path.relative_to(m.ROOT)}: {doc.get('kind')}"
        assert (doc.get("apiVersion"), doc.get("kind")) in KINDS, where
        if doc["kind"] == "Kustomization":
            continue
        assert isinstance(doc.get("metadata"), dict) and doc["metadata"].get("name"), where
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", doc["metadata"]["name"]), where
        if doc["kind"] not in NO_SPEC:
            assert isinstance(doc.get("spec"), dict) and doc["spec"], where
    for doc in objects("Deployment"):
        spec = doc["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        for c in spec["template"]["spec"]["containers"]:
            assert c["name"] and c["image"]
            assert all(isinstance(p["containerPort"], int) for p in c["ports"])
    for doc in objects("Secret"):
        assert all(isinstance(v, str) for v in doc.get("stringData", {}).values())
    for doc in objects("PersistentVolumeClaim"):
        assert doc["spec"]["accessModes"] and doc["spec"]["resources"]["requests"]["storage"]


# The Kubernetes version whose schemas the built-in kinds are held to
# (kubernetes-validate bundles them: nothing fetched at test time).
KUBERNETES = "1.37.0"


def test_every_builtin_object_is_valid_by_the_kubernetes_schema():
    """Strictly (no field the schema lacks) against Kubernetes' own OpenAPI
    schemas. The CRDs (WasmPlugin, EnvoyExtensionPolicy, Gateway API,
    Istio's networking kinds) have none in the package: the hand-written
    checks above hold them. A patch is a partial object and is applied
    onto the real one, so it is checked merged onto a minimal Deployment."""
    import kubernetes_validate as kv

    checked = 0
    for path, doc in m.documents():
        if path in PATCHES or doc["kind"] == "Kustomization":
            continue
        try:
            kv.validate(doc, KUBERNETES, strict=True)
            checked += 1
        except kv.SchemaNotFoundError:
            assert doc["apiVersion"] != "v1" and not doc["apiVersion"].startswith("apps/"), (path, doc["kind"])
        except kv.ValidationError as e:
            raise AssertionError(f"{path.relative_to(m.ROOT)}: {doc['kind']}: {e.message}") from None
    assert checked >= 6
    # The schema check can fail: a misspelt field is refused.
    bad = {**one("Service"), "spec": {**one("Service")["spec"], "prots": []}}
    try:
        kv.validate(bad, KUBERNETES, strict=True)
        raise AssertionError("a Service with `prots` passed")
    except kv.ValidationError:
        pass
    for patch in PATCHES:
        for doc in yaml.safe_load_all(patch.read_text()):
            base = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "istio-ingressgateway"},
                    "spec": {"selector": {"matchLabels": {"app": "x"}},
                             "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}}}}
            kv.validate(merged(base, doc), KUBERNETES, strict=True)


def merged(base, patch):
    """A strategic-merge patch's effect for what the patch file uses: maps
    merge, lists of named items merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: merged(base.get(k), v) for k, v in patch.items()}}
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i for i in patch):
        by = {i["name"]: i for i in base}
        return [merged(by.get(i["name"]), i) for i in patch] + [i for i in base if i["name"] not in {p["name"] for p in patch}]
    return patch


def test_each_kustomization_names_every_file_beside_it_and_only_files_that_exist():
    for path in sorted(m.DEPLOY.rglob("kustomization.yaml")):
        k = yaml.safe_load(path.read_text())
        listed = {(path.parent / r).resolve() for r in k["resources"]}
        assert all(p.exists() for p in listed), path
        beside = {p.resolve() for p in path.parent.rglob("*.yaml")
                  if p.name != "kustomization.yaml" and p not in PATCHES
                  and not (p.parent != path.parent and (p.parent / "kustomization.yaml").exists())}
        assert beside == listed, (path, sorted(map(str, beside ^ listed)))
    top = yaml.safe_load((m.DEPLOY / "kustomization.yaml").read_text())
    images = {c["image"] for c in one("Deployment")["spec"]["template"]["spec"]["containers"]}
    assert {i["name"] for i in top["images"]} == images


def test_the_control_plane_listens_where_its_container_port_and_service_say():
    config = one("ConfigMap")["data"]
    host, port = m.listen_port(config["TOLLGATE_LISTEN"])
    assert host == "0.0.0.0", "in a pod, 127.0.0.1 is unreachable from the Service"
    deployment = one("Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port in ports.values()
    for probe in ("readinessProbe", "livenessProbe"):
        assert ports[container[probe]["httpGet"]["port"]] == port
    service = one("Service")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    for p in service["spec"]["ports"]:
        assert ports.get(p["targetPort"], p["targetPort"]) == port
    # Under Istio the filter's control-plane cluster is the Service's.
    plugin = one("WasmPlugin")["spec"]["pluginConfig"]
    name, ns = service["metadata"]["name"], "tollgate"
    assert plugin["control_plane_cluster"] == f"outbound|{service['spec']['ports'][0]['port']}||{name}.{ns}.svc.cluster.local"
    mounts = {v["mountPath"] for v in container["volumeMounts"]}
    assert config["TOLLGATE_DATA_DIR"] in mounts


def test_every_setting_in_the_manifests_and_compose_is_one_the_control_plane_reads():
    reads = m.control_plane_env()
    assert {"TOLLGATE_LISTEN", "TOLLGATE_DATABASE_URL", "TOLLGATE_FILTER_SECRET", "RUST_LOG"} <= reads, reads
    config, secret = one("ConfigMap"), one("Secret")
    given = set(config["data"]) | set(secret["stringData"])
    # The commented-out ones too (PostgreSQL, Redis): they must work when uncommented.
    text = (m.DEPLOY / "control-plane" / "secret.yaml").read_text()
    given |= set(re.findall(r"^\s*#\s*([A-Z][A-Z0-9_]+):", text, re.M))
    assert {"TOLLGATE_DATABASE_URL", "TOLLGATE_REDIS_URL"} <= given
    assert given <= reads, sorted(given - reads)
    container = one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    refs = {next(iter(e.values()))["name"] for e in container["envFrom"]}
    assert refs == {config["metadata"]["name"], secret["metadata"]["name"]}
    compose = yaml.safe_load((m.ROOT / "docker-compose.yml").read_text())
    cp = compose["services"]["control-plane"]
    assert set(cp["environment"]) <= reads, sorted(set(cp["environment"]) - reads)
    host, port = m.listen_port(cp["environment"]["TOLLGATE_LISTEN"])
    assert host == "0.0.0.0" and any(p.endswith(f":{port}") for p in cp["ports"])


def test_compose_builds_stages_the_dockerfile_has_and_the_gateway_gets_the_filter_secret():
    compose = yaml.safe_load((m.ROOT / "docker-compose.yml").read_text())
    stages = m.dockerfile_stages(m.ROOT / "Dockerfile")
    for name, service in compose["services"].items():
        assert service["build"]["target"] in stages, name
    secret = m.filter_secret_env()
    gateway = compose["services"]["gateway"]["environment"]
    assert gateway[secret] == compose["services"]["control-plane"]["environment"][secret]


def test_the_gateway_manifests_hand_the_filter_its_secret_from_the_environment():
    secret = m.filter_secret_env()
    wasm = one("WasmPlugin")["spec"]
    assert wasm["url"].startswith("oci://") and wasm["failStrategy"] == "FAIL_CLOSE"
    assert wasm["selector"]["matchLabels"] and wasm["type"] == "HTTP"
    assert {"name": secret, "valueFrom": "HOST"} in wasm["vmConfig"]["env"]
    assert "filter_secret" not in wasm["pluginConfig"]
    patch = yaml.safe_load(next(iter(PATCHES)).read_text())
    env = patch["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == [secret]
    policy = one("EnvoyExtensionPolicy")["spec"]
    assert policy["targetRefs"] and len(policy["wasm"]) == 1
    plugin = policy["wasm"][0]
    assert plugin["code"]["type"] == "Image" and plugin["code"]["image"]["url"]
    assert plugin["env"]["hostKeys"] == [secret] and plugin["failOpen"] is False
    assert "filter_secret" not in plugin["config"]
    fields = m.plugin_config_fields()
    assert {"control_plane_cluster", "upstream_cluster", "failover"} <= fields
    for config in (wasm["pluginConfig"], plugin["config"]):
        assert set(config) <= fields, sorted(set(config) - fields)


def test_the_envoy_gateway_plugin_names_the_clusters_of_its_route_rules():
    route = one("HTTPRoute")
    ns = "tollgate"
    config = one("EnvoyExtensionPolicy")["spec"]["wasm"][0]["config"]
    rules = [f"httproute/{ns}/{route['metadata']['name']}/rule/{i}" for i in range(len(route["spec"]["rules"]))]
    assert config["control_plane_cluster"] == rules[0]
    backends = route["spec"]["rules"][0]["backendRefs"]
    assert backends[0]["name"] == one("Service")["metadata"]["name"]
    backends = {b["metadata"]["name"]: b["spec"] for b in objects("Backend")}
    for field in ("upstream_cluster", "upstream_tls_cluster"):
        rule = route["spec"]["rules"][rules.index(config[field])]
        assert {"name": "x-tollgate-cluster", "value": config[field]} in rule["matches"][0]["headers"]
        # A backend that goes where the filter's :authority says, TLS for TLS.
        backend = backends[rule["backendRefs"][0]["name"]]
        assert backend["type"] == "DynamicResolver"
        assert ("tls" in backend) == (field == "upstream_tls_cluster")


def test_every_dockerfile_copies_files_that_exist_in_its_context():
    dockerfiles = [m.ROOT / "Dockerfile", *sorted(m.DEPLOY.glob("*Dockerfile"))]
    assert len(dockerfiles) == 2
    for dockerfile in dockerfiles:
        patterns = m.dockerignore_for(dockerfile)
        sources = m.dockerfile_copies(dockerfile)
        assert sources, dockerfile
        for source in sources:
            assert (m.ROOT / source).exists(), f"{dockerfile.name}: COPY {source}: no such file (./tollgate setup builds it)"
            assert source == "." or not m.ignored(source, patterns), f"{dockerfile.name}: {source} is .dockerignored"
    # The wasm image is the one file, plugin.wasm, and the big context is not sent.
    wasm = (m.DEPLOY / "wasm.Dockerfile").read_text()
    assert re.search(r"^FROM scratch$", wasm, re.M) and "./plugin.wasm" in wasm
    assert m.ignored("target/debug/tollgate-control-plane", m.dockerignore_for(m.DEPLOY / "wasm.Dockerfile"))
    assert m.ignored("target", m.dockerignore_for(m.ROOT / "Dockerfile"))


# --- the plugin configurations in real Envoy ---------------------------------

def envoy_with(stack, plugin: dict, name: str) -> tuple[dict, list[str]]:
    """The stack's Envoy config with the filter's configuration replaced by
    `plugin` and each cluster it names made (tools/istio.py)."""
    config = yaml.safe_load(stack.envoy_config(stackmod.free_port(), stackmod.free_port(), name).read_text())
    return stackmod.istio.with_plugin(config, plugin)


def validate(config: dict, path, secret: str) -> subprocess.CompletedProcess:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return subprocess.run([str(stackmod.envoy_binary()), "--mode", "validate", "-c", str(path),
                           "--disable-hot-restart", "--log-level", "warn"],
                          env={"TOLLGATE_FILTER_SECRET": secret}, capture_output=True, text=True, timeout=60)


def plugin_configs() -> list[tuple[str, dict]]:
    return [("istio", one("WasmPlugin")["spec"]["pluginConfig"]),
            ("envoy-gateway", one("EnvoyExtensionPolicy")["spec"]["wasm"][0]["config"])]


@pytest.mark.parametrize("which", ["istio", "envoy-gateway"])
def test_the_plugin_configuration_is_accepted_by_the_filter_and_routes_through_its_clusters(stack, which, tmp_path):
    plugin = dict(plugin_configs())[which]
    config, made = envoy_with(stack, plugin, f"envoy-{which}")
    assert len(made) >= 2
    # Refused with a field the filter does not know: the check can fail.
    bad, _ = envoy_with(stack, {**plugin, "no_such_field": 1}, f"envoy-{which}-bad")
    refused = validate(bad, tmp_path / "bad.yaml", stack.filter_secret)
    assert refused.returncode != 0 and "no_such_field" in refused.stdout + refused.stderr
    checked = validate(config, tmp_path / "validate.yaml", stack.filter_secret)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
    # And serving: a request with the demo key goes through the clusters named.
    port = config["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"]
    admin = config["admin"]["address"]["socket_address"]["port_value"]
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = stackmod.Proc(f"envoy-{which}", [str(stackmod.envoy_binary()), "-c", str(path), "--concurrency", "1",
                                           "--base-id", str(stack.base_id + 7), "--disable-hot-restart"],
                         tmp_path, env={"TOLLGATE_FILTER_SECRET": stack.filter_secret}).start()
    try:
        stackmod.wait_until(lambda: stackmod.http("GET", f"http://127.0.0.1:{admin}/ready", timeout=1)[0] == 200,
                            timeout=30, what="envoy /ready")
        key = stack.demo["key"]["key"]
        url = f"http://127.0.0.1:{port}/v1/chat/completions"

        def answered():
            status, _, body = stackmod.http("POST", url, chat_body(), {"authorization": f"Bearer {key}"})
            return (status, body) if status != 503 else None

        status, body = stackmod.wait_until(answered, timeout=15, what="the first snapshot")
        assert status == 200 and body["usage"]["completion_tokens"] > 0, body
        stats = stackmod.http("GET", f"http://127.0.0.1:{admin}/stats?filter=upstream_rq_total", timeout=5)[2].decode()
        for cluster in (plugin["control_plane_cluster"], plugin["upstream_cluster"]):
            hits = re.search(rf"^cluster\.{re.escape(cluster)}\.upstream_rq_total: (\d+)$", stats, re.M)
            assert hits and int(hits.group(1)) >= 1, (cluster, stats)
    finally:
        proc.stop()


@pytest.mark.parametrize("source", ["kubernetes", "compose"])
def test_the_control_plane_starts_on_the_settings_of_the_manifests(source, tmp_path):
    """The binary itself takes every value given (a bad one stops it at start),
    with only the listen address and the data directory moved to this machine."""
    if source == "kubernetes":
        env = {**one("ConfigMap")["data"], **one("Secret")["stringData"]}
    else:
        compose = yaml.safe_load((m.ROOT / "docker-compose.yml").read_text())
        # As compose substitutes ${NAME:-default} from its own environment.
        env = {k: re.sub(r"\$\{([A-Z0-9_]+):-([^}]*)\}", lambda g: os.environ.get(g[1], g[2]), str(v))
               for k, v in compose["services"]["control-plane"]["environment"].items()}
    port = stackmod.free_port()
    env.update({"TOLLGATE_LISTEN": f"127.0.0.1:{port}", "TOLLGATE_DATA_DIR": str(tmp_path / "data")})
    proc = stackmod.Proc(f"control-plane-{source}", [str(stackmod.binary("tollgate-control-plane"))],
                         tmp_path, env={k: str(v) for k, v in env.items()})
    try:
        proc.start(ready="listening on")
        assert stackmod.http("GET", f"http://127.0.0.1:{port}/healthz")[0] == 200
        status, _, body = stackmod.http("GET", f"http://127.0.0.1:{port}/api/status")
        assert status == 200 and body["control_plane"]["database"] == "ok", body
        if "TOLLGATE_ADMIN_TOKEN" in env:
            auth = {"authorization": f"Bearer {env['TOLLGATE_ADMIN_TOKEN']}"}
            assert stackmod.http("GET", f"http://127.0.0.1:{port}/admin/accounts", headers=auth)[0] == 200
    finally:
        proc.stop()
    # A value the binary refuses stops it: the check can fail.
    bad = stackmod.Proc(f"control-plane-{source}-bad", [str(stackmod.binary("tollgate-control-plane"))], tmp_path,
                        env={**{k: str(v) for k, v in env.items()}, "TOLLGATE_LEASE_FAIL": "sometimes"})
    with pytest.raises(RuntimeError):
        bad.start(ready="listening on", timeout=10)
