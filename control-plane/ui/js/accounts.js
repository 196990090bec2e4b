// Accounts: balance, top-up, create, the account's keys and usage.

import { api, get, qs, all } from "./api.js";
import { h, clear, table, fmt, toast, button, field, card, numberOrNull } from "./dom.js";
import { timeChart, seriesOf } from "./chart.js";

function newAccountForm(onDone) {
  const name = h("input", { name: "name", required: true, maxlength: 200 });
  const balance = h("input", { name: "balance_usd", type: "number", min: 0, step: "0.01" });
  const rpm = h("input", { name: "rpm", type: "number", min: 0 });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card form", "aria-label": "New account" }, h("h2", {}, "New account"),
    h("div", { class: "grid" }, field("Name", name), field("Balance (USD)", balance, "Empty: unlimited"),
      field("Requests per minute", rpm, "Empty: no limit")),
    error, h("div", { class: "actions" }, h("button", { type: "submit" }, "Create account")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { name: name.value.trim() };
    if (numberOrNull(balance) !== null) body.balance_usd = numberOrNull(balance);
    if (numberOrNull(rpm) !== null) body.rpm = numberOrNull(rpm);
    try { await api("POST", "/admin/accounts", body); toast("Account created."); onDone(); } catch (e) { error.textContent = e.message; }
  });
  return form;
}

async function detail(account, reload) {
  const amount = h("input", { name: "amount_usd", type: "number", min: "0.01", step: "0.01", required: true });
  const error = h("p", { class: "error", role: "alert" });
  const topUp = h("form", { class: "actions", "aria-label": `Top up ${account.id}` }, field("Top-up amount (USD)", amount), h("button", { type: "submit" }, "Top up"), error);
  topUp.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    try {
      const a = await api("POST", `/admin/accounts/${encodeURIComponent(account.id)}/credit`, { amount_usd: Number(amount.value) });
      toast(`Balance now ${fmt.usd(a.balance_usd)}.`);
      reload(a.id);
    } catch (e) { error.textContent = e.message; }
  });
  const since = Math.floor(Date.now() / 1000) - 30 * 86400;
  const [keys, byDay] = await Promise.all([
    all(`/admin/keys?account_id=${encodeURIComponent(account.id)}`),
    get(`/admin/usage/summary${qs({ group_by: "day", account_id: account.id, since })}`),
  ]);
  const cost = seriesOf(byDay.data, [["cost (USD)", (r) => r.cost_usd]]);
  const reqs = seriesOf(byDay.data, [["requests", (r) => r.requests], ["errors", (r) => r.errors]]);
  return card(`${account.name} (${account.id})`,
    h("div", { class: "stats" }, h("div", { class: "stat" }, h("span", { class: "muted" }, "Balance"), h("strong", { class: "balance" }, fmt.usd(account.balance_usd))),
      h("div", { class: "stat" }, h("span", { class: "muted" }, "Spent"), h("strong", {}, fmt.usd(account.spent_usd))),
      h("div", { class: "stat" }, h("span", { class: "muted" }, "Limits"), h("strong", {}, `rpm ${fmt.limit(account.rpm)}`))),
    account.balance_usd === null ? h("p", { class: "muted" }, "Unlimited balance: top-ups do not apply.") : topUp,
    h("h3", {}, "Keys"),
    table([
      { label: "Name", cell: (k) => k.name || "–" }, { label: "Id", cell: (k) => h("code", {}, k.id) },
      { label: "Spent", cell: (k) => fmt.usd(k.spent_usd) },
      { label: "State", cell: (k) => h("span", { class: k.revoked ? "badge bad" : "badge good" }, k.revoked ? "revoked" : "live") },
    ], keys, "No keys."),
    h("h3", {}, "Usage, last 30 days"),
    h("div", { class: "charts" },
      timeChart("Cost by day (USD)", cost.xs, cost.series, { bars: true, range: [since, since + 31 * 86400] }),
      timeChart("Requests by day", reqs.xs, reqs.series, { bars: true, range: [since, since + 31 * 86400] })));
}

export async function render(root) {
  const panel = h("div");
  const list = h("div");
  const load = async (open) => {
    const accounts = await all("/admin/accounts");
    clear(list, table([
      { label: "Name", cell: (a) => a.name },
      { label: "Id", cell: (a) => h("code", {}, a.id) },
      { label: "Balance", cell: (a) => fmt.usd(a.balance_usd) },
      { label: "Spent", cell: (a) => fmt.usd(a.spent_usd) },
      { label: "Limits", cell: (a) => `rpm ${fmt.limit(a.rpm)} · tpm ${fmt.limit(a.tpm)}` },
      { label: "Created", cell: (a) => fmt.time(a.created_at) },
      { label: "", cell: (a) => button("Open", () => show(a.id), { "aria-label": `Open ${a.id}` }) },
    ], accounts, "No accounts yet."));
    if (open) await show(open);
  };
  const show = async (id) => {
    const a = await get(`/admin/accounts/${encodeURIComponent(id)}`);
    clear(panel, await detail(a, load));
  };
  await load();
  clear(root, h("div", { class: "head" }, h("h1", {}, "Accounts"),
    button("New account", async () => clear(panel, newAccountForm(() => { clear(panel); load(); })))), panel, list);
}
