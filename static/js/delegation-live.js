// Live progress of one delegation, fleet or runbook run: fetch the status fragment every second
// and swap each live region (progress, cloud calls, history) in by id. No framework, nothing
// from a CDN. Stops once the progress element (`data-live-id`, default "delegation-live")
// says it reached a final state.
(function () {
  "use strict";
  var script = document.currentScript;
  var url = script && script.getAttribute("data-poll-url");
  var liveId = (script && script.getAttribute("data-live-id")) || "delegation-live";
  var INTERVAL_MS = 1000;
  if (!url) return;

  function progress() { return document.getElementById(liveId); }

  function applyState(root) {
    // Keep the page's forms in step with the live status: hidden version fields and which
    // action panels make sense now.
    document.querySelectorAll("input[name=version]").forEach(function (input) {
      if (!input.closest("[data-live-region]")) input.value = root.dataset.version;
    });
    document.querySelectorAll("[data-live-toggle]").forEach(function (el) {
      el.hidden = root.dataset[el.dataset.liveToggle] !== "true";
    });
  }

  function swap(html) {
    var holder = document.createElement("div");
    holder.innerHTML = html;
    holder.querySelectorAll("[data-live-region][id]").forEach(function (fresh) {
      var old = document.getElementById(fresh.id);
      if (old && old.outerHTML !== fresh.outerHTML) old.replaceWith(fresh);
    });
  }

  function schedule() { window.setTimeout(poll, INTERVAL_MS); }

  function poll() {
    var current = progress();
    if (!current || current.dataset.final === "true") return;
    if (document.hidden) { schedule(); return; }
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.text();
      })
      .then(function (html) {
        swap(html);
        applyState(progress());
      })
      .catch(function () { /* a missed beat; try again */ })
      .then(schedule);
  }

  if (progress()) { applyState(progress()); schedule(); }
})();
