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
    return new Date(t).toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  /* container: the element to draw into; readout: a live region for the selected point. */
  function create(container, readout) {
    let points = [];
    let marks = []; // [{t, label}]: events drawn on the time axis (alerts)
    let days = 30;
    let selected = -1;
    let geometry = null;

    function xFor(t) {
      const { start, end } = geometry;
      const span = Math.max(end - start, 1);
      return PAD.left + ((t - start) / span) * (W - PAD.left - PAD.right);
    }
    function yFor(v) {
      return PAD.top + (1 - v / 100) * (H - PAD.top - PAD.bottom);
    }

    function describe(p) {
      return `${stamp(p.t)}: score ${p.v.toFixed(2)} (${grade(p.v)})`;
    }

    function draw() {
      container.replaceChildren();
      W = Math.max(Math.round(container.clientWidth) || 640, MIN_WIDTH);
      H = W < 480 ? 200 : 240;
      const now = Date.now();
      geometry = { start: now - days * DAY_MS, end: now };
      const visible = points.filter((p) => p.t >= geometry.start - DAY_MS / 24);
      const root = svg("svg", {
        viewBox: `0 0 ${W} ${H}`,
        role: "img",
        tabindex: visible.length ? "0" : "-1",
        "aria-label": visible.length
          ? `Score trend over ${days} days, ${visible.length} recomputes; latest ${visible[visible.length - 1].v.toFixed(2)}. Use the arrow keys to read each point.`
          : `Score trend over ${days} days: no recomputes yet`,
      });
      // Grid: 0 and 100, and the grade boundaries labelled so the bands carry words.
      root.appendChild(svg("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: yFor(0), y2: yFor(0) }));
      root.appendChild(svg("text", { class: "label", x: PAD.left - 6, y: yFor(0) + 4, "text-anchor": "end" }, "0"));
      root.appendChild(svg("text", { class: "label", x: PAD.left - 6, y: yFor(100) + 4, "text-anchor": "end" }, "100"));
      for (const [value, name] of BANDS) {
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

      // Marks (alerts): a dashed line at the moment, a flag at the top naming it on hover.
      const shownMarks = marks.filter((m) => m.t >= geometry.start && m.t <= geometry.end + DAY_MS);
      for (const m of shownMarks) {
        const x = Math.min(xFor(m.t), W - PAD.right);
        const group = svg("g", { class: `mark mark-${m.kind || "alert"}` });
        group.appendChild(svg("title", {}, `${stamp(m.t)}: ${m.label}`));
        group.appendChild(svg("line", { x1: x, x2: x, y1: PAD.top, y2: yFor(0) }));
        group.appendChild(svg("path", { d: `M${x.toFixed(1)},${PAD.top} l-5,-9 h10 z` }));
        root.appendChild(group);
      }
      if (shownMarks.length) {
        root.setAttribute("aria-label", `${root.getAttribute("aria-label")} ${shownMarks.length} alert${shownMarks.length === 1 ? "" : "s"} marked.`);
      }

      if (!visible.length) {
        root.appendChild(svg("text", { class: "empty", x: W / 2, y: H / 2, "text-anchor": "middle" },
          `No recomputes in the last ${days} days yet`));
        container.appendChild(root);
        readout.textContent = "";
        return;
      }

      const coords = visible.map((p) => [xFor(Math.max(p.t, geometry.start)), yFor(p.v)]);
      const line = coords.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
      if (coords.length > 1) {
        const area = `${line} L${coords[coords.length - 1][0].toFixed(1)},${yFor(0)} L${coords[0][0].toFixed(1)},${yFor(0)} Z`;
        root.appendChild(svg("path", { class: "area", d: area }));
        root.appendChild(svg("path", { class: "line", d: line }));
      }
      const dots = svg("g");
      const showAll = coords.length <= 120;
      coords.forEach(([x, y], i) => {
        const last = i === coords.length - 1;
        if (showAll || last) {
          dots.appendChild(svg("circle", { class: last ? "dot last" : "dot", cx: x, cy: y, r: last ? 4.5 : 3, "data-index": i }));
        }
      });
      root.appendChild(dots);

      const guide = svg("line", { class: "guide", y1: PAD.top, y2: yFor(0), visibility: "hidden" });
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
        tipText.textContent = `${stamp(visible[selected].t)} · ${visible[selected].v.toFixed(2)}`;
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
      readout.textContent = `Latest: ${describe(visible[visible.length - 1])}.${only}`;
    }

    let width = container.clientWidth;
    new ResizeObserver(() => {
      if (Math.abs(container.clientWidth - width) > 8 && geometry) { width = container.clientWidth; draw(); }
    }).observe(container);

    return {
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
      /* Alerts on the time axis: replace all, or add one as it is raised. */
      setMarks(list) {
        marks = list.slice();
        if (geometry) draw();
      },
      addMark(mark) {
        marks.push(mark);
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
