// A key holder's own account: balance and spend, limits and what is left
// now, the models the key may use, usage by hour and the latest records.

import { get } from "./api.js";
import { h, clear, table, fmt, stat } from "./dom.js";
import { timeChart } from "./chart.js";

const left = (l) => (l ? `${fmt.int(l.remaining)} of ${fmt.int(l.limit)} left` : "no limit");

/// Records grouped by hour: (xs, requests, tokens).
function byHour(records) {
  const m = new Map();
  for (const r of records) {
    const hr = Math.floor(r.created_at / 3600) * 3600;
    const v = m.get(hr) || { requests: 0, tokens: 0, cost: 0 };
    v.requests += 1; v.tokens += r.total_tokens; v.cost += r.cost_usd;
    m.set(hr, v);
  }
  const xs = [...m.keys()].sort((a, b) => a - b);
  return { xs, requests: xs.map((x) => m.get(x).requests), tokens: xs.map((x) => m.get(x).tokens), cost: xs.map((x) => m.get(x).cost) };
}

export async function render(root) {
  const [me, usage] = await Promise.all([get("/v1/me"), get("/v1/usage?limit=100")]);
  const k = me.key, a = me.account, now = me.limits_now;
  const hours = byHour(usage.data);
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
    h("h2", {}, "Usage"),
    h("div", { class: "charts" },
      timeChart("Requests by hour (latest 100 records)", hours.xs, [{ label: "requests", values: hours.requests }], { bars: true }),
      timeChart("Tokens by hour", hours.xs, [{ label: "tokens", values: hours.tokens }], { bars: true })),
    table([
      { label: "Time (UTC)", cell: (r) => fmt.time(r.created_at) }, { label: "Model", cell: (r) => r.model },
      { label: "Status", cell: (r) => String(r.status) },
      { label: "Tokens in/out", cell: (r) => `${fmt.int(r.input_tokens)} / ${fmt.int(r.output_tokens)}` },
      { label: "Cost", cell: (r) => fmt.usd(r.cost_usd) }, { label: "Latency", cell: (r) => fmt.ms(r.latency_ms) },
    ], usage.data, "No requests yet."));
}
