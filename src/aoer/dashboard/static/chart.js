/* AOER dashboard: the score trend as inline SVG, with hover and keyboard read-outs. */
"use strict";

const TrendChart = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const PAD = { top: 14, right: 70, bottom: 28, left: 34 };
  const MIN_WIDTH = 280;
  let W = 640; // drawn at the container's own width, so text keeps its size on a phone
  let H = 240;
  const BANDS = [[80, "Excellent"], [60, "Good"], [40, "Fair"]];
  const DAY_MS = 86400000;
  const MIN_SPAN = 20; // score points the y axis spans at least
  const MARKER_SKEW_MS = 3600000; // a marker up to an hour past "now" is still drawn, at the edge
  const LABEL_ROWS = 3; // marker labels stack in up to three rows at the top of the plot
  const LABEL_ROW = 12; // px between label rows
  const LABEL_CHAR = 6.2; // px per character of a 10px bold label (an estimate: no layout pass)
  const LABEL_GAP = 6; // px between two labels in one row
  const READOUT_MARKERS = 6; // markers the read-out names, the newest

  function svg(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function grade(score) {
    if (score >= 80) return "Excellent";
    if (score >= 60) return "Good";
    if (score >= 40) return "Fair";
    return "Poor";
  }

  function dateLabel(t) {
    return new Date(t).toLocaleDateString(undefined, { month: "short", day: "numeric" });
  }

  function stamp(t) {
    return AOER.localTime(t);
  }

  /* container: the element to draw into; readout: a live region for the selected point. */
  function create(container, readout) {
    let points = [];
    let markers = []; // {t, kind: "model" | "alert", label, detail}: events on the time axis
    let days = 30;
    let selected = -1;
    let geometry = null;

    function xFor(t) {
      const { start, end } = geometry;
      const span = Math.max(end - start, 1);
      return PAD.left + ((t - start) / span) * (W - PAD.left - PAD.right);
    }
    function yFor(v) {
      const { lo, hi } = geometry;
      return PAD.top + (1 - (v - lo) / (hi - lo)) * (H - PAD.top - PAD.bottom);
    }

    /* The y range: the scores shown with some air, on tens, at least 20 wide, within 0..100.
       A fleet of scores around 65 gets 50..80, not a flat line near the top of 0..100. */
    function range(scores) {
      if (!scores.length) return { lo: 0, hi: 100 };
      let lo = Math.max(0, Math.floor((Math.min(...scores) - 5) / 10) * 10);
      let hi = Math.min(100, Math.ceil((Math.max(...scores) + 5) / 10) * 10);
      while (hi - lo < MIN_SPAN) { if (lo > 0) lo -= 10; if (hi - lo < MIN_SPAN && hi < 100) hi += 10; }
      return { lo, hi };
    }

    /* Where each marker's label goes: beside its rule (left of it near the right edge), in the
       first row where it overlaps no other label: model changes first (rare, and they move every
       score), then alerts, the newest first. Where every row is taken (markers crowded in a few
       days) a rule goes without a label: its tooltip and the read-out still name it. */
    function labelRows(shown) {
      const taken = Array.from({ length: LABEL_ROWS }, () => []);
      const rows = new Array(shown.length);
      const order = shown.map((m, i) => i).sort((a, b) =>
        (shown[a].kind === "model" ? 0 : 1) - (shown[b].kind === "model" ? 0 : 1) || shown[b].t - shown[a].t);
      for (const i of order) {
        const m = shown[i];
        const x = Math.min(xFor(m.t), W - PAD.right);
        const width = m.label.length * LABEL_CHAR;
        const right = x + 4 + width > W - PAD.right;
        const from = right ? x - 4 - width : x + 4;
        const to = from + width;
        const row = taken.findIndex((r) => r.every(([a, b]) => b + LABEL_GAP <= from || a >= to + LABEL_GAP));
        if (row >= 0) taken[row].push([from, to]);
        rows[i] = { row, right };
      }
      return rows;
    }

    function describe(p) {
      return p.gap ? `${stamp(p.t)}: no data (no signal in the 30-day window)` : `${stamp(p.t)}: score ${p.v.toFixed(2)} (${grade(p.v)})`;
    }

    function draw() {
      container.replaceChildren();
      W = Math.max(Math.round(container.clientWidth) || 640, MIN_WIDTH);
      H = W < 480 ? 200 : 240;
      const now = Date.now();
      const start = now - days * DAY_MS;
      const visible = points.filter((p) => p.t >= start - DAY_MS / 24);
      const scored = visible.filter((p) => !p.gap);
      geometry = { start, end: now, ...range(scored.map((p) => p.v)) };
      const root = svg("svg", {
        viewBox: `0 0 ${W} ${H}`,
        role: "img",
        tabindex: visible.length ? "0" : "-1",
        "aria-label": visible.length
          ? `Score trend over ${days} days, ${visible.length} recomputes; latest ${describe(visible[visible.length - 1])}. Use the arrow keys to read each point.`
          : `Score trend over ${days} days: no recomputes yet`,
      });
      const { lo, hi } = geometry;
      // Grid: the range's ends, and the grade boundaries inside it labelled so the bands carry words.
      root.appendChild(svg("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: yFor(lo), y2: yFor(lo) }));
      root.appendChild(svg("text", { class: "label", x: PAD.left - 6, y: yFor(lo) + 4, "text-anchor": "end" }, String(lo)));
      root.appendChild(svg("text", { class: "label", x: PAD.left - 6, y: yFor(hi) + 4, "text-anchor": "end" }, String(hi)));
      for (const [value, name] of BANDS) {
        if (value <= lo || value >= hi) continue;
        root.appendChild(svg("line", { class: "band", x1: PAD.left, x2: W - PAD.right, y1: yFor(value), y2: yFor(value) }));
        root.appendChild(svg("text", { class: "label", x: PAD.left - 6, y: yFor(value) + 4, "text-anchor": "end" }, String(value)));
        root.appendChild(svg("text", { class: "label", x: W - PAD.right + 6, y: yFor(value) + 4 }, name));
      }
      const ticks = [geometry.start, geometry.start + (geometry.end - geometry.start) / 2, geometry.end];
      ticks.forEach((t, i) => {
        const anchor = i === 0 ? "start" : i === 2 ? "end" : "middle";
        if (i === 1 && W < 420) return; // no room for three dates
        root.appendChild(svg("text", { class: "label", x: xFor(t), y: H - 8, "text-anchor": anchor }, dateLabel(t)));
      });

      // Markers (model changes, alerts) within the window: a dashed rule with a short label. A
      // marker just past "now" (a live alert, a server clock ahead of this one) sits on the edge.
      const shownMarkers = markers.filter((m) => m.t >= geometry.start && m.t <= geometry.end + MARKER_SKEW_MS);
      const rows = labelRows(shownMarkers);
      shownMarkers.forEach((m, i) => {
        const x = Math.min(xFor(m.t), W - PAD.right);
        const group = svg("g", { class: `marker marker-${m.kind}`, "data-kind": m.kind });
        group.appendChild(svg("line", { x1: x, x2: x, y1: PAD.top, y2: H - PAD.bottom }));  // the plot's floor, wherever the axis starts
        const { row, right } = rows[i];
        if (row >= 0) group.appendChild(svg("text", { x: right ? x - 4 : x + 4, y: PAD.top + 10 + row * LABEL_ROW, "text-anchor": right ? "end" : "start" }, m.label));
        group.appendChild(svg("title", {}, `${stamp(m.t)}: ${m.detail}`));
        root.appendChild(group);
      });
      if (shownMarkers.length) {
        const count = (kind, one, many) => {
          const n = shownMarkers.filter((m) => m.kind === kind).length;
          return n ? [`${n} ${n === 1 ? one : many}`] : [];
        };
        const kinds = [...count("model", "model change", "model changes"), ...count("alert", "alert", "alerts")];
        root.setAttribute("aria-label", `${root.getAttribute("aria-label")} Marked: ${kinds.join(", ")}.`);
      }

      if (!visible.length) {
        root.appendChild(svg("text", { class: "empty", x: W / 2, y: H / 2, "text-anchor": "middle" },
          `No recomputes in the last ${days} days yet`));
        container.appendChild(root);
        readout.textContent = "";
        return;
      }

      // A recompute from no data sits on the axis as a gap mark; the line breaks there.
      const coords = visible.map((p) => [xFor(Math.max(p.t, geometry.start)), p.gap ? yFor(lo) : yFor(p.v)]);
      const runs = [];
      let run = [];
      visible.forEach((p, i) => {
        if (p.gap) { if (run.length) runs.push(run); run = []; } else run.push(coords[i]);
      });
      if (run.length) runs.push(run);
      for (const part of runs.filter((r) => r.length > 1)) {
        const line = part.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
        const area = `${line} L${part[part.length - 1][0].toFixed(1)},${yFor(lo)} L${part[0][0].toFixed(1)},${yFor(lo)} Z`;
        root.appendChild(svg("path", { class: "area", d: area }));
        root.appendChild(svg("path", { class: "line", d: line }));
      }
      const dots = svg("g");
      const showAll = coords.length <= 120;
      coords.forEach(([x, y], i) => {
        const last = i === coords.length - 1;
        if (visible[i].gap) {
          if (showAll || last) dots.appendChild(svg("line", { class: "gap-mark", x1: x, x2: x, y1: y - 4, y2: y + 4, "data-index": i }));
          return;
        }
        if (showAll || last) {
          dots.appendChild(svg("circle", { class: last ? "dot last" : "dot", cx: x, cy: y, r: last ? 4.5 : 3, "data-index": i, "data-score": visible[i].v.toFixed(2) }));
        }
      });
      root.appendChild(dots);

      const guide = svg("line", { class: "guide", y1: PAD.top, y2: yFor(lo), visibility: "hidden" });
      const tip = svg("g", { class: "tip", visibility: "hidden" });
      const tipBox = svg("rect", { rx: 4, height: 22 });
      const tipText = svg("text", { y: 15 });
      tip.append(tipBox, tipText);
      root.append(guide, tip);

      function select(i) {
        selected = Math.max(0, Math.min(i, visible.length - 1));
        const [x, y] = coords[selected];
        const text = describe(visible[selected]);
        guide.setAttribute("x1", x);
        guide.setAttribute("x2", x);
        guide.setAttribute("visibility", "visible");
        const p = visible[selected];
        tipText.textContent = `${stamp(p.t)} · ${p.gap ? "no data" : p.v.toFixed(2)}`;
        const width = tipText.textContent.length * 6.6 + 14;
        const left = Math.min(Math.max(x - width / 2, 0), W - width);
        const top = y - 34 < 0 ? y + 12 : y - 34;
        tip.setAttribute("transform", `translate(${left.toFixed(1)},${top.toFixed(1)})`);
        tipBox.setAttribute("width", width.toFixed(1));
        tipText.setAttribute("x", 7);
        tip.setAttribute("visibility", "visible");
        readout.textContent = text;
      }
      function clear() {
        guide.setAttribute("visibility", "hidden");
        tip.setAttribute("visibility", "hidden");
      }

      root.addEventListener("pointermove", (event) => {
        const box = root.getBoundingClientRect();
        const x = ((event.clientX - box.left) / box.width) * W;
        // the nearest point; among points sharing a pixel, the latest (the newest recompute)
        const nearest = Math.min(...coords.map(([cx]) => Math.abs(cx - x)));
        let best = 0;
        coords.forEach(([cx], i) => { if (Math.abs(cx - x) <= nearest + 1) best = i; });
        select(best);
      });
      root.addEventListener("pointerleave", clear);
      root.addEventListener("blur", clear);
      root.addEventListener("focus", () => select(selected >= 0 ? selected : visible.length - 1));
      root.addEventListener("keydown", (event) => {
        const moves = { ArrowLeft: -1, ArrowRight: 1, Home: -Infinity, End: Infinity };
        if (!(event.key in moves)) return;
        event.preventDefault();
        const step = moves[event.key];
        select(Number.isFinite(step) ? selected + step : step < 0 ? 0 : visible.length - 1);
      });
      container.appendChild(root);
      const only = visible.length === 1 ? " Only one recompute so far: the trend fills in with every recompute." : "";
      // The newest few markers in words; a noisy alert rule must not bury the latest score.
      const told = shownMarkers.slice(-READOUT_MARKERS).map((m) => `${dateLabel(m.t)} ${m.label}`);
      const earlier = shownMarkers.length - told.length;
      const marked = told.length ? ` Marked: ${earlier ? `${earlier} earlier, then ` : ""}${told.join("; ")}.` : "";
      readout.textContent = `Latest: ${describe(visible[visible.length - 1])}.${only}${marked}`;
    }

    let width = container.clientWidth;
    new ResizeObserver(() => {
      if (Math.abs(container.clientWidth - width) > 8 && geometry) { width = container.clientWidth; draw(); }
    }).observe(container);

    return {
      /* Events to mark on the trend; drawn at the next setPoints/addPoint (or now, if drawn). */
      setMarkers(list) {
        markers = list.slice().sort((a, b) => a.t - b.t);
        if (geometry) draw();
      },
      setPoints(list, windowDays) {
        points = list.slice().sort((a, b) => a.t - b.t);
        days = windowDays;
        selected = -1;
        draw();
      },
      /* A new recompute: append it (or replace a point with the same time) and mark it. */
      addPoint(point) {
        points = points.filter((p) => p.t !== point.t);
        points.push(point);
        points.sort((a, b) => a.t - b.t);
        selected = -1;
        draw();
        const dots = container.querySelectorAll("circle.dot");
        const last = dots[dots.length - 1];
        if (last) last.classList.add("flash");
      },
      /* One more event as it happens (a live alert); the same event twice is drawn once. */
      addMarker(marker) {
        if (markers.some((m) => m.t === marker.t && m.kind === marker.kind && m.label === marker.label)) return;
        markers = markers.concat([marker]).sort((a, b) => a.t - b.t);
        if (geometry) draw();
      },
      lastValue() {
        return points.length ? points[points.length - 1].v : null;
      },
      redraw: draw,
    };
  }

  return { create };
})();
