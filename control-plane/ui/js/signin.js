// Sign in with the admin token (operators) or an API key (key holders), or
// as a named operator with name and password.

import { api } from "./api.js";
import { h, clear, field } from "./dom.js";

function form(title, fields, label, body, refused, signedIn) {
  const error = h("p", { class: "error", role: "alert" });
  const f = h("form", { class: "card signin", "aria-label": title }, title === "Sign in to Tollgate" ? h("h1", {}, title) : h("h2", {}, title),
    ...fields, error, h("button", { type: "submit" }, label));
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    try {
      signedIn(await api("POST", "/ui/api/session", body()));
    } catch (e) {
      error.textContent = e.status === 401 ? refused : e.message;
    }
  });
  return f;
}

export async function render(main, { signedIn }) {
  const token = h("input", { type: "password", name: "token", autocomplete: "current-password", required: true, autofocus: true });
  const name = h("input", { name: "operator", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  clear(main,
    form("Sign in to Tollgate",
      [field("Admin token or API key", token, "Operators sign in with the admin token; key holders with their API key.")],
      "Sign in", () => ({ token: token.value }), "That token or key is not valid.", signedIn),
    form("Named operator",
      [field("Operator name", name), field("Password", password)],
      "Log in as operator", () => ({ name: name.value.trim(), password: password.value }),
      "That name and password do not match an operator.", signedIn));
  token.focus();
}
