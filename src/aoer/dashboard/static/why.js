/* AOER dashboard: the "Why it moved" panel — the last change split into parts (an SVG
   diverging bar per part), the 7- and 30-day changes, and the recommendations. Fed with the
   summary JSON (GET /api/aoer/summary and every SSE `summary` event). */
"use strict";

const WhyPanel = (() => {
  const NS = "http://www.w3.org/2000/svg";
  // Parts in reading order; components first, as DESIGN §13 lists them.
  const PARTS = [
    ["aeo", "AEO"], ["geo", "GEO"], ["ugc", "UGC"], ["seo", "SEO"], ["geolocal", "Geolocal"],
    ["volatility", "Volatility penalty"], ["model", "Model weights"], ["rounding", "Rounding"],
  ];
  const ROW_H = 24;
  const MIN_SCALE = 5; // points: a half-width bar is a move of at least this much
  const LABEL_W = 128;
  const VALUE_W = 56;

  function svg(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function signed(value) {
    const n = Number(value);
    if (!Number.isFinite(n)) return "—";
    const text = Math.abs(n).toFixed(2);
    return n > 0 ? `+${text}` : n < 0 ? `−${text}` : "±0.00";
  }

  function cents(value) {
    return Math.round(Number(value) * 100);
  }

  /* root: the panel's container (with the [data-why] parts inside). */
  function create(root) {
    const bars = root.querySelector("[data-why='bars']");
    const headline = root.querySelector("[data-why='headline']");
    const d7 = root.querySelector("[data-why='change7d']");
    const d30 = root.querySelector("[data-why='change30d']");
    const list = root.querySelector("[data-why='recommendations']");
    const none = root.querySelector("[data-why='no-recommendations']");

    function partsOf(change) {
      return PARTS.filter(([key]) => key in change).map(([key, label]) => ({ key, label, value: Number(change[key]) }));
    }

    /* Work in cents: the parts add up to the delta exactly. */
    function deltaCents(parts) {
      return parts.reduce((sum, p) => sum + cents(p.value), 0);
    }

    /* What to explain: the last recompute when it moved the score; else the last one of the
       last 30 days that did (`lastMove`), so a refresh that changed nothing does not blank
       the explanation of a fall a few hours before. */
    function explained(summary) {
      const last = summary.change ? partsOf(summary.change) : null;
      // No data now: nothing to explain until signals arrive (the headline says so).
      const move = summary.grade === AOER.NO_DATA ? null : summary.lastMove;
      if (last && deltaCents(last) !== 0) return { parts: last, now: cents(summary.aoerScore), at: null, since: false };
      if (move && move.change) return { parts: partsOf(move.change), now: cents(move.aoerScore), at: move.at, since: true };
      return last ? { parts: last, now: cents(summary.aoerScore), at: null, since: false } : null;
    }

    function drawSplit(summary) {
      bars.replaceChildren();
      const shown = explained(summary);
      if (!shown) {
        headline.textContent = summary.grade === "No data"
          ? "No signal in the last 30 days: there is no score to explain until signals arrive."
          : "No change to explain yet: the split appears from the second recompute with data on.";
        root.dataset.delta = "";
        return;
      }
      const parts = shown.parts;
      const delta = deltaCents(parts);
      const now = shown.now;
      const before = (now - delta) / 100;
      const moved = `${before.toFixed(2)} → ${(now / 100).toFixed(2)} (${signed(delta / 100)} points)`;
      if (shown.since) {
        const at = new Date(shown.at);
        const when = Number.isNaN(at.getTime()) ? "" : `${AOER.localTime(at.getTime())}, `;
        headline.textContent = `Last change (${when}${AOER.relative(at.getTime(), Date.now())}): ${moved}. The recomputes since changed nothing.`;
      } else if (delta === 0) {
        headline.textContent = `Last recompute: ${moved}: no change in the last 30 days.`;
      } else {
        headline.textContent = `Last recompute: ${moved}`;
      }
      root.dataset.delta = (delta / 100).toFixed(2);

      const width = Math.max(Math.round(bars.clientWidth) || 420, 280);
      const height = parts.length * ROW_H + 8;
      const chartW = width - LABEL_W - VALUE_W;
      const mid = LABEL_W + chartW / 2;
      // Bars are drawn against at least MIN_SCALE points: scaled to the largest part alone,
      // a move of 0.02 drew bars as long as one of 8 (a report read it as a large change).
      const scale = Math.max(...parts.map((p) => Math.abs(p.value)), MIN_SCALE);
      const figure = svg("svg", {
        viewBox: `0 0 ${width} ${height}`,
        role: "img",
        "aria-label": `Change split: ${parts.map((p) => `${p.label} ${signed(p.value)}`).join(", ")}`,
      });
      figure.appendChild(svg("line", { class: "axis", x1: mid, x2: mid, y1: 0, y2: height }));
      parts.forEach((p, i) => {
        const y = 4 + i * ROW_H;
        const length = (Math.abs(p.value) / scale) * (chartW / 2 - 4);
        const row = svg("g", { class: "part", "data-part": p.key, "data-value": p.value.toFixed(2) });
        row.appendChild(svg("text", { class: "label", x: LABEL_W - 8, y: y + 15, "text-anchor": "end" }, p.label));
        row.appendChild(svg("rect", {
          class: p.value > 0 ? "bar up" : p.value < 0 ? "bar down" : "bar zero",
          x: p.value < 0 ? mid - length : mid,
          y: y + 4,
          width: Math.max(length, p.value === 0 ? 0 : 1.5),
          height: ROW_H - 8,
          rx: 2,
        }));
        row.appendChild(svg("text", { class: "value", x: width - 4, y: y + 15, "text-anchor": "end" }, signed(p.value)));
        row.appendChild(svg("title", {}, `${p.label}: ${signed(p.value)} points`));
        figure.appendChild(row);
      });
      bars.appendChild(figure);
    }

    function drawPeriods(summary) {
      for (const [node, value, days] of [[d7, summary.change7d, 7], [d30, summary.change30d, 30]]) {
        const known = value !== null && value !== undefined;
        node.textContent = known ? signed(value) : "—";
        node.title = known ? `Score now minus the score ${days} days ago` : `No score from ${days} days ago yet`;
        node.dataset.sign = known ? String(Math.sign(Number(value))) : "";
      }
    }

    function drawRecommendations(summary) {
      const items = summary.recommendations || [];
      list.replaceChildren();
      for (const r of items) {
        const item = document.createElement("li");
        item.dataset.rule = r.id;
        const tag = document.createElement("span");
        tag.className = `severity severity-${r.severity}`;
        tag.textContent = r.severity;
        const text = document.createElement("span");
        text.className = "msg";
        text.textContent = r.message;
        item.append(tag, text);
        if (r.expectedGain !== undefined && r.expectedGain !== null) {
          const gain = document.createElement("b");
          gain.className = "gain num";
          gain.textContent = `${signed(r.expectedGain)} pts`;
          item.appendChild(gain);
        }
        list.appendChild(item);
      }
      none.hidden = items.length > 0;
    }

    let last = null;
    let width = bars.clientWidth;
    new ResizeObserver(() => {
      if (last && Math.abs(bars.clientWidth - width) > 8) { width = bars.clientWidth; drawSplit(last); }
    }).observe(bars);

    return {
      update(summary) {
        last = summary;
        drawSplit(summary);
        drawPeriods(summary);
        drawRecommendations(summary);
      },
    };
  }

  return { create };
})();
