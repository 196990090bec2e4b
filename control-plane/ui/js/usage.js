// The usage explorer: filters (key, account, model, status, time range),
// paging, and CSV export of everything the filters match
// (`GET /admin/usage/export.csv`).

import { get, qs } from "./api.js";
import { h, clear, table, fmt, button, field } from "./dom.js";

export async function render(root) {
  const f = {
    key_id: h("input", { name: "key_id", placeholder: "key_…" }),
    account_id: h("input", { name: "account_id", placeholder: "acct_…" }),
    model: h("input", { name: "model" }),
    status: h("select", { name: "status" }, h("option", { value: "" }, "any"), h("option", { value: "ok" }, "success (< 400)"),
      h("option", { value: "error" }, "error (≥ 400)"), ["400", "401", "402", "403", "404", "429", "500", "502", "503", "504"].map((c) => h("option", { value: c }, c))),
    since: h("input", { name: "since", type: "datetime-local" }),
    until: h("input", { name: "until", type: "datetime-local" }),
  };
  const params = () => ({
    key_id: f.key_id.value.trim(), account_id: f.account_id.value.trim(), model: f.model.value.trim(), status: f.status.value,
    since: f.since.value ? Math.floor(Date.parse(`${f.since.value}Z`) / 1000) : "",
    until: f.until.value ? Math.floor(Date.parse(`${f.until.value}Z`) / 1000) : "",
  });
  const out = h("div");
  let cursors = [""];
  let page = 0;
  const load = async () => {
    const data = await get(`/admin/usage${qs({ ...params(), limit: 50, after: cursors[page] })}`);
    if (data.has_more) cursors[page + 1] = data.data[data.data.length - 1].id;
    clear(out, table([
      { label: "Time (UTC)", cell: (r) => fmt.time(r.created_at) },
      { label: "Key", cell: (r) => h("code", {}, r.key_id) },
      { label: "Account", cell: (r) => h("code", {}, r.account_id) },
      { label: "Model", cell: (r) => r.model },
      { label: "Status", cell: (r) => h("span", { class: r.status >= 400 ? "badge bad" : "badge good" }, String(r.status)) },
      { label: "Tokens in/out", cell: (r) => `${fmt.int(r.input_tokens)} / ${fmt.int(r.output_tokens)}${r.estimated ? " (est.)" : ""}` },
      { label: "Cost", cell: (r) => fmt.usd(r.cost_usd) },
      { label: "Latency", cell: (r) => `${fmt.ms(r.latency_ms)}${r.ttft_ms !== null ? ` (first token ${r.ttft_ms} ms)` : ""}` },
    ], data.data, "No records match."),
    h("nav", { class: "pager", "aria-label": "Pages of usage" },
      button("Previous", async () => { page -= 1; await load(); }, { disabled: page === 0 }),
      h("span", {}, `Page ${page + 1}`),
      button("Next", async () => { page += 1; await load(); }, { disabled: !data.has_more })));
  };
  // The server streams every matching record as CSV (no cap); the session
  // cookie goes with the download.
  const exportCsv = () => {
    const a = h("a", { href: `/admin/usage/export.csv${qs(params())}`, download: "tollgate-usage.csv" });
    document.body.append(a); a.click(); a.remove();
  };
  const form = h("form", { class: "card", "aria-label": "Usage filters" },
    h("div", { class: "filters" }, field("Key id", f.key_id), field("Account id", f.account_id), field("Model", f.model),
      field("Status", f.status), field("From (UTC)", f.since), field("To (UTC)", f.until)),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply"), button("Export CSV", exportCsv, { class: "secondary" })));
  form.addEventListener("submit", async (ev) => { ev.preventDefault(); cursors = [""]; page = 0; await load(); });
  await load();
  clear(root, h("h1", {}, "Usage"), form, out);
}
