/* AOER dashboard: alerts — the live feed on the dealership and fleet pages, and the page that
   manages rules and endpoints. Data reaches the page only through textContent. */
"use strict";

const AlertFeed = (() => {
  const MAX_ITEMS = 15;
  const TITLES = {
    risk_level_up: "Visibility risk rose",
    grade_down: "Grade fell",
    score_drop: "Score dropped",
    stale_data: "No recent data",
    job_failed: "Recompute failed",
  };

  function title(kind) { return TITLES[kind] || kind; }

  function days(n) { return n === 1 ? "1 day" : `${n} days`; }

  /* A failed recompute's error as a feed line: its first sentence, without PostgreSQL's
     diagnostics "(SQLSTATE …; CONTEXT: PL/pgSQL function … line 3)" that a dealership cannot
     act on (the job's page keeps them whole, and so does the line's tooltip). */
  function failure(error) {
    if (!error) return "the job ran out of attempts";
    const cut = error.indexOf(" (SQLSTATE ");
    return cut > 0 ? error.slice(0, cut) : error;
  }

  function summary(alert) {
    const d = alert.data || {};
    const p = d.previous || {};
    const c = d.current || {};
    switch (alert.kind) {
      case "risk_level_up":
        return `risk ${AOER.fixed(p.visibilityRisk, 2)} (${p.riskLevel}) → ${AOER.fixed(c.visibilityRisk, 2)} (${c.riskLevel})`;
      case "grade_down":
        return `score ${AOER.fixed(p.aoerScore, 2)} (${p.grade}) → ${AOER.fixed(c.aoerScore, 2)} (${c.grade})`;
      case "score_drop": {
        const ref = d.reference || {};
        return `score ${AOER.fixed(c.aoerScore, 2)}, ${AOER.fixed(d.drop, 2)} below ${days(ref.days)} ago`;
      }
      case "stale_data":
        return c.daysSinceLastData == null ? "no data in the score's window"
          : `${days(c.daysSinceLastData)} since the last data`;
      case "job_failed":
        return failure(d.job && d.job.error);
      default:
        return "";
    }
  }

  function deliveryText(deliveries) {
    if (!deliveries || !deliveries.length) return "no channel";
    const counts = {};
    for (const d of deliveries) counts[d.status] = (counts[d.status] || 0) + 1;
    return Object.entries(counts).map(([status, n]) => `${n} ${status}`).join(", ");
  }

  /* A feed in `list` (an <ol>), with `empty` shown while it has no items. */
  function create(list, empty, options) {
    const shown = new Set();
    const withTenant = Boolean(options && options.withTenant);

    function item(alert) {
      const li = AOER.el("li", { class: `alert alert-${AOER.slug(alert.kind)}`, "data-alert-id": alert.id });
      const time = AOER.el("time", { "data-relative": "" });
      AOER.setTime(time, alert.createdAt);
      const head = AOER.el("b", {}, title(alert.kind));
      li.append(time, head);
      if (withTenant) {
        const link = AOER.el("a", { href: `/dashboard/tenant/${encodeURIComponent(alert.tenantId)}` },
          (alert.data && alert.data.tenantName) || alert.tenantId);
        li.append(link);
      }
      const full = alert.kind === "job_failed" && alert.data && alert.data.job && alert.data.job.error;
      li.append(AOER.el("span", full ? { class: "msg", title: full } : { class: "msg" }, summary(alert)));
      li.append(AOER.el("span", { class: "tag", title: "deliveries" }, deliveryText(alert.deliveries)));
      return li;
    }

    function add(alert, highlight) {
      if (!alert || shown.has(alert.id)) return;
      shown.add(alert.id);
      const li = item(alert);
      list.prepend(li);
      while (list.children.length > MAX_ITEMS) list.lastElementChild.remove();
      empty.hidden = true;
      if (highlight) AOER.flash(li, false);
    }

    function replace(alerts) {
      list.replaceChildren();
      shown.clear();
      for (const alert of alerts.slice().reverse()) add(alert, false);
      empty.hidden = alerts.length > 0;
    }

    return { add, replace };
  }

  return { create, title, summary };
})();

/* The management page: forms post JSON with the session cookie (same-origin only: the API
   refuses a state change with the cookie from any other page). */
(() => {
  const main = document.getElementById("main");
  if (!main || main.dataset.page !== "alerts") return;

  async function send(method, url, body) {
    const response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let payload = null;
    try { payload = await response.json(); } catch (_) { /* 204 */ }
    if (!response.ok) throw new Error((payload && payload.error) || `${response.status} ${response.statusText}`);
    return payload;
  }

  function say(form, text, state) {
    const out = form.querySelector(".form-status");
    out.textContent = text;
    if (state) out.dataset.state = state; else delete out.dataset.state;
  }

  const endpointForm = document.getElementById("endpoint-form");
  if (endpointForm) {
    endpointForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(endpointForm);
      const body = { url: String(data.get("url") || "").trim() };
      if (data.get("secret")) body.secret = String(data.get("secret")).trim();
      if (data.get("orgId")) body.orgId = String(data.get("orgId"));
      try {
        const created = await send("POST", "/api/alerts/endpoints", body);
        // Shown until its reader says it is copied (no timer: nobody copies on a deadline);
        // the reload then lists the new endpoint.
        const secret = document.getElementById("new-secret");
        secret.hidden = false;
        const field = secret.querySelector("input");
        field.value = created.secret;
        field.addEventListener("focus", () => field.select());
        field.focus();
        say(endpointForm, "Endpoint added.", "ok");
        document.getElementById("secret-copied").addEventListener("click", () => window.location.reload());
      } catch (error) { say(endpointForm, error.message, "error"); }
    });
  }

  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  /* The rule's target as typed: an id as it is, or a name from the list (people type the
     dealership's name, not its id), matched ignoring case and surrounding blanks. */
  function resolveTarget(typed, scope) {
    const text = typed.trim();
    const what = scope === "org" ? "organisation" : "dealership";
    if (!text) return { error: `Choose the ${what} to watch.` };
    if (UUID.test(text)) return { id: text };
    const lower = text.toLowerCase();
    // The list shows organisations as "organisation <name>": either is taken.
    const wanted = scope === "org" ? lower.replace(/^organisation\s+/, "") : lower;
    const found = [...document.querySelectorAll(`#targets option[data-kind='${scope}']`)]
      .filter((o) => o.dataset.name.trim().toLowerCase() === wanted);
    if (found.length === 1) return { id: found[0].value };
    return { error: `No ${what} named “${text}” here: pick one from the list (by its name or id).` };
  }

  const ruleForm = document.getElementById("rule-form");
  if (ruleForm) {
    const kind = ruleForm.querySelector("[name=kind]");
    const syncFields = () => {
      ruleForm.querySelector(".when-points").hidden = kind.value !== "score_drop";
      ruleForm.querySelector(".when-days").hidden = !["score_drop", "stale_data"].includes(kind.value);
    };
    kind.addEventListener("change", syncFields);
    syncFields();
    ruleForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(ruleForm);
      const body = { kind: String(data.get("kind")) };
      const scope = data.get("scope") === "org" ? "org" : "tenant";
      const target = resolveTarget(String(data.get("target") || ""), scope);
      if (target.error) { say(ruleForm, target.error, "error"); return; }
      if (scope === "org") body.orgId = target.id; else body.tenantId = target.id;
      if (body.kind === "score_drop" && data.get("points") !== "") body.points = Number(data.get("points"));
      if (["score_drop", "stale_data"].includes(body.kind) && data.get("days") !== "") body.days = Number(data.get("days"));
      body.endpointIds = data.getAll("endpointIds").map(String);
      body.emails = String(data.get("emails") || "").split(/[\s,;]+/).filter(Boolean);
      try {
        await send("POST", "/api/alerts/rules", body);
        say(ruleForm, "Rule added.", "ok");
        window.location.reload();
      } catch (error) { say(ruleForm, error.message, "error"); }
    });
  }

  for (const button of document.querySelectorAll("button[data-delete]")) {
    button.addEventListener("click", async () => {
      if (!window.confirm(button.dataset.confirm)) return;
      try {
        await send("DELETE", button.dataset.delete);
        button.closest("tr").remove();
      } catch (error) { window.alert(error.message); }
    });
  }

  for (const button of document.querySelectorAll("button[data-test]")) {
    button.addEventListener("click", async () => {
      const out = button.parentElement.querySelector(".ping-status");
      out.textContent = "Sending a signed ping…";
      try {
        const result = await send("POST", button.dataset.test);
        out.textContent = result.delivered
          ? `Delivered (HTTP ${result.statusCode})`
          : `Not delivered: ${result.error}`;
        out.dataset.state = result.delivered ? "ok" : "error";
      } catch (error) { out.textContent = error.message; out.dataset.state = "error"; }
    });
  }
})();
