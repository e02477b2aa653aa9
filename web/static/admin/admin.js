/* Chatsource admin: copy buttons, the traffic-type switch, amoCRM connect in a popup (with a
 * redirect fallback), confirmations, and the condition-group editor. Plain JS, no dependencies;
 * every page works without it (forms post normally, the rules are a JSON textarea). */
(function () {
  "use strict";

  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  /* -- copy buttons ------------------------------------------------------------------------ */
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var ta = document.createElement("textarea");
      ta.value = text; ta.setAttribute("readonly", ""); ta.style.position = "fixed"; ta.style.opacity = "0";
      document.body.appendChild(ta); ta.select();
      try { document.execCommand("copy") ? resolve() : reject(); } catch (e) { reject(e); }
      document.body.removeChild(ta);
    });
  }
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest && ev.target.closest(".cs-copy-btn");
    if (!btn) return;
    var box = btn.closest(".cs-copy");
    var field = box && box.querySelector("textarea, input");
    if (!field) return;
    var label = btn.getAttribute("data-label") || btn.textContent;
    btn.setAttribute("data-label", label);
    field.select && field.select();
    copyText(field.value).then(function () {
      btn.textContent = btn.getAttribute("data-copied") || "✓";
      btn.classList.add("cs-copied");
      setTimeout(function () { btn.textContent = label; btn.classList.remove("cs-copied"); }, 2000);
    }, function () { /* the text stays selected: Ctrl+C works */ });
  });

  /* -- after a refused save, show the first problem (the page may be long) ------------------- */
  var problem = document.querySelector("[data-autoscroll], .is-invalid, .invalid-feedback.d-block");
  if (problem && !window.location.hash) problem.scrollIntoView({block: "center"});

  /* -- Flask-Admin's list menus, without their inline onclick (CSP: script-src 'self') ------------ */
  document.addEventListener("click", function (ev) {
    var action = ev.target.closest && ev.target.closest("[data-cs-action]");
    if (action) {
      ev.preventDefault();
      if (window.modelActions) window.modelActions.execute(action.getAttribute("data-cs-action"));
      return;
    }
    // The filter menu's items only add a filter row (Flask-Admin's filters.js); never follow their "#".
    if (ev.target.closest && ev.target.closest(".field-filters a.filter")) ev.preventDefault();
  });

  /* -- confirmations --------------------------------------------------------------------------- */
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest && ev.target.closest("[data-confirm]");
    if (btn && !window.confirm(btn.getAttribute("data-confirm"))) ev.preventDefault();
  });

  /* -- traffic type: show the pickers of the chosen type; the others keep their values ------- */
  function applyTraffic() {
    var checked = document.querySelector("input[name=traffic_type]:checked");
    if (!checked) return;
    $all("[data-traffic]").forEach(function (el) {
      el.classList.toggle("d-none", el.getAttribute("data-traffic") !== checked.value);
    });
  }
  $all("input[name=traffic_type]").forEach(function (r) { r.addEventListener("change", applyTraffic); });
  applyTraffic();

  /* -- messenger table: Kommo's international channels folded until asked for -------------- */
  $all(".cs-more-toggle-row").forEach(function (toggleRow) {
    var rows = $all("tr.cs-more-row");
    if (!rows.length) return;
    rows.forEach(function (r) { r.classList.add("d-none"); });
    toggleRow.classList.remove("d-none");
    toggleRow.querySelector("button").addEventListener("click", function () {
      rows.forEach(function (r) { r.classList.remove("d-none"); });
      toggleRow.classList.add("d-none");
    });
  });

  /* -- highlight YOURDOMAIN left in the amoCRM addresses -------------------------------------- */
  $all("input.cs-yourdomain").forEach(function (input) {
    function mark() { input.classList.toggle("cs-placeholder-left", /YOURDOMAIN/i.test(input.value)); }
    input.addEventListener("input", mark); mark();
  });

  /* -- amoCRM connect: popup first, this window when popups are blocked ----------------------- */
  var connecting = null;
  /* A message belongs to the attempt that produced it: each press clears the last one. */
  function connectBox(form) {
    return (form && form.querySelector("#connect-error")) || document.getElementById("connect-error");
  }
  function clearConnectError(form) {
    var box = connectBox(form);
    if (box) { box.textContent = ""; box.classList.add("d-none"); }
    $all("#step-1 .is-invalid").forEach(function (input) { input.classList.remove("is-invalid"); });
  }
  function showConnectError(form, message, fields) {
    (fields || []).forEach(function (name) {
      var input = document.getElementById(name);
      if (input) input.classList.add("is-invalid");
    });
    var box = connectBox(form);
    if (!box) { window.alert(message); return; }
    box.textContent = message; box.classList.remove("d-none");
    box.scrollIntoView({block: "center", behavior: "smooth"});
  }
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest && ev.target.closest("[data-connect]");
    if (!btn || !btn.form || !window.fetch || !window.FormData) return;
    var popup = window.open("", "amocrm_connect", "width=760,height=780,menubar=no,toolbar=no");
    if (!popup) return; // blocked: the form posts and amoCRM opens in this window
    ev.preventDefault();
    clearConnectError(btn.form);
    try { popup.document.title = "amoCRM…"; popup.document.body.innerHTML = "<p style='font:16px sans-serif;padding:24px'>amoCRM…</p>"; } catch (e) {}
    var form = btn.form, url = btn.formAction || form.action;
    fetch(url, {method: "POST", body: new FormData(form), credentials: "same-origin",
                headers: {"X-Chatsource-Connect": "popup", "Accept": "application/json"}})
      .then(function (r) { return r.json().then(function (data) { return {ok: r.ok, data: data}; }); })
      .then(function (res) {
        if (!res.ok) {
          popup.close();
          showConnectError(form, res.data.error || "Error", res.data.fields);
          return;
        }
        connecting = {returnTo: res.data.return_to};
        popup.location.href = res.data.authorize_url;
        popup.focus();
      })
      .catch(function () { popup.close(); form.submit(); });
  });
  window.addEventListener("message", function (ev) {
    if (ev.origin !== window.location.origin || !ev.data || ev.data.chatsource !== "amocrm-connect") return;
    var target = ev.data.return_to || (connecting && connecting.returnTo) || window.location.pathname;
    window.location.assign(target);
  });

  /* -- condition groups (OR) of conditions (AND) ---------------------------------------------- */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  function selectOf(options, value, cls) {
    var s = el("select", {"class": "form-control form-control-sm " + (cls || "")});
    options.forEach(function (o) {
      var opt = el("option", {value: o[0], text: o[1]});
      if (o[0] === value) opt.selected = true;
      s.appendChild(opt);
    });
    return s;
  }
  function ConditionsEditor(root) {
    var cfg = JSON.parse(root.getAttribute("data-config"));
    var textarea = root.querySelector("textarea");
    var groups;
    try { groups = JSON.parse(textarea.value || "[]"); } catch (e) { return; } // leave the raw JSON to fix by hand
    if (!Array.isArray(groups)) return;
    textarea.classList.add("d-none");
    var fallback = root.querySelector(".cs-conditions-fallback");
    if (fallback) fallback.classList.add("d-none");
    var box = el("div", {"class": "cs-cond-editor"});
    root.insertBefore(box, textarea);
    var errorPath = (root.getAttribute("data-error-path") || "").split(",");  // [group, condition, field]

    function sync() { textarea.value = JSON.stringify(groups); }
    function render() {
      box.innerHTML = "";
      if (!groups.length) box.appendChild(el("p", {"class": "small text-muted mb-2", text: cfg.text.empty}));
      groups.forEach(function (group, gi) {
        if (gi > 0) box.appendChild(el("div", {"class": "cs-or", text: cfg.text.or}));
        var card = el("div", {"class": "cs-cond-group", "data-group": String(gi)});
        card.appendChild(el("div", {"class": "cs-cond-title small text-muted", text: cfg.text.group.replace("{n}", gi + 1)}));
        group.forEach(function (cond, ci) {
          var param = selectOf(cfg.params, cond.param || cfg.params[0][0], "cs-param");
          var op = selectOf(cfg.ops, cond.op || "eq", "cs-op");
          var value = el("input", {"class": "form-control form-control-sm cs-value", placeholder: cfg.text.value, maxlength: "2000"});
          value.value = cond.value || "";
          var exId = "cs-ex-" + Math.random().toString(36).slice(2);
          var exclude = el("input", {type: "checkbox", "class": "custom-control-input cs-exclude", id: exId});
          exclude.checked = !!cond.exclude;
          var remove = el("button", {type: "button", "class": "btn btn-sm btn-link text-danger cs-remove", title: cfg.text.remove, text: "×"});
          param.addEventListener("change", function () { cond.param = param.value; sync(); });
          op.addEventListener("change", function () { cond.op = op.value; sync(); });
          value.addEventListener("input", function () { cond.value = value.value; sync(); });
          exclude.addEventListener("change", function () { cond.exclude = exclude.checked; sync(); });
          remove.addEventListener("click", function () {
            group.splice(ci, 1);
            if (!group.length) groups.splice(gi, 1);
            sync(); render();
          });
          cond.param = param.value; cond.op = op.value; cond.value = value.value; cond.exclude = exclude.checked;
          if (errorPath[0] === String(gi) && errorPath[1] === String(ci)) {
            ({param: param, op: op, value: value})[errorPath[2] || "value"].classList.add("is-invalid");
          }
          card.appendChild(el("div", {"class": "cs-cond-row form-row align-items-center"}, [
            el("div", {"class": "col-md-3"}, [param]),
            el("div", {"class": "col-md-3"}, [op]),
            el("div", {"class": "col-md-4"}, [value]),
            el("div", {"class": "col-md-2 d-flex align-items-center"}, [
              el("div", {"class": "custom-control custom-checkbox"}, [exclude, el("label", {"class": "custom-control-label small", "for": exId, text: cfg.text.exclude})]),
              remove,
            ]),
          ]));
        });
        var add = el("button", {type: "button", "class": "btn btn-sm btn-link cs-add-cond", text: cfg.text.addCondition});
        add.addEventListener("click", function () { group.push({param: cfg.params[0][0], op: "eq", value: "", exclude: false}); sync(); render(); });
        card.appendChild(add);
        box.appendChild(card);
      });
      var addGroup = el("button", {type: "button", "class": "btn btn-sm btn-outline-secondary cs-add-group", text: cfg.text.addGroup});
      addGroup.addEventListener("click", function () { groups.push([{param: cfg.params[0][0], op: "eq", value: "", exclude: false}]); sync(); render(); });
      box.appendChild(addGroup);
      sync();
    }
    render();
  }
  $all(".cs-conditions").forEach(function (root) { ConditionsEditor(root); });
})();
