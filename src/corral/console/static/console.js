// Corral's web console: live updates (one Server-Sent Events stream per page) and charts.
"use strict";

const fmt = (v) => (v === null || v === undefined) ? "-" :
  (Number.isInteger(v) ? v.toLocaleString("en-US") : v.toLocaleString("en-US", { maximumFractionDigits: 2 }));
const pct = (v) => (v === null || v === undefined) ? "-" : `${Math.round(100 * v)}%`;
const setText = (id, value) => { const el = document.getElementById(id); if (el) el.textContent = value; };
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

function live(topic, onData) {
  const source = new EventSource(`/console/events?topic=${encodeURIComponent(topic)}`);
  source.onmessage = (event) => onData(JSON.parse(event.data));
  window.addEventListener("pagehide", () => source.close());
  return source;
}

function showTotals(totals) {
  setText("total-invocations", fmt(totals.invocations));
  setText("total-errors", fmt(totals.errors));
  setText("total-throttles", fmt(totals.throttles));
  if (document.getElementById("success-rate")) {
    setText("success-rate", totals.invocations ?
      `${(100 * (totals.invocations - totals.errors) / totals.invocations).toFixed(1)}%` : "-");
  }
}

// --- overview ---------------------------------------------------------------------------------
function overviewPage() {
  live("overview", (data) => {
    showTotals(data.totals);
    setText("now-invocations", fmt(data.now.invocations));
    setText("now-errors", fmt(data.now.errors));
    setText("now-throttles", fmt(data.now.throttles));
    for (const p of data.providers) {
      const row = document.querySelector(`tr[data-provider="${CSS.escape(p.name)}"]`);
      if (!row) continue;
      row.querySelector(".instances").textContent = p.instances;
      row.querySelector(".environments").textContent = p.environments;
      row.querySelector(".vcpus").textContent = p.vcpus;
    }
  });
}

// --- function Monitor -------------------------------------------------------------------------
const CHARTS = [
  ["chart-requests", [["invocations_per_second", "invocations/s", "#1f4e79"],
    ["errors_per_second", "errors/s", "#b3261e"], ["throttles_per_second", "throttles/s", "#a35c00"]], 1],
  ["chart-duration", [["duration_mean_seconds", "mean (ms)", "#6a3d9a"]], 1000],
  ["chart-concurrency", [["corral_concurrent_executions", "concurrent executions", "#1d7f4e"],
    ["corral_execution_environments", "environments", "#5d6b7a"]], 1],
  ["chart-usage", [["corral_execution_environment_cpu_utilization", "CPU %", "#d9480f"],
    ["corral_execution_environment_memory_utilization", "memory %", "#1864ab"]], 100],
];
const WINDOW_S = 15 * 60;

const PROVIDER_CHARTS = [
  ["chart-fleet", [["instances_running", "running instances", "#1f4e79"],
    ["corral_capacity_provider_vcpu_allocated", "vCPU allocated", "#d9480f"],
    ["corral_capacity_provider_vcpu_available", "vCPU free", "#1d7f4e"]], 1],
  ["chart-fleet-usage", [["corral_capacity_provider_cpu_utilization", "CPU %", "#d9480f"],
    ["corral_capacity_provider_memory_utilization", "memory %", "#1864ab"]], 100],
];

function makeCharts(charts, history) {
  const plots = [];
  for (const [id, series, scale] of charts) {
    const el = document.getElementById(id);
    const data = [history.t.slice()];
    for (const [name] of series) data.push((history[name] || []).map((v) => v === null ? null : v * scale));
    const plot = new uPlot({
      width: Math.max(320, el.clientWidth), height: 200,
      series: [{}, ...series.map(([, label, stroke]) => ({ label, stroke, width: 2, spanGaps: false }))],
      axes: [{}, { size: 56 }],
      scales: { x: { time: true, range: (u, min, max) => {
        const end = Number.isFinite(max) ? max : Date.now() / 1000;
        return [end - WINDOW_S, end];
      } } },
      legend: { live: true },
    }, data, el);
    el.dataset.points = data[0].length;
    plots.push({ plot, series, scale, data });
  }
  window.addEventListener("resize", () => {
    for (const { plot } of plots) plot.setSize({ width: Math.max(320, plot.root.parentElement.clientWidth), height: 200 });
  });
  return plots;
}

function addPoint(plots, t, point) {
  for (const entry of plots) {
    const { data, series, scale } = entry;
    const last = data[0][data[0].length - 1];
    if (last !== undefined && t <= last) continue;
    data[0].push(t);
    series.forEach(([name], i) => {
      const v = point[name];
      data[i + 1].push(v === null || v === undefined ? null : v * scale);
    });
    while (data[0].length && data[0][0] < t - WINDOW_S) data.forEach((column) => column.shift());
    entry.plot.setData(data);
    entry.plot.root.parentElement.dataset.points = data[0].length;
  }
}

function functionPage(section) {
  const plots = makeCharts(CHARTS, JSON.parse(document.getElementById("history").textContent));
  live(section.dataset.live, (update) => {
    showTotals(update.totals);
    if (update.durations) {
      for (const key of ["avg", "p50", "p99", "max"]) {
        const v = update.durations[key];
        setText(`duration-${key}`, v === null ? "-" : `${v.toFixed(2)} ms`);
      }
    }
    addPoint(plots, update.t, update.point);
    const body = document.getElementById("environments");
    body.innerHTML = update.environments.length ? update.environments.map((e) =>
      `<tr><td class="mono">${esc(e.id.slice(0, 12))}</td><td>${esc(e.version)}</td><td>${esc(e.state)}</td>` +
      `<td class="n">${e.busy}/${e.limit}</td><td class="n">${pct(e.cpu)}</td><td class="n">${pct(e.memory)}</td>` +
      `<td class="mono">${esc(e.instance)}</td></tr>`).join("") :
      `<tr><td colspan="7" class="muted">None running.</td></tr>`;
  });
}

// --- capacity provider live map ---------------------------------------------------------------
function drawMap(provider) {
  const map = document.getElementById("map");
  setText("vcpus", `${provider.vCpuInUse}/${provider.maxVCpuCount}`);
  const instances = provider.instances.filter((i) => i.state !== "Terminated");
  if (!instances.length) {
    map.innerHTML = `<p class="muted">No instance: none is needed now${provider.idleTimeoutS ? " (scaled to zero)" : ""}.</p>`;
    return;
  }
  map.innerHTML = instances.map((i) => {
    const envs = i.environments.map((e) => {
      const load = e.concurrencyLimit ? e.concurrency / e.concurrencyLimit : 0;
      const cls = `env ${esc(e.state)}${load >= 1 ? " full" : load > 0 ? " busy" : ""}`;
      const fn = e.functionArn.split(":function:")[1];
      return `<div class="${cls}" data-environment="${esc(e.id)}" title="${esc(e.id)}">` +
        `<div class="fn">${esc(fn)}</div><div>${esc(e.state)} · <b>${e.concurrency}/${e.concurrencyLimit}</b> busy</div>` +
        `<div>CPU ${pct(e.cpuUtilization)} · mem ${pct(e.memoryUtilization)}</div>` +
        `<div class="bar"><i style="width:${Math.min(100, Math.round(100 * load))}%"></i></div></div>`;
    }).join("");
    return `<div class="instance ${esc(i.state)}" data-instance="${esc(i.id)}"><h4 class="mono">${esc(i.id)}</h4>` +
      `<p class="meta">${esc(i.instanceType)} · ${esc(i.state)} · ${i.vCpuAllocated}/${i.vCpu} vCPU · ` +
      `${i.memoryAllocatedMiB}/${i.memoryMiB} MiB · CPU ${pct(i.cpuUtilization)}</p>` +
      `<div class="envs">${envs || '<span class="muted small">no environment</span>'}</div></div>`;
  }).join("");
}

function providerPage(section) {
  drawMap(JSON.parse(document.getElementById("live").textContent));
  const plots = makeCharts(PROVIDER_CHARTS, JSON.parse(document.getElementById("history").textContent));
  live(section.dataset.live, (provider) => {
    if (!provider) return;
    drawMap(provider);
    const h = provider.history;
    h.t.forEach((t, i) => {
      const point = {};
      for (const [, series] of PROVIDER_CHARTS) for (const [name] of series) point[name] = h[name][i];
      addPoint(plots, t, point);
    });
  });
}

// --- cost ---------------------------------------------------------------------------------------
function costPage(form) {
  let plot = null;
  const run = async () => {
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v !== "") params.set(k, v);
    const answer = await fetch(`/console/cost/estimate?${params}`);
    const data = await answer.json();
    const out = document.getElementById("estimate-result");
    if (!answer.ok) { out.innerHTML = `<p class="error" role="alert">${esc(data.message || data.Message || "error")}</p>`; return; }
    const m = data.managedInstances, c = data.classic;
    out.innerHTML =
      `<div class="tile"><span class="label">classic Lambda / month</span><span class="value" id="classic-usd">$${fmt(c.monthlyUsd)}</span></div>` +
      `<div class="tile"><span class="label">Managed Instances / month</span><span class="value" id="managed-usd">$${fmt(m.monthlyUsd)}</span></div>` +
      `<div class="tile"><span class="label">break-even</span><span class="value">${data.breakEvenRps === null ? "none" : fmt(data.breakEvenRps) + " req/s"}</span></div>` +
      `<div class="tile"><span class="label">instances</span><span class="value">${m.instances} x ${esc(m.instanceType)}</span></div>`;
    const el = document.getElementById("chart-cost");
    const rows = [data.chart.rps, data.chart.classicUsd, data.chart.managedInstancesUsd];
    if (plot) plot.destroy();
    plot = new uPlot({
      width: Math.max(320, el.clientWidth), height: 260, scales: { x: { time: false } },
      series: [{ label: "req/s" }, { label: "classic $", stroke: "#1f4e79", width: 2 },
        { label: "Managed Instances $", stroke: "#d9480f", width: 2 }],
    }, rows, el);
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); run(); });
  run();
}

function reportPage(form) {
  let plot = null;
  const run = async () => {
    const params = new URLSearchParams(new FormData(form));
    const answer = await fetch(`/console/cost/report?${params}`);
    const data = await answer.json();
    const out = document.getElementById("report-result");
    if (!answer.ok) { out.innerHTML = `<p class="error" role="alert">${esc(data.message || data.Message || "error")}</p>`; return; }
    const m = data.measured, managed = data.managedInstances;
    out.innerHTML =
      `<div class="tile"><span class="label">invocations</span><span class="value" id="report-invocations">${fmt(m.invocations)}</span></div>` +
      `<div class="tile"><span class="label">classic / month at this pace</span><span class="value">$${fmt(data.classic.monthlyUsd)}</span></div>` +
      `<div class="tile"><span class="label">Managed Instances as configured</span><span class="value">$${fmt(managed.asConfigured.monthlyUsd)}</span></div>` +
      `<div class="tile"><span class="label">right-sized</span><span class="value">$${fmt(managed.rightSized.monthlyUsd)}</span></div>`;
    const el = document.getElementById("chart-report");
    const hours = m.hourlyRps.map((_, i) => i);
    if (plot) plot.destroy();
    plot = new uPlot({
      width: Math.max(320, el.clientWidth), height: 200, scales: { x: { time: false } },
      series: [{ label: "hour" }, { label: "req/s", stroke: "#1f4e79", width: 2 }],
    }, [hours, m.hourlyRps], el);
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); run(); });
}

document.addEventListener("DOMContentLoaded", () => {
  const section = document.querySelector("[data-live]");
  if (section) {
    const kind = section.dataset.live.split(":")[0];
    if (kind === "overview") overviewPage();
    else if (kind === "function") functionPage(section);
    else if (kind === "provider") providerPage(section);
  }
  const estimate = document.getElementById("estimate");
  if (estimate) costPage(estimate);
  const report = document.getElementById("report");
  if (report) reportPage(report);
});
