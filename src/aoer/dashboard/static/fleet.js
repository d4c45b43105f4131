/* AOER dashboard: the fleet — rows updated in place from the live stream, stats refreshed. */
"use strict";

(() => {
  const STATS_EVERY_MS = 10000;
  const STATS_AFTER_EVENT_MS = 800; // coalesce a burst of summary events into one refresh
  let statsTimer = null;

  function rowFor(tenantId) {
    for (const row of document.querySelectorAll("#fleet-table tbody tr")) {
      if (row.dataset.tenantId === tenantId) return row;
    }
    return null;
  }

  function onSummary(summary) {
    scheduleStats(STATS_AFTER_EVENT_MS);
    const row = rowFor(summary.tenantId);
    if (!row) return;
    const cell = (name) => row.querySelector(`[data-cell="${name}"]`);
    let changed = AOER.setText(cell("score"), AOER.measure(summary, summary.aoerScore));
    const week = summary.change7d === null || summary.change7d === undefined ? null : Number(summary.change7d);
    AOER.setText(cell("change7d"), week === null ? "—" : `${week > 0 ? "+" : week < 0 ? "−" : ""}${Math.abs(week).toFixed(2)}`);
    cell("change7d").classList.toggle("up", week !== null && week > 0);
    cell("change7d").classList.toggle("down", week !== null && week < 0);
    changed = AOER.setText(cell("risk"), AOER.measure(summary, summary.visibilityRisk)) || changed;
    for (const name of ["score", "risk"]) cell(name).classList.toggle("no-data", summary.grade === AOER.NO_DATA);
    if (cell("grade").textContent !== summary.grade) { AOER.setBadge(cell("grade"), "grade", summary.grade); changed = true; }
    if (cell("level").textContent !== summary.riskLevel) { AOER.setBadge(cell("level"), "risk", summary.riskLevel); changed = true; }
    AOER.setTime(cell("updated"), summary.lastUpdated);
    row.dataset.updated = summary.lastUpdated;
    AOER.flash(row, false);
    if (changed) document.getElementById("resort").hidden = false;
  }

  function put(selector, text) {
    const node = document.querySelector(selector);
    if (node && AOER.setText(node, text)) AOER.flash(node.closest(".tile") || node, false);
  }

  const thousands = (n) => Number(n).toLocaleString("en-US");

  function applyStats(stats) {
    const t = stats.totals;
    put('[data-stat="tenants"]', thousands(t.tenants));
    put('[data-stat="computed"]', thousands(t.computed));
    put('[data-stat="noData"]', thousands(t.noData));
    put('[data-stat="inactive"]', thousands(t.inactive));
    const inactive = document.querySelector('[data-stat-wrap="inactive"]');
    if (inactive) inactive.hidden = !t.inactive;
    put('[data-stat="meanScore"]', AOER.fixed(t.meanScore, 2));
    put('[data-stat="atRisk"]', thousands(t.byRisk.High + t.byRisk.Critical));
    put('[data-stat="critical"]', thousands(t.byRisk.Critical));
    put('[data-stat="lastMinute"]', thousands(stats.throughput.lastMinute));
    put('[data-stat="lastHour"]', thousands(stats.throughput.lastHour));
    const next = document.querySelector('[data-stat="nextTick"]');
    if (next && stats.nextTick) AOER.setTime(next, stats.nextTick);
    for (const cell of document.querySelectorAll("[data-depth]")) {
      const [status, priority] = cell.dataset.depth.split(".");
      const value = ((stats.depth[status] || {})[priority]) || 0;
      if (AOER.setText(cell, thousands(value))) AOER.flash(cell, false);
    }
    const list = document.getElementById("failures");
    const items = stats.failures.map((f) => {
      const item = AOER.el("li");
      const time = AOER.el("time", { "data-relative": "" });
      AOER.setTime(time, f.createdAt);
      const link = AOER.el("a", { href: `/dashboard/tenant/${encodeURIComponent(f.tenantId)}` }, f.name);
      const tag = AOER.el("span", { class: "tag" }, `attempt ${f.retryCount}${f.willRetry ? ", will retry" : ""}`);
      item.append(time, link, tag, AOER.el("span", { class: "msg" }, f.errorMessage));
      return item;
    });
    list.replaceChildren(...items);
    document.getElementById("failures-empty").hidden = items.length > 0;
  }

  const main = document.querySelector("main");
  const statsUrl = main.dataset.statsUrl || "/dashboard/fleet/stats";

  async function refreshStats() {
    statsTimer = null;
    statsDue = Infinity;
    try {
      applyStats(await AOER.getJSON(statsUrl));
    } catch (_) { /* the stream shows the connection state; the next refresh retries */ }
    scheduleStats(STATS_EVERY_MS);
  }

  let statsDue = Infinity;
  function scheduleStats(delay) {
    // Only ever move the next refresh earlier, so a steady stream of events cannot starve it.
    const due = Date.now() + delay;
    if (statsTimer !== null && statsDue <= due) return;
    if (statsTimer !== null) clearTimeout(statsTimer);
    statsDue = due;
    statsTimer = setTimeout(refreshStats, delay);
  }

  const feedCard = document.getElementById("alerts-card");
  const feed = AlertFeed.create(document.getElementById("alerts-feed"), document.getElementById("alerts-empty"), { withTenant: true });
  async function loadAlerts() {
    try { feed.replace((await AOER.getJSON(feedCard.dataset.alertsSrc)).alerts || []); } catch (_) { /* retried on resync */ }
  }

  // An administrator's stream carries every dealership; an organisation's, its own.
  AOER.stream("/api/aoer/stream", {
    events: { summary: onSummary, alert: (alert) => feed.add(alert, true) },
    onResync: () => { scheduleStats(0); loadAlerts(); },
    probe: statsUrl,
  });
  scheduleStats(STATS_EVERY_MS);
  loadAlerts();
})();
