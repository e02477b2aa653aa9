/* Raw data's «Период повторности»: while the flags are being recomputed after a window change, the
 * progress line is read again every two seconds (GET /admin/requests/repeat-window/progress). */
(function () {
  "use strict";
  var form = document.querySelector("[data-testid=repeat-window]");
  var line = document.querySelector("[data-testid=repeat-progress]");
  if (!form || !line || form.getAttribute("data-running") !== "true") return;
  var url = form.getAttribute("data-progress-url");
  var fill = function (template, run) {
    return template.replace("{done}", run.contacts_done).replace("{total}", run.contacts_total)
      .replace("{days}", run.window_days).replace("{changed}", run.changed);
  };
  var poll = function () {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        var run = body && body.data;
        if (!run) return true;
        line.setAttribute("data-status", run.status);
        var running = run.status === "queued" || run.status === "running";
        var key = running ? "data-running-text" : (run.status === "failed" ? "data-failed-text" : "data-done-text");
        line.textContent = fill(line.getAttribute(key), run);
        return running;
      })
      .catch(function () { return true; /* the next tick tries again */ })
      .then(function (again) { if (again) setTimeout(poll, 2000); });
  };
  setTimeout(poll, 1000);
}());
