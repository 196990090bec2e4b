// Overview: requests, tokens, cost and errors over time (by hour or day),
// by model, key and account; latency p50/p95, time to first token, top keys
// and models, and the share of estimated tokens.

import { get, qs, all } from "./api.js";
import { h, clear, fmt, stat, table } from "./dom.js";
import { timeChart, bars, seriesOf } from "./chart.js";

const RANGES = { "24h": { seconds: 86400, group: "hour", label: "last 24 hours, by hour" },
  "7d": { seconds: 7 * 86400, group: "hour", label: "last 7 days, by hour" },
  "30d": { seconds: 30 * 86400, group: "day", label: "last 30 days, by day" } };

async function draw(body, range) {
  const r = RANGES[range];
  const since = Math.floor(Date.now() / 1000) - r.seconds;
  const sum = (g) => get(`/admin/usage/summary${qs({ group_by: g, since })}`);
  const [timeSum, modelSum, byKey, byAccount, streams, keys, accounts] = await Promise.all([
    sum(r.group), sum("model"), sum("key").then((d) => d.data), sum("account").then((d) => d.data),
    get(`/admin/usage/streams${qs({ since })}`), all("/admin/keys"), all("/admin/accounts")]);
  const time = timeSum.data, byModel = modelSum.data, whole = modelSum.total;
  const names = new Map([...keys, ...accounts].map((x) => [x.id, x.name ? `${x.name} (${x.id})` : x.id]));
  const win = { range: [since, Math.floor(Date.now() / 1000)] };
  const total = (f) => time.reduce((a, x) => a + f(x), 0);
  const requests = total((x) => x.requests), errors = total((x) => x.errors);
  const tokens = total((x) => x.input_tokens + x.output_tokens), cost = total((x) => x.cost_usd);
  const s = (fields) => seriesOf(time, fields);
  const req = s([["requests", (x) => x.requests], ["errors", (x) => x.errors]]);
  const tok = s([["input", (x) => x.input_tokens], ["output", (x) => x.output_tokens]]);
  const cst = s([["cost (USD)", (x) => x.cost_usd]]);
  const p = s([["p50 ms", (x) => x.latency_p50_ms], ["p95 ms", (x) => x.latency_p95_ms]]);
  const top = (rows, f, text) => [...rows].sort((a, b) => f(b) - f(a)).slice(0, 8)
    .map((x) => ({ label: names.get(x.group) || x.group, value: f(x), text: text(x) }));
  clear(body,
    h("div", { class: "stats" },
      stat("Requests", fmt.int(requests)), stat("Errors", `${fmt.int(errors)}${requests ? ` (${((errors / requests) * 100).toFixed(1)}%)` : ""}`),
      stat("Tokens", fmt.int(tokens)), stat("Cost", fmt.usd(cost)),
      stat("Latency p50 / p95", whole.requests ? `${whole.latency_p50_ms} / ${whole.latency_p95_ms} ms` : "–"),
      stat("Time to first token p50 / p95", streams.streams ? `${streams.ttft_p50_ms} / ${streams.ttft_p95_ms} ms` : "no streams"),
      stat("Estimated tokens", streams.tokens ? `${((streams.estimated_tokens / streams.tokens) * 100).toFixed(1)}%` : "–")),
    h("p", { class: "muted" }, `Charts: ${r.label}. Every figure covers the whole range: latency p50/p95 from the usage rollup's histograms (the upper edge of a bucket, at most 26% above), first token over ${fmt.int(streams.streams)} streams.`),
    h("div", { class: "charts" },
      timeChart("Requests and errors", req.xs, req.series, { bars: true, ...win }),
      timeChart("Tokens", tok.xs, tok.series, { bars: true, ...win }),
      timeChart("Cost (USD)", cst.xs, cst.series, { bars: true, ...win }),
      timeChart("Latency p50 / p95 (ms)", p.xs, p.series, win),
      bars("Top models by requests", top(byModel, (x) => x.requests, (x) => fmt.int(x.requests))),
      bars("Top keys by cost", top(byKey, (x) => x.cost_usd, (x) => fmt.usd(x.cost_usd))),
      bars("Top accounts by tokens", top(byAccount, (x) => x.input_tokens + x.output_tokens, (x) => fmt.int(x.input_tokens + x.output_tokens)))),
    h("h2", {}, "By model"),
    table([
      { label: "Model", cell: (x) => x.group }, { label: "Requests", cell: (x) => fmt.int(x.requests) },
      { label: "Errors", cell: (x) => fmt.int(x.errors) }, { label: "Tokens in/out", cell: (x) => `${fmt.int(x.input_tokens)} / ${fmt.int(x.output_tokens)}` },
      { label: "Cost", cell: (x) => fmt.usd(x.cost_usd) }, { label: "p50 / p95", cell: (x) => `${x.latency_p50_ms} / ${x.latency_p95_ms} ms` },
    ], byModel, "No traffic in this range."));
}

export async function render(root) {
  const body = h("div");
  let range = "24h";
  const tabs = h("div", { class: "tabs", role: "group", "aria-label": "Time range" });
  const drawTabs = () => clear(tabs, Object.keys(RANGES).map((k) => h("button", {
    type: "button", "aria-pressed": String(k === range),
    onclick: async () => { range = k; drawTabs(); await draw(body, range); },
  }, k)));
  drawTabs();
  await draw(body, range);
  clear(root, h("h1", {}, "Overview"), tabs, body);
}
