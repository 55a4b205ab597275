// Live progress of one delegation: fetch the status fragment every second and swap it in.
// No framework and nothing from a CDN. Stops once the delegation reaches a final state.
(function () {
  "use strict";
  var script = document.currentScript;
  var url = script && script.getAttribute("data-poll-url");
  var INTERVAL_MS = 1000;
  if (!url) return;

  function live() { return document.getElementById("delegation-live"); }

  function applyState(root) {
    // Keep the page's forms in step with the live status: hidden version fields and which
    // action panels make sense now.
    document.querySelectorAll("input[name=version]").forEach(function (input) {
      if (!root.contains(input)) input.value = root.dataset.version;
    });
    document.querySelectorAll("[data-live-toggle]").forEach(function (el) {
      el.hidden = root.dataset[el.dataset.liveToggle] !== "true";
    });
  }

  function schedule() { window.setTimeout(poll, INTERVAL_MS); }

  function poll() {
    var current = live();
    if (!current || current.dataset.final === "true") return;
    if (document.hidden) { schedule(); return; }
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.text();
      })
      .then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("#delegation-live");
        var old = live();
        if (fresh && old && (fresh.dataset.version !== old.dataset.version || fresh.innerHTML !== old.innerHTML)) {
          old.replaceWith(fresh);
          applyState(fresh);
        }
      })
      .catch(function () { /* a missed beat; try again */ })
      .then(schedule);
  }

  if (live()) { applyState(live()); schedule(); }
})();
