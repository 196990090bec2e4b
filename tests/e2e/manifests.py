"""What tests/e2e/test_manifests.py checks the deployment files against,
read from the sources rather than listed by hand: the environment variables
the control plane reads, the plugin configuration's fields and the filter's
secret variable, the Dockerfiles' COPY sources and their .dockerignore."""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path

import yaml

from .helpers import stackmod

ROOT = stackmod.ROOT
DEPLOY = ROOT / "deploy"


def documents() -> list[tuple[Path, dict]]:
    """Every YAML document under deploy/, with its file."""
    out = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert isinstance(doc, dict), f"{path}: a document that is not a mapping"
            out.append((path, doc))
    return out


def control_plane_env() -> set[str]:
    """The environment variables control-plane/src reads: `var("X")`,
    `flag("X")`, `std::env::var("X")`, a `const ..: &str = "TOLLGATE_X"`
    read by name, and RUST_LOG where the log filter is
    taken from the environment (tracing's EnvFilter::try_from_default_env)."""
    names: set[str] = set()
    for path in (ROOT / "control-plane" / "src").rglob("*.rs"):
        text = path.read_text()
        names |= set(re.findall(r'\b(?:var|flag|env::var)\("([A-Z][A-Z0-9_]+)"\)', text))
        names |= set(re.findall(r'\bconst [A-Z_]+: &str = "(TOLLGATE_[A-Z0-9_]+)";', text))
        if "EnvFilter::try_from_default_env" in text:
            names.add("RUST_LOG")
    return names


def filter_secret_env() -> str:
    text = (ROOT / "filter" / "src" / "config.rs").read_text()
    found = re.search(r'pub const SECRET_ENV: &str = "([A-Z_]+)";', text)
    assert found, "filter/src/config.rs names no SECRET_ENV"
    return found.group(1)


def plugin_config_fields() -> set[str]:
    """The fields of filter/src/config.rs's PluginConfig (deny_unknown_fields)."""
    text = (ROOT / "filter" / "src" / "config.rs").read_text()
    body = re.search(r"pub struct PluginConfig \{(.*?)\n\}", text, re.S)
    assert body, "no PluginConfig in filter/src/config.rs"
    return set(re.findall(r"^\s*pub (\w+):", body.group(1), re.M))


def listen_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


def dockerfile_copies(path: Path) -> list[str]:
    """The sources of the Dockerfile's COPY and ADD lines from the build
    context (not those `--from` another stage)."""
    sources = []
    for line in path.read_text().splitlines():
        first = line.split(maxsplit=1)[0].upper() if line.strip() else ""
        if first not in ("COPY", "ADD"):
            continue
        words = shlex.split(line, comments=True)
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        sources += args[:-1]
    return sources


def dockerfile_stages(path: Path) -> set[str]:
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", path.read_text(), re.M | re.I))


def dockerignore_for(dockerfile: Path) -> list[str]:
    """The patterns that apply to a build with this Dockerfile and the
    repository as context: `<Dockerfile>.dockerignore` beside it (BuildKit),
    else the context's `.dockerignore`."""
    own = dockerfile.with_name(dockerfile.name + ".dockerignore")
    path = own if own.exists() else ROOT / ".dockerignore"
    if not path.exists():
        return []
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether Docker leaves `relative` out of the context: the last pattern
    that matches the path or one of its parents wins, `!` re-includes."""
    parts = relative.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    out = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.strip("/")
        if any(fnmatch.fnmatchcase(p, pat) for p in prefixes):
            out = not negate
    return out
