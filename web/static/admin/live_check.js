/* «Проверить на тестовом обращении» on the integration page: while the check waits, its stages are
 * read again every two seconds; the server sends them rendered (GET …/live-check/<id>). */
(function () {
  "use strict";
  var holder = document.querySelector("[data-live-check-holder]");
  if (!holder) return;
  var panel = function () { return holder.querySelector("[data-testid=live-check]"); };
  var poll = function () {
    var current = panel();
    if (!current || current.getAttribute("data-finished") === "true") return;
    fetch(current.getAttribute("data-poll-url"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) { if (body && body.html) holder.innerHTML = body.html; })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { setTimeout(poll, 2000); });
  };
  setTimeout(poll, 2000);
}());
