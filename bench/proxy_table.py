"""The proxying part of the benchmark's table: plain Envoy, the gateway with
the wasm filter and the gateway with the native module, side by side, and
the targets of issues 5 and 13 that these runs decide.

`R` is `Bench.results`; each run is `R[(mode, target)]` with `res` (a
`loadgen.LoadResult`), `cpu` (seconds per process) and `rss` (MiB)."""

from __future__ import annotations

# The targets, in table order: results key, column heading.
TARGETS = [("plain", "plain"), ("gateway", "wasm"), ("native", "native")]


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    if not s:
        return float("nan")
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def present(R: dict, mode: str) -> list[tuple[str, str]]:
    return [(k, h) for k, h in TARGETS if (mode, k) in R]


def modes_table(R: dict, p, w) -> None:
    """Modes a-e, one column per target, then each gateway against plain."""
    names = present(R, "a.conc")
    head = "".join(f"{h:>11s}" for _, h in names)
    ratios = "".join(f"{h + '/plain':>13s}" for _, h in names[1:])
    w(f"{'mode':36s}{'metric':26s}{head}{ratios}   (ratio, or difference for ms)")
    w("-" * (62 + 11 * len(names) + 13 * (len(names) - 1)))

    def row(label, metric, get, fmt, diff=False, compare=True):
        vals = [get(k) for k, _ in names]
        cells = "".join(f"{fmt.format(v):>11s}" for v in vals)
        extra = ""
        if compare and vals[0]:
            extra = "".join(f"{(v - vals[0]):+13.3f}" if diff else f"{v / vals[0]:12.2f}x" for v in vals[1:])
        w(f"{label:36s}{metric:26s}{cells}{extra}")

    modes = [
        ("a.conc", f"a. non-stream, {p.connections} conns, {p.conc_s:g} s"),
        ("b.rate", f"b. non-stream, {p.rate} rps, {p.rate_s:g} s"),
        ("c.stream", f"c. 50-chunk streams, {p.connections} c, {p.stream_s:g} s"),
        ("d.sse200", f"d. 200-chunk streams, {p.connections} c, {p.sse200_s:g} s"),
        ("e.samecore", "e. as a, control plane on CPU 0 too"),
    ]
    for mode, title in modes:
        if not all((mode, k) in R for k, _ in names):
            continue
        g = lambda k, f: f(R[(mode, k)])  # noqa: E731
        row(title, "requests/s", lambda k: g(k, lambda r: r["res"].rps), "{:.0f}")
        row("", "latency p50 ms", lambda k: g(k, lambda r: r["res"].p50_ms), "{:.3f}", diff=True)
        row("", "latency p99 ms", lambda k: g(k, lambda r: r["res"].p99_ms), "{:.3f}", diff=True)
        row("", "Envoy CPU s / 1000 req", lambda k: g(k, lambda r: r["cpu"]["envoy"] / r["res"].ok * 1000), "{:.3f}")
        if mode == "e.samecore":
            row("", "Envoy+CP CPU s / 1000 req",
                lambda k: g(k, lambda r: (r["cpu"]["envoy"] + r["cpu"].get("cp", 0)) / r["res"].ok * 1000), "{:.3f}")
        row("", "Envoy CPU busy %", lambda k: g(k, lambda r: 100 * r["cpu"]["envoy"] / r["res"].seconds), "{:.0f}",
            compare=False)
        busy = "".join("{:>11s}".format("{:.0f} | {:.0f}".format(R[(mode, k)]["cpu"].get("cpu0%", 0),
                                                                   R[(mode, k)]["cpu"].get("cpu1%", 0)))
                       for k, _ in names)
        w(f"{'':36s}{'CPU 0 | CPU 1 busy %, all':26s}{busy}")
        row("", "Envoy RSS MiB after", lambda k: g(k, lambda r: r["rss"]), "{:.1f}", diff=True)
        if mode in ("c.stream", "d.sse200") and R[(mode, "plain")]["res"].fb_p50_ms is not None:
            row("", "TTFB p50 ms, under load", lambda k: g(k, lambda r: r["res"].fb_p50_ms), "{:.3f}", diff=True)
            row("", "TTFB p99 ms, under load", lambda k: g(k, lambda r: r["res"].fb_p99_ms), "{:.3f}", diff=True)
        seq = {"c.stream": ("c.ttfb", "TTFB", "ttfb", "sequential streams"),
               "d.sse200": ("d.seq", "total stream", "total", "sequential 200-chunk streams")}.get(mode)
        if seq and all((seq[0], k) in R for k, _ in names):
            label, what, field, title2 = seq
            n = R[(label, "plain")]["n"]
            t = lambda k, q: pct(R[(label, k)][field], q)  # noqa: E731
            row(f"   {n} {title2}", f"{what} p50 ms", lambda k: t(k, 50), "{:.3f}", diff=True)
            row("", f"{what} p99 ms", lambda k: t(k, 99), "{:.3f}", diff=True)
        w("")
    ev = R.get("events", {})
    w("events per stream (data: lines before [DONE]): "
      + "; ".join(f"{words + 2}-chunk " + " ".join(f"{h} {ev.get((k, words))}" for k, h in names)
                  for words in (48, 198)))
    w("")


def targets_section(R: dict, p, w) -> None:
    """Issue 5's targets for the wasm build and issue 13's for the native one."""
    plain_a = R[("a.conc", "plain")]
    w("targets (issue 5: the gateway; issue 13: native >= 90% of plain's throughput, stream TTFB added <= 0.1 ms")
    w("  at p50, p99 added at 500 rps <= 0.3 ms; instructions per request: below)")
    for key, head in present(R, "a.conc")[1:]:
        gw_a = R[("a.conc", key)]
        ratio = gw_a["res"].rps / plain_a["res"].rps
        cpu_ratio = ((plain_a["cpu"]["envoy"] / plain_a["res"].ok) / (gw_a["cpu"]["envoy"] / gw_a["res"].ok))
        p99 = R[("b.rate", key)]["res"].p99_ms - R[("b.rate", "plain")]["res"].p99_ms
        ttfb = pct(R[("c.ttfb", key)]["ttfb"], 50) - pct(R[("c.ttfb", "plain")]["ttfb"], 50)
        want_a, want_p99, want_ttfb = (0.90, 0.3, 0.1) if key == "native" else (0.85, 0.5, 0.2)
        w(f"  {head}:")
        w(f"    {verdict(ratio >= want_a)}  non-stream throughput >= {want_a:.0%} of plain: {100 * ratio:.1f}%"
          f"   (Envoy-CPU-bound estimate, plain CPU/req over its CPU/req: {100 * cpu_ratio:.1f}%)")
        w(f"    {verdict(p99 <= want_p99)}  p99 added latency <= {want_p99} ms at {p.rate} rps: {p99:+.3f} ms")
        w(f"    {verdict(ttfb <= want_ttfb)}  stream TTFB added <= {want_ttfb} ms at p50: {ttfb:+.3f} ms")
        if ("e.samecore", key) in R:
            same = R[("e.samecore", key)]["res"].rps / plain_a["res"].rps
            w(f"          with the control plane on the same core (mode e): {100 * same:.1f}% of plain")
    w("")
