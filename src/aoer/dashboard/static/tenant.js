/* AOER dashboard: one dealership — live tiles, trend chart, queue, "Recompute now". */
"use strict";

(() => {
  const main = document.getElementById("main");
  const tenantId = main.dataset.tenantId;
  const q = encodeURIComponent(tenantId);
  const WAIT_WARNING_MS = 30000;
  const MAX_EVENTS = 10;

  const chart = TrendChart.create(document.getElementById("chart"), document.getElementById("chart-readout"));
  const why = WhyPanel.create(document.getElementById("why"));
  let chartDays = 30;
  let recompute = null; // {since, timer} while a requested recompute is in flight

  const bound = (key) => main.querySelector(`[data-bind="${key}"]`);
  const tileOf = (node) => (node ? node.closest(".tile, .card") : null);

  /* -- tiles ------------------------------------------------------------------------------ */

  const METRIC_DIGITS = { avgAEO: 2, avgGEO: 2, avgUGC: 2, avgSEO: 2, avgGeolocal: 2, volatility: 2, dataPoints: 0, daysSinceLastData: 0 };
  const OPTIONAL_METRICS = ["avgSEO", "avgGeolocal"]; // tiles shown only when the model weighs them

  function applySummary(summary, highlight) {
    const changed = new Set();
    const put = (key, text) => { if (AOER.setText(bound(key), text)) changed.add(tileOf(bound(key))); };
    put("aoerScore", AOER.measure(summary, summary.aoerScore));
    put("visibilityRisk", AOER.measure(summary, summary.visibilityRisk));
    for (const key of ["aoerScore", "visibilityRisk"]) bound(key).classList.toggle("no-data", summary.grade === AOER.NO_DATA);
    const grade = bound("grade");
    if (grade && grade.textContent !== summary.grade) { AOER.setBadge(grade, "grade", summary.grade); changed.add(tileOf(grade)); }
    const risk = bound("riskLevel");
    if (risk && risk.textContent !== summary.riskLevel) { AOER.setBadge(risk, "risk", summary.riskLevel); changed.add(tileOf(risk)); }
    const updated = bound("lastUpdated");
    if (updated && summary.lastUpdated && updated.getAttribute("datetime") !== summary.lastUpdated) {
      AOER.setTime(updated, summary.lastUpdated);
      changed.add(tileOf(updated));
    }
    const metrics = summary.metrics || {};
    for (const [key, digits] of Object.entries(METRIC_DIGITS)) put(key, AOER.fixed(metrics[key], digits));
    for (const key of OPTIONAL_METRICS) {
      const tile = document.getElementById(`tile-${key}`);
      if (tile) tile.hidden = !(key in metrics);
    }

    document.getElementById("notice-never").hidden = true;
    const noSignals = document.getElementById("notice-nosignals");
    if (!metrics.error) noSignals.hidden = true;
    document.getElementById("notice-nodata").hidden = !metrics.error || !noSignals.hidden;
    if (highlight) for (const node of changed) AOER.flash(node, true);
    return changed.size;
  }

  function applyQueue(status) {
    for (const key of ["pending", "processing", "completed", "failed"]) {
      const node = bound(`queue.${key}`);
      if (AOER.setText(node, String(status[key] ?? 0))) AOER.flash(node.parentElement, false);
    }
    if (recompute) {
      if ((status.failed ?? 0) > recompute.failed) finishRecompute("The recompute failed. An administrator sees why on the Jobs page.", "error");
      else if (status.processing > 0) progress("Recomputing…");
      else if (status.pending > 0) progress("Queued, waiting for a worker…");
    }
  }

  /* A live recompute as a row of "Recent recomputes", like the server renders them: the job's
     priority tag comes from the history point the recompute recorded (the summary has none). */
  function addEvent(summary) {
    const list = document.getElementById("events");
    const item = AOER.el("li");
    const time = AOER.el("time", { "data-relative": "" });
    AOER.setTime(time, summary.lastUpdated);
    item.append(time);
    if (summary.grade === AOER.NO_DATA) {
      item.append(AOER.el("span", { class: "no-data" }, "no data"));
    } else {
      const score = AOER.el("span", {}, "score ");
      score.appendChild(AOER.el("b", { class: "num" }, AOER.fixed(summary.aoerScore, 2)));
      const risk = AOER.el("span", {}, "risk ");
      risk.appendChild(AOER.el("span", { class: "num" }, AOER.fixed(summary.visibilityRisk, 2)));
      item.append(score, risk);
    }
    list.prepend(item);
    while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
    document.getElementById("events-empty").hidden = true;
    AOER.flash(item, false);
    tagPriority(item, Date.parse(summary.lastUpdated));
  }

  async function tagPriority(item, at) {
    try {
      const body = await AOER.getJSON(`/api/aoer/history?tenantId=${q}&days=1`);
      const points = body.history || [];
      const point = points.find((p) => Date.parse(p.createdAt) === at) || points[points.length - 1];
      if (point && point.priority && !item.querySelector(".tag")) {
        item.append(AOER.el("span", { class: "tag", title: `job priority: ${point.priority}`, "data-priority": point.priority },
          point.priority === "low" ? "background" : "requested"));
      }
    } catch (_) { /* the row stays without its tag; the next page load shows it */ }
  }

  /* -- chart ------------------------------------------------------------------------------ */

  async function loadHistory(days) {
    try {
      const body = await AOER.getJSON(`/api/aoer/history?tenantId=${q}&days=${days}`);
      // A recompute from no data is a gap in the line, not a fall to 0 (its stored score).
      const points = (body.history || []).map((p) => ({ t: Date.parse(p.createdAt), v: Number(p.aoerScore), gap: p.grade === AOER.NO_DATA }));
      // Model promotions/rollbacks (kind "model") and the dealership's alerts (kind "alert").
      const markers = (body.markers || []).map((m) => ({ t: Date.parse(m.at), kind: m.kind, label: m.label, detail: m.detail }));
      chart.setMarkers(markers.filter((m) => !Number.isNaN(m.t)));
      chart.setPoints(points.filter((p) => !Number.isNaN(p.t)), days);
    } catch (error) {
      const box = document.getElementById("chart");
      box.replaceChildren(AOER.el("p", { class: "empty-text" }, `The score history could not be loaded (${error.message}). It will retry when the connection is back.`));
    }
  }

  for (const button of document.querySelectorAll("#trend [data-days]")) {
    button.addEventListener("click", () => {
      chartDays = Number(button.dataset.days);
      for (const other of document.querySelectorAll("#trend [data-days]")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      loadHistory(chartDays);
    });
  }

  /* -- alerts: the feed card, and a live alert's marker on the chart --------------------- */

  const feedCard = document.getElementById("alerts-card");
  const feed = AlertFeed.create(document.getElementById("alerts-feed"), document.getElementById("alerts-empty"));
  // Worded as /api/aoer/history words an alert's marker (aoer.alerts.wording), so the marker a
  // live alert adds reads the same as the one the next page load draws.
  function markerOf(alert) {
    const title = AlertFeed.title(alert.kind);
    const numbers = AlertFeed.summary(alert);
    return { t: Date.parse(alert.createdAt), kind: "alert", label: title, detail: numbers ? `${title}: ${numbers}` : title };
  }

  async function loadAlerts() {
    try {
      const body = await AOER.getJSON(feedCard.dataset.alertsSrc);
      feed.replace(body.alerts || []);
    } catch (_) { /* shown again on the next resync */ }
  }

  function onAlert(alert) {
    if (alert.tenantId !== tenantId) return;
    feed.add(alert, true);
    const marker = markerOf(alert);
    if (!Number.isNaN(marker.t)) chart.addMarker(marker);
  }

  /* -- recompute now ---------------------------------------------------------------------- */

  const button = document.getElementById("recompute");
  const status = document.getElementById("recompute-status");

  function progress(text, state) {
    status.textContent = text;
    if (state) status.dataset.state = state; else delete status.dataset.state;
  }

  function finishRecompute(text, state) {
    if (recompute) clearTimeout(recompute.timer);
    recompute = null;
    button.disabled = false;
    button.removeAttribute("aria-busy");
    progress(text, state);
  }

  button.addEventListener("click", async () => {
    if (recompute) return;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    const failed = Number((bound("queue.failed") || {}).textContent) || 0;  // jobs failed before this one
    recompute = { since: Date.now(), failed, timer: setTimeout(() => progress("Still waiting for a worker — is `aoer worker` running?"), WAIT_WARNING_MS) };
    progress("Queuing an urgent recompute…");
    try {
      const job = await AOER.postJSON("/api/aoer/queue", { tenantId, priority: "urgent" });
      if (recompute) progress(job.coalesced ? "Queued (joined the job already waiting)…" : "Queued, waiting for a worker…");
    } catch (error) {
      finishRecompute(`Could not queue the recompute: ${error.message}`, "error");
    }
  });

  /* -- live ------------------------------------------------------------------------------- */

  // The stream starts with the current summary; only a later one is a new recompute.
  const shown = bound("lastUpdated");
  let shownAt = Date.parse((shown && shown.getAttribute("datetime")) || "") || 0;

  function onSummary(summary) {
    if (summary.tenantId !== tenantId) return;
    why.update(summary); // the stream's first event too: it fills the panel on load
    const at = Date.parse(summary.lastUpdated);
    if (!(at > shownAt)) return;
    shownAt = at;
    applySummary(summary, true);
    chart.addPoint({ t: at, v: Number(summary.aoerScore), gap: summary.grade === AOER.NO_DATA });
    addEvent(summary);
    if (recompute) {
      const seconds = ((Date.now() - recompute.since) / 1000).toFixed(1);
      const result = summary.grade === AOER.NO_DATA ? "no data in the last 30 days" : `score ${AOER.fixed(summary.aoerScore, 2)} (${summary.grade})`;
      finishRecompute(`Done in ${seconds} s: ${result}.`);
    } else if (status.textContent) {
      // A later recompute (cron, another user) replaced the one this label reported on.
      progress("");
    }
  }

  async function resync() {
    // After a reconnect: fetch what the stream may have missed while it was down.
    try {
      const [summary, queue] = await Promise.all([
        AOER.getJSON(`/api/aoer/summary?tenantId=${q}`).catch((e) => (e.status === 404 ? null : Promise.reject(e))),
        AOER.getJSON(`/api/aoer/queue?tenantId=${q}`),
      ]);
      if (summary) onSummary(summary);
      applyQueue(queue.queueStatus || {});
      loadHistory(chartDays);
      loadAlerts();
    } catch (_) { /* the stream's error handler shows the state and retries */ }
  }

  AOER.stream(`/api/aoer/stream?tenantId=${q}`, {
    events: {
      summary: onSummary,
      queue: (body) => applyQueue(body.queueStatus || body),
      alert: onAlert,
    },
    onResync: resync,
    probe: `/api/aoer/queue?tenantId=${q}`,
  });
  loadHistory(chartDays);
  AOER.getJSON(`/api/aoer/summary?tenantId=${q}`).then((summary) => why.update(summary)).catch((error) => {
    if (error.status === 404) {
      document.querySelector("#why [data-why='headline']").textContent = "Not computed yet: nothing to explain.";
    }
  });
  loadAlerts();
})();
