// Keys: search and paging, create (the secret shown once), edit limits,
// budget, expiry and models, rotate, revoke, and each key's usage by hour.

import { api, get, qs, all } from "./api.js";
import { h, clear, table, fmt, toast, button, copy, card } from "./dom.js";
import { keyForm } from "./key_form.js";
import { timeChart, seriesOf } from "./chart.js";

const PAGE = 20;

function secretBox(key) {
  return h("div", { class: "card secret", role: "alert" },
    h("h2", {}, `Secret of ${key.name || key.id}`),
    h("p", {}, "Copy it now: it is shown this once and never again."),
    h("code", { class: "secret-value" }, key.key), " ",
    button("Copy", () => copy(key.key)),
    button("Done", async (ev) => { document.querySelector(".secret")?.remove(); }, { class: "secondary" }));
}

export async function keyUsage(id) {
  const since = Math.floor(Date.now() / 1000) - 48 * 3600;
  const rows = (await get(`/admin/usage/summary${qs({ group_by: "hour", key_id: id, since })}`)).data;
  const { xs, series } = seriesOf(rows, [["requests", (r) => r.requests], ["errors", (r) => r.errors]]);
  const tokens = seriesOf(rows, [["input tokens", (r) => r.input_tokens], ["output tokens", (r) => r.output_tokens]]);
  const range = [since, Math.floor(Date.now() / 1000)];
  return h("div", { class: "charts" },
    timeChart(`Requests by hour, last 48 h (${id})`, xs, series, { bars: true, range }),
    timeChart("Tokens by hour", tokens.xs, tokens.series, { bars: true, range }));
}

export async function render(root) {
  const [accounts, models] = await Promise.all([all("/admin/accounts"), all("/admin/models")]);
  const accountName = new Map(accounts.map((a) => [a.id, a.name]));
  const top = h("div");
  const panel = h("div");
  const listBox = h("div");
  const searchBox = h("input", { type: "search", name: "search", placeholder: "Name, id, prefix, account name or id", "aria-label": "Search keys" });
  let cursors = [""];
  let page = 0;

  const closePanel = () => clear(panel);
  const created = (key) => { clear(top, secretBox(key)); closePanel(); load(); };

  function openCreate() {
    if (!accounts.length) { toast("Create an account first (Accounts page).", "error"); return; }
    clear(panel, keyForm({
      key: null, accounts, models, onCancel: closePanel,
      onSubmit: async (body) => { const k = await api("POST", "/admin/keys", body); toast("Key created."); created(k); },
    }));
    panel.querySelector("input")?.focus();
  }

  function openEdit(key) {
    clear(panel, keyForm({
      key, accounts, models, onCancel: closePanel,
      onSubmit: async (body) => { await api("PATCH", `/admin/keys/${encodeURIComponent(key.id)}`, body); toast("Saved."); closePanel(); load(); },
    }));
    panel.querySelector("input")?.focus();
  }

  async function openUsage(key) {
    clear(panel, card(`Usage of ${key.name || key.id}`, await keyUsage(key.id),
      h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", onclick: closePanel }, "Close"))));
  }

  const columns = [
    { label: "Name", cell: (k) => h("span", {}, k.name || "–") },
    { label: "Id", cell: (k) => h("code", {}, k.id) },
    { label: "Account", cell: (k) => accountName.get(k.account_id) ?? k.account_id },
    { label: "Prefix", cell: (k) => h("code", {}, k.prefix) },
    { label: "Models", cell: (k) => (k.models ? k.models.join(", ") || "none" : "all") },
    { label: "Limits", cell: (k) => [k.rpm !== null ? `rpm ${fmt.int(k.rpm)}` : null, k.tpm !== null ? `tpm ${fmt.int(k.tpm)}` : null,
      k.max_concurrent !== null ? `conc ${fmt.int(k.max_concurrent)}` : null].filter(Boolean).join(" · ") || "none" },
    { label: "Spent / budget", cell: (k) => `${fmt.usd(k.spent_usd)}${k.budget_usd === null ? "" : ` / ${fmt.usd(k.budget_usd)}`}` },
    { label: "Expires", cell: (k) => fmt.time(k.expires_at) },
    { label: "State", cell: (k) => h("span", { class: k.revoked ? "badge bad" : "badge good" }, k.revoked ? "revoked" : "live") },
    { label: "Actions", cell: (k) => h("div", { class: "row-actions" },
      k.revoked ? null : button("Edit", () => openEdit(k), { "aria-label": `Edit ${k.id}` }),
      button("Usage", () => openUsage(k), { "aria-label": `Usage of ${k.id}` }),
      k.revoked ? null : button("Rotate", async () => {
        if (!confirm(`Rotate ${k.id}? The current secret stops working.`)) return;
        const r = await api("POST", `/admin/keys/${encodeURIComponent(k.id)}/rotate`);
        clear(top, secretBox(r)); load();
      }, { "aria-label": `Rotate ${k.id}`, class: "secondary" }),
      k.revoked ? null : button("Revoke", async () => {
        if (!confirm(`Revoke ${k.id}? Requests with it fail at once.`)) return;
        await api("DELETE", `/admin/keys/${encodeURIComponent(k.id)}`);
        toast("Key revoked."); load();
      }, { "aria-label": `Revoke ${k.id}`, class: "danger" })) },
  ];

  // The latest load wins: an earlier search's answer arriving after a later
  // one's is dropped, not drawn over it.
  let loads = 0;
  async function load() {
    const seq = ++loads;
    const search = searchBox.value.trim();
    const data = await get(`/admin/keys${qs({ limit: PAGE, after: cursors[page], search })}`);
    if (seq !== loads) return;
    if (data.has_more) cursors[page + 1] = data.data[data.data.length - 1].id;
    clear(listBox, table(columns, data.data, search ? "No key matches." : "No keys yet."),
      h("nav", { class: "pager", "aria-label": "Pages of keys" },
        button("Previous", async () => { page -= 1; await load(); }, { disabled: page === 0 }),
        h("span", {}, `Page ${page + 1}`),
        button("Next", async () => { page += 1; await load(); }, { disabled: !data.has_more })));
  }

  let timer = 0;
  searchBox.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { page = 0; cursors = [""]; load().catch((e) => toast(e.message, "error")); }, 200);
  });

  await load();
  clear(root,
    h("div", { class: "head" }, h("h1", {}, "Keys"), searchBox, button("New key", async () => openCreate())),
    top, panel, listBox);
}
