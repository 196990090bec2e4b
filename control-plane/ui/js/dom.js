// DOM helpers. Every piece of data goes in as text (textContent or a text
// node), never as HTML: a name like <img onerror=...> shows as itself.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = !!v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let fieldSeq = 0;
/// A labelled input: `field("Name", h("input", {...}))`.
export function field(label, input, hint) {
  if (!input.id) input.id = `f${++fieldSeq}`;
  return h("div", { class: "field" },
    h("label", { for: input.id }, label), input,
    hint ? h("small", { class: "muted" }, hint) : null);
}

export function input(name, attrs = {}) {
  return h("input", { name, ...attrs });
}

/// A table: columns [{label, cell(row) -> node|string}].
export function table(columns, rows, empty = "Nothing here yet.") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, columns.map((c) => h("td", { "data-label": c.label }, c.cell(r))))))));
}

export const fmt = {
  usd: (v) => (v === null || v === undefined ? "unlimited" : `$${Number(v).toFixed(v !== 0 && Math.abs(v) < 0.01 ? 6 : 2)}`),
  int: (v) => (v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US")),
  limit: (v) => (v === null || v === undefined ? "no limit" : Number(v).toLocaleString("en-US")),
  time: (s) => (s ? new Date(s * 1000).toISOString().replace("T", " ").slice(0, 19) + "Z" : "never"),
  ms: (v) => (v === null || v === undefined ? "–" : `${v} ms`),
};

let toastTimer = 0;
export function toast(message, kind = "ok") {
  const el = document.getElementById("toast");
  el.className = `show ${kind}`;
  el.textContent = message;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.className = ""; }, 4000);
}

export function card(title, ...body) {
  return h("section", { class: "card" }, h("h2", {}, title), ...body);
}

export function stat(label, value) {
  return h("div", { class: "stat" }, h("span", { class: "muted" }, label), h("strong", {}, value));
}

/// A button that runs `fn`, disabled while it runs, errors as toasts.
export function button(label, fn, attrs = {}) {
  const b = h("button", { type: "button", ...attrs }, label);
  b.addEventListener("click", async () => {
    b.disabled = true;
    try { await fn(); } catch (e) { toast(e.message, "error"); } finally { b.disabled = false; }
  });
  return b;
}

export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast("Copied.");
  } catch {
    toast("Copy failed: select the text and copy it by hand.", "error");
  }
}

/// `<input type=number>` value: null when empty.
export function numberOrNull(el) {
  const v = el.value.trim();
  return v === "" ? null : Number(v);
}
