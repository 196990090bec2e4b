// Calls to the control plane with the session cookie; every change carries
// the session's CSRF token. Errors are the OpenAI error shape.

let csrf = "";
export function setCsrf(token) { csrf = token || ""; }

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code;
  }
}

export async function api(method, path, body) {
  const headers = { accept: "application/json" };
  if (method !== "GET") headers["x-csrf-token"] = csrf;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    if (res.status === 401 && path !== "/ui/api/session") window.dispatchEvent(new Event("tollgate:signed-out"));
    throw new ApiError(res.status, data);
  }
  return data;
}

export const get = (path) => api("GET", path);

/// `?a=b&c=d` from an object, leaving out empty values.
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : "";
}

/// Every page of a list endpoint (at most `max` items).
export async function all(path, max = 1000) {
  const out = [];
  let after = "";
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await get(`${path}${sep}limit=100${after ? `&after=${encodeURIComponent(after)}` : ""}`);
    out.push(...page.data);
    if (!page.has_more || out.length >= max || !page.data.length) return out;
    after = page.data[page.data.length - 1].id;
  }
}
