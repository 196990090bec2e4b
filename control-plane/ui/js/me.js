// A key holder's own account: balance and spend, limits and what is left
// now, the models the key may use, the account's usage by hour over 48 h
// (its summary) and the latest 100 records.

import { get, qs } from "./api.js";
import { h, clear, table, fmt, stat } from "./dom.js";
import { timeChart, seriesOf } from "./chart.js";

const left = (l) => (l ? `${fmt.int(l.remaining)} of ${fmt.int(l.limit)} left` : "no limit");

export async function render(root) {
  const since = Math.floor(Date.now() / 1000) - 48 * 3600;
  const [me, usage, summary] = await Promise.all([get("/v1/me"), get("/v1/usage?limit=100"),
    get(`/v1/usage/summary${qs({ group_by: "hour", since })}`)]);
  const k = me.key, a = me.account, now = me.limits_now;
  const win = { bars: true, range: [since, Math.floor(Date.now() / 1000)] };
  const req = seriesOf(summary.data, [["requests", (x) => x.requests], ["errors", (x) => x.errors]]);
  const tok = seriesOf(summary.data, [["input", (x) => x.input_tokens], ["output", (x) => x.output_tokens]]);
  const cst = seriesOf(summary.data, [["cost (USD)", (x) => x.cost_usd]]);
  const t = summary.total;
  clear(root,
    h("h1", {}, `${a.name}`),
    h("div", { class: "stats" },
      stat("Balance", fmt.usd(a.balance_usd)), stat("Account spent", fmt.usd(a.spent_usd)),
      stat("This key spent", fmt.usd(k.spent_usd)),
      stat("Key budget left", k.budget_usd === null ? "no budget" : `${fmt.usd(k.budget_remaining_usd)} of ${fmt.usd(k.budget_usd)}`),
      stat("Key expires", fmt.time(k.expires_at))),
    h("h2", {}, "Limits now"),
    table([
      { label: "Limit", cell: (r) => r.name }, { label: "Key", cell: (r) => r.key }, { label: "Account", cell: (r) => r.account },
    ], [
      { name: "Requests per minute", key: left(now.key.rpm), account: left(now.account.rpm) },
      { name: "Tokens per minute", key: left(now.key.tpm), account: left(now.account.tpm) },
      { name: "Concurrent requests", key: fmt.limit(k.max_concurrent), account: fmt.limit(a.max_concurrent) },
    ]),
    h("p", { class: "muted" }, `What is left is counted from the usage recorded in the last ${now.window_s} s.`),
    h("h2", {}, "Models you may use"),
    me.models.length ? h("ul", { class: "models" }, me.models.map((m) => h("li", {}, h("a", { href: `#/quickstart/${encodeURIComponent(m)}` }, m)))) : h("p", { class: "muted" }, "None."),
    h("h2", {}, "Usage of the account, last 48 hours"),
    h("div", { class: "stats" },
      stat("Requests", fmt.int(t.requests)), stat("Errors", fmt.int(t.errors)),
      stat("Tokens", fmt.int(t.input_tokens + t.output_tokens)), stat("Cost", fmt.usd(t.cost_usd)),
      stat("Latency p50 / p95", t.requests ? `${t.latency_p50_ms} / ${t.latency_p95_ms} ms` : "–")),
    h("div", { class: "charts" },
      timeChart("Requests and errors by hour", req.xs, req.series, win),
      timeChart("Tokens by hour", tok.xs, tok.series, win),
      timeChart("Cost by hour (USD)", cst.xs, cst.series, win)),
    h("h2", {}, "Latest requests"),
    table([
      { label: "Time (UTC)", cell: (r) => fmt.time(r.created_at) }, { label: "Model", cell: (r) => r.model },
      { label: "Status", cell: (r) => String(r.status) },
      { label: "Tokens in/out", cell: (r) => `${fmt.int(r.input_tokens)} / ${fmt.int(r.output_tokens)}` },
      { label: "Cost", cell: (r) => fmt.usd(r.cost_usd) }, { label: "Latency", cell: (r) => fmt.ms(r.latency_ms) },
    ], usage.data, "No requests yet."));
}
