// Status: the gateway, the control plane, each upstream, the config version
// and its age, the limits backend and its fail mode; refreshed every 5 s.

import { get } from "./api.js";
import { h, clear, table, fmt } from "./dom.js";

const badge = (s) => h("span", { class: `badge ${s === "ok" ? "good" : s === "unknown" ? "warn" : "bad"}` }, s);

// healthy, cooling (until a time) or probing: as the gateways report it.
export function deploymentBadge(d) {
  if (d.state === "cooling") {
    const left = Math.max(0, Math.round(d.cooling_until - Date.now() / 1000));
    return h("span", { class: "badge bad" }, `cooling, ${left} s left`);
  }
  return h("span", { class: `badge ${d.state === "healthy" ? "good" : "warn"}` }, d.state);
}

function age(unix) {
  if (!unix) return "never";
  const s = Math.max(0, Math.round(Date.now() / 1000 - unix));
  return s < 120 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}

export async function render(root) {
  const body = h("div");
  const stamp = h("p", { class: "muted", "aria-live": "polite" });
  const draw = async () => {
    let st;
    try { st = await get("/api/status"); } catch (e) { stamp.textContent = `Refresh failed: ${e.message}`; return; }
    clear(body,
      h("div", { class: "stats" },
        h("div", { class: "stat" }, h("span", { class: "muted" }, "Gateway (Envoy)"), badge(st.gateway.status), h("small", {}, `last config poll ${age(st.gateway.last_config_poll)}`)),
        h("div", { class: "stat" }, h("span", { class: "muted" }, "Control plane"), badge(st.control_plane.status), h("small", {}, `database ${st.control_plane.database}, up ${fmt.int(st.control_plane.uptime_s)} s`)),
        h("div", { class: "stat" }, h("span", { class: "muted" }, "Config version"), h("strong", {}, st.control_plane.config_version), h("small", {}, st.control_plane.config_published_at ? `published ${age(st.control_plane.config_published_at)}` : "")),
        h("div", { class: "stat" }, h("span", { class: "muted" }, "Limits backend"), badge(st.limits.status), h("small", {}, `${st.limits.backend}${st.limits.fail_mode ? `, fails ${st.limits.fail_mode}` : ""}`))),
      h("h2", {}, "Upstreams"),
      table([
        { label: "Provider", cell: (u) => u.provider },
        { label: "State", cell: (u) => badge(u.status) },
        { label: "Last status", cell: (u) => String(u.last_status) },
        { label: "Last seen", cell: (u) => age(u.last_seen) },
      ], st.upstreams, "No upstream has served a request since the control plane started."),
      h("h2", {}, "Deployments of failover models"),
      table([
        { label: "Model", cell: (d) => h("code", {}, d.model) },
        { label: "Deployment", cell: (d) => `#${d.deployment} ${d.provider ?? "?"} → ${d.upstream_model ?? "?"}` },
        { label: "State", cell: (d) => deploymentBadge(d) },
        { label: "Failures in a row", cell: (d) => String(d.failures) },
      ], st.deployments || [], "No model has deployments to fail over between."),
      h("p", { class: "muted" }, `Tollgate ${st.version}`));
    stamp.textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC; refreshes every 5 s.`;
  };
  await draw();
  clear(root, h("h1", {}, "Status"), stamp, body);
  const timer = setInterval(draw, 5000);
  return () => clearInterval(timer);
}
