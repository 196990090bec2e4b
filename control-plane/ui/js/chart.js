// Charts with uPlot (vendored in /ui/vendor, loaded the first time a chart
// is drawn), and plain bar lists for rankings.

import { h } from "./dom.js";

let loading = null;
function uplot() {
  if (window.uPlot) return Promise.resolve(window.uPlot);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      document.head.append(h("link", { rel: "stylesheet", href: "/ui/vendor/uPlot.min.css" }));
      const s = h("script", { src: "/ui/vendor/uPlot.iife.min.js" });
      s.addEventListener("load", () => resolve(window.uPlot));
      s.addEventListener("error", () => reject(new Error("could not load the chart library")));
      document.head.append(s);
    });
  }
  return loading;
}

const COLORS = ["#2456d6", "#d6452b", "#1d9a6c", "#a35bd6", "#c98a00"];

/// A time series chart: `xs` unix seconds, `series` [{label, values}],
/// `range` [from, to] in unix seconds (default: the data's, an hour wider).
/// Returns the element at once; the chart draws into it when uPlot is in.
export function timeChart(title, xs, series, { bars = false, height = 220, range = null } = {}) {
  const box = h("figure", { class: "chart" }, h("figcaption", {}, title));
  if (!xs.length) {
    box.append(h("p", { class: "muted" }, "No data in this range."));
    return box;
  }
  const target = h("div", { role: "img", "aria-label": `${title}: ${series.map((s) => s.label).join(", ")}` });
  box.append(target);
  uplot().then((U) => {
    const width = Math.max(280, Math.min(target.clientWidth || box.clientWidth || 600, 1200));
    const opts = {
      width, height,
      series: [{}, ...series.map((s, i) => ({
        label: s.label, stroke: COLORS[i % COLORS.length], width: 2,
        fill: bars ? `${COLORS[i % COLORS.length]}55` : undefined,
        paths: bars && U.paths.bars ? U.paths.bars({ size: [0.6, 40] }) : undefined,
      }))],
      axes: [{}, { size: 72, values: (u, vals) => vals.map((v) => +v.toPrecision(3)) }],
      scales: { x: { time: true, range: () => range || [Math.min(...xs) - 3600, Math.max(...xs) + 3600] } },
    };
    new U(opts, [xs, ...series.map((s) => s.values)], target);
  }).catch((e) => target.append(h("p", { class: "error" }, e.message)));
  return box;
}

/// A ranking as horizontal bars: rows [{label, value, text}], the largest
/// value the full width (costs are fractions of a dollar).
export function bars(title, rows) {
  const max = Math.max(0, ...rows.map((r) => r.value)) || 1;
  return h("figure", { class: "bars" }, h("figcaption", {}, title),
    rows.length ? h("ol", {}, rows.map((r) => {
      const bar = h("span", { class: "bar" });
      bar.style.width = `${Math.round((r.value / max) * 100)}%`;
      return h("li", {}, h("span", { class: "label" }, r.label), h("span", { class: "track" }, bar), h("span", { class: "num" }, r.text));
    })) : h("p", { class: "muted" }, "No data in this range."));
}

/// Summary rows grouped by hour (`YYYY-MM-DDTHH:00Z`) or day
/// (`YYYY-MM-DD`) as x (unix seconds) and the chosen fields as series.
export function seriesOf(rows, fields) {
  const sorted = [...rows].sort((a, b) => a.group.localeCompare(b.group));
  const xs = sorted.map((r) => Date.parse(r.group.length === 10 ? `${r.group}T00:00:00Z` : r.group) / 1000);
  return { xs, series: fields.map(([label, get]) => ({ label, values: sorted.map(get) })) };
}
