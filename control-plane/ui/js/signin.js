// Sign in with the admin token (operators) or an API key (key holders).

import { api } from "./api.js";
import { h, clear, field } from "./dom.js";

export async function render(main, { signedIn }) {
  const token = h("input", { type: "password", name: "token", autocomplete: "current-password", required: true, autofocus: true });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card signin" },
    h("h1", {}, "Sign in to Tollgate"),
    field("Admin token or API key", token, "Operators sign in with the admin token; key holders with their API key."),
    error,
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    try {
      const s = await api("POST", "/ui/api/session", { token: token.value });
      signedIn(s);
    } catch (e) {
      error.textContent = e.status === 401 ? "That token or key is not valid." : e.message;
    }
  });
  clear(main, form);
  token.focus();
}
