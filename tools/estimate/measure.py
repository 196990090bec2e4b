"""How far Tollgate's estimate (the filter's `usage::char_weight` and
`estimate_tokens`: 4 ASCII characters a token, other scripts below U+2E80 0.3
of a token a character, CJK and beyond 0.8) is from real token counts (OpenAI's cl100k_base and
o200k_base, by the `gpt-tokenizer` npm package), on a corpus of this
repository's own text (prose, code, config) and a few chat-style and
non-English lines. The estimate is used only when an upstream reports no
usage. Run: python3 tools/estimate/measure.py (installs the tokenizer here
with npm on the first run)."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHUNK = 1500  # characters: about a long chat message

KINDS = {
    "prose": ["*.md"],
    "code": ["*.rs", "*.py"],
    "config": ["*.yaml", "*.json", "*.toml", "*.sql"],
}


def chunks(text: str) -> list[str]:
    return [text[i:i + CHUNK] for i in range(0, len(text), CHUNK) if text[i:i + CHUNK].strip()]


def corpus() -> dict[str, list[str]]:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    out: dict[str, list[str]] = {}
    for kind, patterns in KINDS.items():
        files = sorted({f for f in tracked for p in patterns if Path(f).match(p) and "node_modules" not in f})
        out[kind] = [c for f in files for c in chunks((ROOT / f).read_text(errors="replace"))]
    lines = [l for l in (HERE / "extra-corpus.txt").read_text().splitlines() if l and not l.startswith("#")]
    out["chat, non-English"] = [l for l in lines if not l.isascii()]
    out["chat, English"] = [l for l in lines if l.isascii()]
    return out


def count(texts: list[str]) -> list[dict]:
    if not (HERE / "node_modules" / "gpt-tokenizer").exists():
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund"], cwd=HERE, check=True)
    out = subprocess.run(["node", "count.js"], cwd=HERE, input="\n".join(json.dumps(t) for t in texts),
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(l) for l in out.splitlines()]


def weight(c: str) -> int:
    """Twentieths of a token, as `usage::char_weight` in the filter."""
    if ord(c) < 128:
        return 5
    return 6 if ord(c) < 0x2E80 else 16


def estimate(text: str) -> int:
    return math.ceil(sum(weight(c) for c in text) / 20)


def plain(text: str) -> int:
    """The first estimate, 4 characters a token whatever the script."""
    return math.ceil(len(text) / 4)


def main() -> None:
    print(f"{'corpus':<18} {'texts':>5} {'tokenizer':<8} {'est/real':>8} {'mean |err|':>10} {'p90 |err|':>9} {'worst':>7}"
          f" {'chars/4 mean |err|':>19}")
    for kind, texts in corpus().items():
        counts = count(texts)
        for enc in ("cl100k", "o200k"):
            ratios = [estimate(t) / c[enc] for t, c in zip(texts, counts) if c[enc]]
            errs = sorted(abs(r - 1) for r in ratios)
            total = sum(estimate(t) for t in texts) / sum(c[enc] for c in counts)
            p90 = errs[int(0.9 * (len(errs) - 1))]
            worst = max(ratios, key=lambda r: abs(r - 1))
            before = statistics.mean(abs(plain(t) / c[enc] - 1) for t, c in zip(texts, counts) if c[enc])
            print(f"{kind:<18} {len(texts):>5} {enc:<8} {total:>8.2f} {statistics.mean(errs):>9.0%} {p90:>9.0%} {worst:>7.2f}"
                  f" {before:>18.0%}")


if __name__ == "__main__":
    main()
