// Operators: named operator accounts besides the admin token (name and
// password; the password is never shown again, nor stored but as a hash).

import { api, all } from "./api.js";
import { h, clear, table, fmt, toast, button, field } from "./dom.js";

function newOperatorForm(onDone) {
  const name = h("input", { name: "name", required: true, maxlength: 64, autocomplete: "off", pattern: "[A-Za-z0-9._@\\-]+" });
  const password = h("input", { name: "password", type: "password", required: true, minlength: 12, maxlength: 256, autocomplete: "new-password" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card form", "aria-label": "New operator" }, h("h2", {}, "New operator"),
    h("div", { class: "grid" }, field("Operator name", name, "Letters, digits, . _ - @"),
      field("Operator password", password, "12 characters or more")),
    error, h("div", { class: "actions" }, h("button", { type: "submit" }, "Create operator")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    try {
      await api("POST", "/admin/operators", { name: name.value.trim(), password: password.value });
      toast("Operator created.");
      onDone();
    } catch (e) { error.textContent = e.message; }
  });
  return form;
}

export async function render(root, { session }) {
  const listBox = h("div");
  const me = session.operator ? session.operator.id : null;
  async function load() {
    const rows = await all("/admin/operators");
    clear(listBox, table([
      { label: "Name", cell: (o) => h("span", {}, o.name) },
      { label: "Id", cell: (o) => h("code", {}, o.id) },
      { label: "Created", cell: (o) => fmt.time(o.created_at) },
      { label: "Actions", cell: (o) => (o.id === me ? h("span", { class: "muted" }, "you") : button("Delete", async () => {
        if (!confirm(`Delete operator ${o.name}? Their sessions end at once.`)) return;
        await api("DELETE", `/admin/operators/${encodeURIComponent(o.id)}`);
        toast("Operator deleted."); load();
      }, { "aria-label": `Delete ${o.name}`, class: "danger" })) },
    ], rows, "No named operators yet: only the admin token signs in as an operator."));
  }
  await load();
  clear(root, h("h1", {}, "Operators"),
    h("p", { class: "muted" }, "Named operators sign in with their name and password and may do what the admin token does."),
    newOperatorForm(load), listBox);
}
