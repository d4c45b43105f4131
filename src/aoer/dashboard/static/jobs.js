/* AOER dashboard: a job page follows its job while it waits or runs, and reloads once it
   finishes (the detail and attempts are rendered by the server); the console's buttons act
   once, and those that stop work (pause the queue, cancel a job) ask first. */
"use strict";

(() => {
  // One click, one action: a retry or cancel form's buttons are disabled once it is sent
  // (enabled again when the browser shows this page from its history).
  const forms = document.querySelectorAll('form[method="post"]');
  const enable = (on) => forms.forEach((form) => {
    form.querySelectorAll("button").forEach((button) => { button.disabled = !on; });
  });
  forms.forEach((form) => form.addEventListener("submit", (event) => {
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    setTimeout(() => enable(false), 0);  // after the form's data is taken
  }));
  window.addEventListener("pageshow", (event) => { if (event.persisted) enable(true); });

  const main = document.querySelector('main[data-page="job"]');
  if (!main) return;
  const FOLLOW = new Set(["queued", "processing"]);
  const EVERY_MS = 1000;
  const status = document.getElementById("job-status");
  const live = document.getElementById("job-live");
  let shown = main.dataset.jobStatus;
  if (!FOLLOW.has(shown)) return;
  live.textContent = "Following this job…";

  async function poll() {
    try {
      const response = await fetch(`/api/jobs/${encodeURIComponent(main.dataset.jobId)}`, {
        credentials: "same-origin", headers: { Accept: "application/json" },
      });
      if (response.ok) {
        const job = await response.json();
        if (job.status !== shown) {
          shown = job.status;
          status.textContent = job.status;
          status.className = `status status-${job.status}`;
          if (!FOLLOW.has(job.status)) { window.location.reload(); return; }
        }
      }
    } catch (_) { /* the next poll retries */ }
    setTimeout(poll, EVERY_MS);
  }
  setTimeout(poll, EVERY_MS);
})();
