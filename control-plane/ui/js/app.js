// The dashboard's shell: the session, the navigation for who signed in, and
// a hash router (#/keys ...) that loads each page's module when first shown.

import { api, setCsrf } from "./api.js";
import { h, clear, toast } from "./dom.js";

const OPERATOR = [
  ["overview", "Overview"], ["keys", "Keys"], ["accounts", "Accounts"],
  ["catalog", "Providers & models"], ["usage", "Usage"], ["status", "Status"], ["operators", "Operators"],
];
const KEY_HOLDER = [["me", "My account"], ["quickstart", "Quick start"], ["status", "Status"]];
const MODULES = {
  overview: "./overview.js", keys: "./keys.js", accounts: "./accounts.js", catalog: "./catalog.js",
  usage: "./usage.js", status: "./status.js", me: "./me.js", quickstart: "./quickstart.js",
  operators: "./operators.js",
};

let session = null;
let cleanup = null;
// Each show() takes a number; a slower, older one never overwrites a newer.
let shown = 0;

function pages() { return session && session.kind === "operator" ? OPERATOR : KEY_HOLDER; }

function route() {
  const [page, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  return { page: page || pages()[0][0], arg: rest.join("/") };
}

function renderNav(current) {
  const nav = document.getElementById("nav");
  if (!session) { clear(nav); clear(document.getElementById("who")); return; }
  clear(nav, h("ul", {}, pages().map(([id, label]) =>
    h("li", {}, h("a", { href: `#/${id}`, "aria-current": id === current ? "page" : null }, label)))));
  clear(document.getElementById("who"),
    session.kind !== "operator" ? `Key ${session.key_id}` : session.operator ? `Operator ${session.operator.name}` : "Operator", " ",
    h("button", { type: "button", class: "link", onclick: signOut }, "Sign out"));
}

async function show() {
  const seq = ++shown;
  const main = document.getElementById("main");
  if (cleanup) { cleanup(); cleanup = null; }
  if (!session) {
    renderNav();
    const { render } = await import("./signin.js");
    await render(main, { signedIn });
    return;
  }
  const { page, arg } = route();
  renderNav(page);
  if (!pages().some(([id]) => id === page)) {
    clear(main, h("h1", {}, "Not available"),
      h("p", {}, session.kind === "operator" ? "No such page." : "This page is for operators; you are signed in with an API key."));
    return;
  }
  clear(main, h("p", { class: "muted" }, "Loading…"));
  try {
    const mod = await import(MODULES[page]);
    const root = h("div", { class: "page" });
    const done = (await mod.render(root, { session, arg })) || null;
    if (seq !== shown) { if (done) done(); return; }
    cleanup = done;
    clear(main, root);
    document.title = `${pages().find(([id]) => id === page)[1]} · Tollgate`;
  } catch (e) {
    if (seq !== shown) return;
    clear(main, h("h1", {}, "Something went wrong"), h("p", { class: "error" }, e.message));
  }
}

function signedIn(s) {
  session = s;
  setCsrf(s.csrf_token);
  if (!location.hash) location.hash = `#/${pages()[0][0]}`;
  show();
}

async function signOut() {
  try { await api("DELETE", "/ui/api/session"); } catch (e) { toast(e.message, "error"); }
  session = null;
  setCsrf("");
  location.hash = "";
  show();
}

window.addEventListener("hashchange", show);
window.addEventListener("tollgate:signed-out", () => {
  if (!session) return;
  session = null;
  toast("Your session has ended; sign in again.", "error");
  show();
});

(async () => {
  try {
    const s = await api("GET", "/ui/api/session");
    session = s.kind ? s : null;
    setCsrf(s.csrf_token);
  } catch { session = null; }
  show();
})();
