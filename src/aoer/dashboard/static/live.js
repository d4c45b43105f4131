/* AOER dashboard: shared helpers — live stream with reconnect, ticking relative times,
   change highlights, number formats. Data only ever reaches the page through textContent. */
"use strict";

const AOER = (() => {
  const RECONNECT_MIN_MS = 500;
  const RECONNECT_MAX_MS = 10000;
  const FLASH_MS = 2400;

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function num(value) {
    if (value === null || value === undefined || value === "") return null;
    const n = Number(value);
    return Number.isFinite(n) ? n : null;
  }

  function fixed(value, digits) {
    const n = num(value);
    return n === null ? "—" : n.toFixed(digits);
  }

  const NO_DATA = "No data"; // grade and risk level of a summary computed from no signal

  /* A summary's score or risk as shown: "no data" rather than the stored 0.00 / 1.00. */
  function measure(summary, value) {
    return summary.grade === NO_DATA ? "no data" : fixed(value, 2);
  }

  function slug(text) {
    return String(text || "none").toLowerCase().replace(/[^a-z]+/g, "-");
  }

  function setBadge(node, kind, label) {
    // kind: "grade" | "risk"; keeps the text label so colour is never the only signal
    node.className = `badge ${label ? `${kind}-${slug(label)}` : "none"}`;
    node.textContent = label || (kind === "grade" ? "No grade" : "Unknown");
  }

  /* Relative times ("12 s ago", "in 3 h 5 min") that keep ticking. */
  function relative(date, now) {
    const seconds = Math.round((now - date) / 1000);
    const future = seconds < 0;
    let s = Math.abs(seconds);
    let text;
    if (s < 5) return future ? "in a moment" : "just now";
    if (s < 60) text = `${s} s`;
    else if (s < 3600) text = `${Math.floor(s / 60)} min`;
    else if (s < 86400) {
      const h = Math.floor(s / 3600);
      const m = Math.floor((s % 3600) / 60);
      text = m ? `${h} h ${m} min` : `${h} h`;
    } else {
      s = Math.floor(s / 86400);
      text = `${s} day${s === 1 ? "" : "s"}`;
    }
    return future ? `in ${text}` : `${text} ago`;
  }

  /* A moment in the browser's own zone, said with the zone ("Dec 7, 02:28 PM PST"): the
     console and the command line speak UTC, so a local time must say it is one. */
  function localTime(t) {
    return new Date(t).toLocaleString(undefined, {
      month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
    });
  }

  function tickTimes() {
    const now = Date.now();
    for (const node of document.querySelectorAll("time[data-relative]")) {
      const at = Date.parse(node.getAttribute("datetime"));
      if (!Number.isNaN(at)) node.textContent = relative(at, now);
    }
  }

  function setTime(node, iso) {
    node.setAttribute("datetime", iso);
    const at = new Date(iso);
    node.title = Number.isNaN(at.getTime()) ? "" : at.toLocaleString();
    node.textContent = relative(at.getTime(), Date.now());
  }

  /* Highlight a changed element: a colour flash plus a short text mark for screen and eye. */
  function flash(node, withMark) {
    if (!node) return;
    node.classList.remove("flash");
    void node.offsetWidth; // restart the animation
    node.classList.add("flash");
    if (withMark && !node.querySelector(".changed-mark")) {
      const mark = el("span", { class: "changed-mark" }, "updated");
      (node.querySelector("h2") || node).appendChild(mark);
      setTimeout(() => mark.remove(), FLASH_MS);
    }
    setTimeout(() => node.classList.remove("flash"), FLASH_MS);
  }

  /* Update a bound text node; returns true when the visible text changed. */
  function setText(node, text) {
    if (!node || node.textContent === text) return false;
    node.textContent = text;
    return true;
  }

  function banner(message) {
    const node = document.getElementById("banner");
    if (!node) return;
    node.textContent = message || "";
    node.hidden = !message;
  }

  function connState(state, text) {
    const node = document.getElementById("conn");
    if (!node) return;
    node.dataset.state = state;
    node.textContent = text;
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) {
      const error = new Error(`${response.status} ${response.statusText}`);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  async function postJSON(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    let payload = null;
    try { payload = await response.json(); } catch (_) { /* not JSON */ }
    if (!response.ok) {
      const error = new Error((payload && payload.error) || `${response.status} ${response.statusText}`);
      error.status = response.status;
      throw error;
    }
    return payload;
  }

  /* One Server-Sent Events subscription that always comes back. EventSource retries network
     errors itself but gives up on HTTP errors, so every error closes it and we reopen with
     backoff; after a reconnect `onResync` fetches what may have been missed meanwhile. */
  function stream(url, handlers) {
    let source = null;
    let delay = RECONNECT_MIN_MS;
    let everOpen = false;
    let failures = 0;
    let timer = null;

    function open() {
      timer = null;
      source = new EventSource(url, { withCredentials: true });
      source.addEventListener("open", () => {
        const wasDown = failures > 0;
        delay = RECONNECT_MIN_MS;
        failures = 0;
        connState("live", "Live");
        banner("");
        if (everOpen && wasDown && handlers.onResync) handlers.onResync();
        everOpen = true;
      });
      for (const [name, handler] of Object.entries(handlers.events || {})) {
        source.addEventListener(name, (event) => {
          let data;
          try { data = JSON.parse(event.data); } catch (_) { return; }
          handler(data);
        });
      }
      source.addEventListener("error", async () => {
        source.close();
        failures += 1;
        connState("reconnecting", "Reconnecting…");
        if (failures >= 2 && handlers.probe) {
          // EventSource hides HTTP statuses; a plain request tells an expired session apart.
          const status = await fetch(handlers.probe, { credentials: "same-origin" })
            .then((r) => r.status, () => 0);
          if (status === 401 || status === 403) {
            connState("offline", "Signed out");
            banner("Your session has ended. Open a new login link to keep watching live updates.");
            return;
          }
        }
        if (failures >= 3) banner("The dashboard cannot reach the API. Retrying automatically…");
        timer = setTimeout(open, delay);
        delay = Math.min(delay * 2, RECONNECT_MAX_MS);
      });
    }

    connState("connecting", "Connecting…");
    open();
    window.addEventListener("pagehide", () => { if (source) source.close(); if (timer) clearTimeout(timer); });
    return { close() { if (source) source.close(); } };
  }

  function readJSON(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  tickTimes();
  setInterval(tickTimes, 1000);

  return { el, num, fixed, measure, NO_DATA, slug, setBadge, relative, localTime, setTime, flash, setText, banner, connState, getJSON, postJSON, stream, readJSON, tickTimes };
})();
