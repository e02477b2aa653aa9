/* The integration page's backfills («Загрузить пропущенные беседы за период»): while one runs, its
 * progress is read again every two seconds (the same dicts as GET /api/v1/backfills/{id}). */
(function () {
  "use strict";
  var table = document.querySelector("[data-backfill-runs]");
  if (!table) return;
  var url = table.getAttribute("data-progress-url");
  var poll = function () {
    if (!table.querySelector("tr[data-run][data-finished=false]")) return;
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body) return;
        body.data.forEach(function (run) {
          var tr = table.querySelector("tr[data-run='" + run.id + "']");
          if (!tr) return;
          var cell = tr.querySelector("[data-field=recovered]");
          if (cell) cell.textContent = run.recovered;
          var pct = Math.round(run.progress * 100);
          var bar = tr.querySelector(".progress-bar");
          if (bar) {
            bar.style.width = pct + "%"; bar.setAttribute("aria-valuenow", pct); bar.textContent = pct + "%";
            bar.classList.toggle("progress-bar-animated", !run.finished);
            bar.classList.toggle("progress-bar-striped", !run.finished);
            bar.classList.toggle("bg-danger", run.status === "failed");
            bar.classList.toggle("bg-success", run.status === "done");
          }
          var state = tr.querySelector("[data-field=state]");
          if (state && run.finished) {
            state.textContent = state.getAttribute(run.status === "failed" ? "data-failed-text" : "data-done-text");
          }
          tr.setAttribute("data-finished", run.finished ? "true" : "false");
        });
      })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { setTimeout(poll, 2000); });
  };
  setTimeout(poll, 1500);
}());
