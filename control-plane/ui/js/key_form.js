// The form that creates a key or edits one: limits, budget, expiry and the
// model allowlist with a picker.

import { h, field, numberOrNull } from "./dom.js";

function dateOf(unix) { return unix ? new Date(unix * 1000).toISOString().slice(0, 10) : ""; }

/// A model picker: "every model" or a checked list, with a filter box.
export function modelPicker(models, chosen) {
  const everyModel = h("input", { type: "checkbox", name: "all_models", checked: chosen === null || chosen === undefined });
  const filter = h("input", { type: "search", name: "model_filter", placeholder: "Filter models", "aria-label": "Filter models" });
  const boxes = models.map((m) => {
    const box = h("input", { type: "checkbox", name: "model", value: m.id, checked: !!(chosen && chosen.includes(m.id)) });
    const row = h("label", { class: "check" }, box, " ", m.id, m.name && m.name !== m.id ? h("span", { class: "muted" }, ` ${m.name}`) : null);
    return { m, box, row };
  });
  const list = h("div", { class: "picker-list" }, boxes.map((b) => b.row));
  const sync = () => { list.hidden = everyModel.checked; filter.hidden = everyModel.checked; };
  everyModel.addEventListener("change", sync);
  filter.addEventListener("input", () => {
    const q = filter.value.toLowerCase();
    for (const b of boxes) b.row.hidden = !!q && !`${b.m.id} ${b.m.name || ""}`.toLowerCase().includes(q);
  });
  sync();
  const el = h("fieldset", { class: "picker" }, h("legend", {}, "Models this key may use"),
    h("label", { class: "check" }, everyModel, " Every model in the catalog"), filter, list);
  return { el, value: () => (everyModel.checked ? null : boxes.filter((b) => b.box.checked).map((b) => b.m.id)) };
}

/// `key` null: a new key (with an account choice). `onSubmit(body)`.
export function keyForm({ key, accounts, models, onSubmit, onCancel }) {
  const name = h("input", { name: "name", value: key ? key.name : "", maxlength: 200 });
  const account = key ? null : h("select", { name: "account_id", required: true },
    accounts.map((a) => h("option", { value: a.id }, `${a.name} (${a.id})`)));
  const num = (n, v) => h("input", { name: n, type: "number", min: 0, step: 1, value: v ?? "", inputmode: "numeric" });
  const rpm = num("rpm", key?.rpm), tpm = num("tpm", key?.tpm), conc = num("max_concurrent", key?.max_concurrent);
  const budget = h("input", { name: "budget_usd", type: "number", min: 0, step: "0.01", value: key?.budget_usd ?? "" });
  const expires = h("input", { name: "expires", type: "date", value: dateOf(key?.expires_at) });
  const picker = modelPicker(models, key ? key.models : null);
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card form", "aria-label": key ? `Edit key ${key.id}` : "New key" },
    h("h2", {}, key ? `Edit ${key.name || key.id}` : "New key"),
    h("div", { class: "grid" },
      field("Name", name),
      account ? field("Account", account) : null,
      field("Requests per minute", rpm, "Empty: no limit"),
      field("Tokens per minute", tpm, "Empty: no limit"),
      field("Concurrent requests", conc, "Empty: no limit"),
      field("Budget (USD)", budget, "Empty: no budget"),
      field("Expires on (UTC)", expires, "Empty: never")),
    picker.el, error,
    h("div", { class: "actions" },
      h("button", { type: "submit" }, key ? "Save" : "Create key"),
      h("button", { type: "button", class: "secondary", onclick: onCancel }, "Cancel")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const body = {
      name: name.value.trim(),
      rpm: numberOrNull(rpm), tpm: numberOrNull(tpm), max_concurrent: numberOrNull(conc),
      budget_usd: numberOrNull(budget),
      expires_at: expires.value ? Date.parse(`${expires.value}T00:00:00Z`) / 1000 : null,
      models: picker.value(),
    };
    if (account) body.account_id = account.value;
    if (!key) for (const k of Object.keys(body)) if (body[k] === null) delete body[k];
    try { await onSubmit(body); } catch (e) { error.textContent = e.message; }
  });
  return form;
}
