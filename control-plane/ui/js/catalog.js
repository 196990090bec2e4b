// Providers and models: credentials write-only (set, never shown),
// deployments with weight and priority, pricing, context window, category,
// each provider's health and each failover deployment's state from /api/status.

import { api, get, all } from "./api.js";
import { h, clear, table, fmt, toast, button, field, card, numberOrNull } from "./dom.js";
import { deploymentBadge } from "./status.js";

function providerForm(onDone) {
  const id = h("input", { name: "id", placeholder: "openai-main" });
  const name = h("input", { name: "name" });
  const kind = h("select", { name: "kind" }, ["openai", "anthropic", "azure_openai"].map((k) => h("option", { value: k }, k)));
  const url = h("input", { name: "base_url", type: "url", required: true, placeholder: "https://api.openai.com/v1" });
  const key = h("input", { name: "api_key", type: "password", autocomplete: "off" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card", "aria-label": "New provider" }, h("h2", {}, "New provider"),
    h("div", { class: "grid" }, field("Id", id), field("Name", name), field("Kind", kind), field("Base URL", url),
      field("API key", key, "Write-only: stored sealed, never shown again")), error,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Add provider")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { kind: kind.value, base_url: url.value.trim(), api_key: key.value };
    if (id.value.trim()) body.id = id.value.trim();
    if (name.value.trim()) body.name = name.value.trim();
    try { await api("POST", "/admin/providers", body); key.value = ""; toast("Provider added."); onDone(); } catch (e) { error.textContent = e.message; }
  });
  return form;
}

function credentialForm(p, onDone) {
  const key = h("input", { name: "api_key", type: "password", autocomplete: "off", required: true });
  const form = h("form", { class: "actions", "aria-label": `New credential for ${p.id}` }, field(`New API key for ${p.id}`, key), h("button", { type: "submit" }, "Replace credential"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try { await api("PATCH", `/admin/providers/${encodeURIComponent(p.id)}`, { api_key: key.value }); key.value = ""; toast("Credential replaced."); onDone(); } catch (e) { toast(e.message, "error"); }
  });
  return form;
}

function deploymentRows(providers, deployments) {
  const box = h("div", { class: "deployments" });
  const rows = [];
  const add = (d = {}) => {
    const provider = h("select", { name: "provider" }, providers.map((p) => h("option", { value: p.id }, p.id)));
    if (d.provider) provider.value = d.provider;
    const upstream = h("input", { name: "upstream_model", value: d.upstream_model || "", required: true });
    const weight = h("input", { name: "weight", type: "number", min: 0, value: d.weight ?? 1 });
    const priority = h("input", { name: "priority", type: "number", min: 0, value: d.priority ?? 0 });
    const row = { provider, upstream, weight, priority };
    const el = h("div", { class: "grid" }, field("Provider", provider), field("Upstream model", upstream), field("Weight", weight), field("Priority (lower first)", priority),
      h("button", { type: "button", class: "danger", onclick: () => { rows.splice(rows.indexOf(row), 1); el.remove(); } }, "Remove"));
    rows.push(row);
    box.append(el);
  };
  (deployments.length ? deployments : [{}]).forEach(add);
  return {
    el: h("fieldset", {}, h("legend", {}, "Deployments"), box, h("button", { type: "button", class: "secondary", onclick: () => add() }, "Add deployment")),
    value: () => rows.map((r) => ({ provider: r.provider.value, upstream_model: r.upstream.value.trim(), weight: Number(r.weight.value || 1), priority: Number(r.priority.value || 0) })),
  };
}

function modelForm(model, providers, onDone) {
  const id = model ? null : h("input", { name: "id", required: true });
  const name = h("input", { name: "name", value: model?.name || "" });
  const description = h("textarea", { name: "description", rows: 2 }, model?.description || "");
  const category = h("input", { name: "category", value: model?.category || "chat" });
  const ctx = h("input", { name: "context_window", type: "number", min: 1, value: model?.context_window ?? "" });
  const inPrice = h("input", { name: "input_per_1m", type: "number", min: 0, step: "0.001", value: model?.pricing.input_per_1m ?? 0 });
  const outPrice = h("input", { name: "output_per_1m", type: "number", min: 0, step: "0.001", value: model?.pricing.output_per_1m ?? 0 });
  const deps = deploymentRows(providers, model?.deployments || []);
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card", "aria-label": model ? `Edit model ${model.id}` : "New model" },
    h("h2", {}, model ? `Edit ${model.id}` : "New model"),
    h("div", { class: "grid" }, id ? field("Id", id) : null, field("Name", name), field("Category", category),
      field("Context window (tokens)", ctx), field("Input price (USD / 1M tokens)", inPrice), field("Output price (USD / 1M tokens)", outPrice)),
    field("Description", description), deps.el, error,
    h("div", { class: "actions" }, h("button", { type: "submit" }, model ? "Save" : "Add model"), h("button", { type: "button", class: "secondary", onclick: () => form.remove() }, "Cancel")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { name: name.value.trim() || undefined, description: description.value, category: category.value.trim(),
      context_window: numberOrNull(ctx), pricing: { input_per_1m: Number(inPrice.value || 0), output_per_1m: Number(outPrice.value || 0) },
      deployments: deps.value() };
    try {
      if (model) await api("PATCH", `/admin/models/${model.id.split("/").map(encodeURIComponent).join("/")}`, body);
      else {
        if (body.context_window === null) delete body.context_window;
        await api("POST", "/admin/models", { id: id.value.trim(), ...body });
      }
      toast("Saved."); onDone();
    } catch (e) { error.textContent = e.message; }
  });
  return form;
}

export async function render(root) {
  const panel = h("div");
  const body = h("div");
  const load = async () => {
    const [providers, models, status] = await Promise.all([all("/admin/providers"), all("/admin/models"), get("/api/status")]);
    const health = new Map(status.upstreams.map((u) => [u.provider, u]));
    const deployment = new Map((status.deployments || []).map((d) => [`${d.model}#${d.deployment}`, d]));
    const healthOf = (pid) => {
      const u = health.get(pid);
      return u ? h("span", { class: `badge ${u.status === "ok" ? "good" : "bad"}` }, `${u.status} (last ${u.last_status})`) : h("span", { class: "badge warn" }, "no traffic yet");
    };
    clear(body,
      h("h2", {}, "Providers"),
      table([
        { label: "Id", cell: (p) => h("code", {}, p.id) }, { label: "Name", cell: (p) => p.name }, { label: "Kind", cell: (p) => p.kind },
        { label: "Base URL", cell: (p) => h("code", {}, p.base_url) },
        { label: "Credential", cell: (p) => (p.has_api_key ? "set (write-only)" : "none") },
        { label: "Health", cell: (p) => healthOf(p.id) },
        { label: "", cell: (p) => button("Replace credential", async () => clear(panel, card(`Credential of ${p.id}`, credentialForm(p, () => { clear(panel); load(); }))), { class: "secondary" }) },
      ], providers, "No providers yet."),
      h("h2", {}, "Models"),
      table([
        { label: "Id", cell: (m) => h("code", {}, m.id) }, { label: "Name", cell: (m) => m.name },
        { label: "Description", cell: (m) => m.description },
        { label: "Category", cell: (m) => m.category }, { label: "Context", cell: (m) => fmt.int(m.context_window) },
        { label: "Price in / out per 1M", cell: (m) => `$${m.pricing.input_per_1m} / $${m.pricing.output_per_1m}` },
        { label: "Deployments", cell: (m) => h("ul", { class: "plain" }, m.deployments.map((d, i) =>
          h("li", {}, `${d.provider} → ${d.upstream_model} (weight ${d.weight}, priority ${d.priority}) `, healthOf(d.provider),
            deployment.has(`${m.id}#${i}`) ? deploymentBadge(deployment.get(`${m.id}#${i}`)) : ""))) },
        { label: "", cell: (m) => button("Edit", async () => { clear(panel, modelForm(m, providers, () => { clear(panel); load(); })); }, { "aria-label": `Edit ${m.id}` }) },
      ], models, "No models yet."));
    return providers;
  };
  const providers = await load();
  clear(root, h("div", { class: "head" }, h("h1", {}, "Providers & models"),
    button("New provider", async () => clear(panel, providerForm(() => { clear(panel); load(); }))),
    button("New model", async () => clear(panel, modelForm(null, await all("/admin/providers"), () => { clear(panel); load(); })))),
  panel, body);
  void providers;
}
