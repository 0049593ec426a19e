// The Backups page's trend charts: the size of each source and the duration of each job over
// the last N bundles, drawn with uPlot (static/vendor/uplot, see the README for its version).
// backups.js calls ArchivistTrends.show(bundles) with the bundles it lists, newest first; what
// was drawn last stays in ArchivistTrends.drawn, for the page's browser test to compare.
"use strict";

(() => {
  const JOBS = ["postgres", "elasticsearch", "storage"];
  const LABEL = { postgres: "PostgreSQL", elasticsearch: "Elasticsearch", storage: "Storage" };
  const COLOR = { postgres: "#336791", elasticsearch: "#d97706", storage: "#c026d3" };
  const HEIGHT = 220;
  const state = { bundles: [], charts: [] };

  const $ = (sel) => document.querySelector(sel);

  function bytes(n) {
    if (typeof n !== "number") return "";
    const units = ["B", "kB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
  }

  function seconds(s) {
    if (typeof s !== "number") return "";
    if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
    if (s < 3600) return `${(s / 60).toFixed(1)} min`;
    return `${(s / 3600).toFixed(1)} h`;
  }

  // The last `count` readable bundles (0: all), oldest first, as uPlot's columns.
  function points(bundles, count) {
    const readable = bundles.filter((b) => !b.error && (b.created_at || b.last_modified));
    const chosen = (count > 0 ? readable.slice(0, count) : readable).slice().reverse();
    const job = (b, name) => (b.jobs || []).find((j) => j.job === name);
    const column = (field) => Object.fromEntries(JOBS.map((name) => [name, chosen.map((b) => {
      const j = job(b, name);
      return j && typeof j[field] === "number" ? j[field] : null;
    })]));
    return {
      keys: chosen.map((b) => b.key),
      x: chosen.map((b) => new Date(b.created_at || b.last_modified).getTime() / 1000),
      bytes: column("bytes"),
      seconds: column("time_seconds"),
    };
  }

  function themeColors() {
    const dark = document.documentElement.dataset.theme === "dark";
    return { axis: dark ? "#94a3b8" : "#64748b", grid: dark ? "#1e293b" : "#e2e8f0" };
  }

  function chart(target, x, columns, format) {
    const colors = themeColors();
    const used = JOBS.filter((name) => columns[name].some((v) => v !== null));
    const opts = {
      width: Math.max(200, target.clientWidth),
      height: HEIGHT,
      scales: { x: { time: true } },
      series: [
        { value: (u, v) => (v === null ? "" : new Date(v * 1000).toISOString().slice(0, 16).replace("T", " ")) },
        ...used.map((name) => ({
          label: LABEL[name], stroke: COLOR[name], width: 2, spanGaps: true,
          points: { show: true, size: 6, fill: COLOR[name] }, value: (u, v) => format(v),
        })),
      ],
      axes: [
        { stroke: colors.axis, grid: { stroke: colors.grid }, ticks: { stroke: colors.grid } },
        { stroke: colors.axis, grid: { stroke: colors.grid }, ticks: { stroke: colors.grid }, size: 64,
          values: (u, vals) => vals.map(format) },
      ],
    };
    target.replaceChildren();
    return new uPlot(opts, [x, ...used.map((name) => columns[name])], target);
  }

  function draw() {
    for (const c of state.charts) c.destroy();
    state.charts = [];
    const count = Number($("#trend-count").value);
    const data = points(state.bundles, count);
    window.ArchivistTrends.drawn = data;
    const note = $("#trends-note");
    if (!data.x.length) {
      note.textContent = "No readable bundle yet: the charts fill as backups are made.";
      $("#chart-size").replaceChildren();
      $("#chart-duration").replaceChildren();
      return;
    }
    note.textContent = `${data.x.length} bundle(s), oldest ${data.keys[0]}, newest ${data.keys[data.keys.length - 1]}. ` +
      "Sizes are each job's files in the bundle before compression; durations are each job's time (meta.json stats).";
    state.charts.push(chart($("#chart-size"), data.x, data.bytes, bytes));
    state.charts.push(chart($("#chart-duration"), data.x, data.seconds, seconds));
  }

  window.ArchivistTrends = {
    drawn: null,
    show(bundles) {
      state.bundles = bundles || [];
      if (typeof uPlot === "undefined") {
        $("#trends-note").textContent = "The chart library did not load (static/vendor/uplot).";
        return;
      }
      draw();
    },
  };

  document.addEventListener("DOMContentLoaded", () => {
    $("#trend-count").addEventListener("change", draw);
    // the page's theme follows the Airflow UI; redraw with its colors
    new MutationObserver(() => { if (state.charts.length) draw(); })
      .observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    let width = 0;
    new ResizeObserver(() => {
      const w = $("#chart-size").clientWidth;
      if (w !== width && state.charts.length) {
        width = w;
        for (const c of state.charts) c.setSize({ width: Math.max(200, c.root.parentElement.clientWidth), height: HEIGHT });
      }
    }).observe($("#trends"));
  });
})();
