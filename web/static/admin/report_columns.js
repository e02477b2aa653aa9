/* Raw data: hide and order the table's columns (issue 15 §14), kept per user on the server: the page
 * carries the user's choice (data-columns-choice) and each change is posted back (data-columns-url,
 * with the page's CSRF token), so another browser shows the same columns. The date column stays first. */
(function () {
  "use strict";
  var box = document.querySelector("[data-columns-choice]");
  var table = document.querySelector("[data-testid=report-table]");
  if (!box || !table) return;
  var saveUrl = box.getAttribute("data-columns-url");
  var tokenMeta = document.querySelector("meta[name=csrf-token]");
  var list = box.querySelector(".cs-columns-list");
  var headers = Array.prototype.slice.call(table.querySelectorAll("thead th[data-column]"));
  var fixed = headers[0].getAttribute("data-column");
  var usual = headers.slice(1).map(function (th) { return th.getAttribute("data-column"); });
  var labels = {};
  headers.forEach(function (th) { labels[th.getAttribute("data-column")] = th.textContent.replace(/[▲▼]/g, "").trim(); });

  function load() {
    var saved = {};
    try { saved = JSON.parse(box.getAttribute("data-columns-choice") || "{}") || {}; } catch (e) { saved = {}; }
    var order = (saved.order || []).filter(function (k) { return usual.indexOf(k) !== -1; });
    usual.forEach(function (k) { if (order.indexOf(k) === -1) order.push(k); });  // a new column shows
    return {order: order, hidden: (saved.hidden || []).filter(function (k) { return usual.indexOf(k) !== -1; })};
  }
  var pending = Promise.resolve(), inflight = 0;
  function save(state) {
    var body = JSON.stringify({order: state.order, hidden: state.hidden});
    inflight += 1;
    box.setAttribute("data-saving", "true");
    // One request after another, so the last choice is the one kept.
    pending = pending.then(function () {
      return fetch(saveUrl, {method: "POST", credentials: "same-origin", body: body,
                             headers: {"Content-Type": "application/json", "Accept": "application/json",
                                       "X-CSRFToken": tokenMeta ? tokenMeta.getAttribute("content") : ""}})
        .then(function (r) { box.setAttribute("data-saved", r.ok ? "true" : "false"); })
        .catch(function () { box.setAttribute("data-saved", "false"); /* this page keeps it */ });
    }).then(function () { inflight -= 1; if (!inflight) box.removeAttribute("data-saving"); });
  }
  function apply(state) {
    Array.prototype.slice.call(table.querySelectorAll("tr")).forEach(function (tr) {
      var cells = {};
      Array.prototype.slice.call(tr.children).forEach(function (cell) { cells[cell.getAttribute("data-column")] = cell; });
      [fixed].concat(state.order).forEach(function (k) {
        var cell = cells[k];
        if (!cell) return;
        tr.appendChild(cell);
        cell.classList.toggle("d-none", state.hidden.indexOf(k) !== -1);
      });
    });
  }
  function draw(state) {
    list.innerHTML = "";
    state.order.forEach(function (k, i) {
      var li = document.createElement("li");
      li.className = "d-flex align-items-center";
      li.setAttribute("data-column-choice", k);
      var check = document.createElement("input");
      check.type = "checkbox"; check.checked = state.hidden.indexOf(k) === -1; check.className = "mr-1"; check.id = "cs-col-" + k;
      check.addEventListener("change", function () {
        state.hidden = state.hidden.filter(function (h) { return h !== k; });
        if (!check.checked) state.hidden.push(k);
        commit(state);
      });
      var label = document.createElement("label");
      label.htmlFor = check.id; label.className = "mb-0 mr-2"; label.textContent = labels[k];
      li.appendChild(check); li.appendChild(label);
      [["↑", -1, list.getAttribute("data-up")], ["↓", 1, list.getAttribute("data-down")]].forEach(function (m) {
        var b = document.createElement("button");
        b.type = "button"; b.className = "btn btn-link btn-sm p-0 px-1"; b.textContent = m[0]; b.title = m[2];
        b.setAttribute("data-move", m[1] < 0 ? "up" : "down");
        b.disabled = i + m[1] < 0 || i + m[1] >= state.order.length;
        b.addEventListener("click", function () {
          var j = i + m[1];
          state.order[i] = state.order[j]; state.order[j] = k;
          commit(state);
        });
        li.appendChild(b);
      });
      list.appendChild(li);
    });
  }
  function commit(state) { save(state); apply(state); draw(state); }
  box.querySelector(".cs-columns-reset").addEventListener("click", function () {
    commit({order: usual.slice(), hidden: []});
  });
  var state = load();
  apply(state);
  draw(state);
})();
