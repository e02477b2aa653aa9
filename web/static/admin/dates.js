/* Date fields in the page's language, not the browser's (issue 15 §11). A native <input type=date>
 * shows the browser locale's format (mm/dd/yyyy for an English browser in the Russian admin), so each
 * one becomes a text field in the page's format (ru: 24.11.2026, en: 2026-11-24) with a calendar of
 * the page's month and weekday names. The form still posts ISO dates (2026-11-24): the value is
 * rewritten on submit. Without JavaScript the native field stays. Plain JS, no dependencies. */
(function () {
  "use strict";
  var meta = document.querySelector("meta[name=cs-lang]");  // the page's language (cs_base.html)
  var lang = ((meta && meta.getAttribute("content")) || document.documentElement.getAttribute("lang") || "ru").slice(0, 2);
  var ru = lang === "ru";
  var pad = function (n) { return (n < 10 ? "0" : "") + n; };
  function iso(d) { return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()); }
  function shown(d) { return ru ? pad(d.getDate()) + "." + pad(d.getMonth() + 1) + "." + d.getFullYear() : iso(d); }
  function parse(text) {
    var m = /^\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*$/.exec(text), y, mo, da;
    if (m) { y = +m[1]; mo = +m[2]; da = +m[3]; }
    else if ((m = /^\s*(\d{1,2})[.\/](\d{1,2})[.\/](\d{4})\s*$/.exec(text))) { y = +m[3]; mo = +m[2]; da = +m[1]; }
    else return null;
    var d = new Date(y, mo - 1, da);
    return d.getFullYear() === y && d.getMonth() === mo - 1 && d.getDate() === da ? d : null;
  }
  var monthName = new Intl.DateTimeFormat(lang, {month: "long", year: "numeric"});
  var dayName = new Intl.DateTimeFormat(lang, {weekday: "short"});
  var firstDay = ru ? 1 : 0;  // Monday first in Russia

  function calendar(input) {
    var box = document.createElement("div");
    box.className = "cs-cal d-none";
    box.setAttribute("data-testid", "calendar");
    input.parentNode.insertBefore(box, input.nextSibling);
    var month;
    function draw() {
      box.innerHTML = "";
      var head = document.createElement("div");
      head.className = "cs-cal-head";
      var prev = document.createElement("button"), next = document.createElement("button"), title = document.createElement("span");
      prev.type = next.type = "button"; prev.textContent = "‹"; next.textContent = "›";
      prev.className = next.className = "btn btn-sm btn-link cs-cal-nav";
      title.className = "cs-cal-title"; title.textContent = monthName.format(month);
      prev.addEventListener("click", function () { month = new Date(month.getFullYear(), month.getMonth() - 1, 1); draw(); });
      next.addEventListener("click", function () { month = new Date(month.getFullYear(), month.getMonth() + 1, 1); draw(); });
      head.appendChild(prev); head.appendChild(title); head.appendChild(next);
      box.appendChild(head);
      var grid = document.createElement("div");
      grid.className = "cs-cal-grid";
      for (var w = 0; w < 7; w++) {  // 2023-01-01 was a Sunday
        var wd = document.createElement("span");
        wd.className = "cs-cal-wd"; wd.textContent = dayName.format(new Date(2023, 0, 1 + (w + firstDay) % 7));
        grid.appendChild(wd);
      }
      var lead = (month.getDay() - firstDay + 7) % 7, chosen = parse(input.value);
      for (var i = 0; i < lead; i++) grid.appendChild(document.createElement("span"));
      var days = new Date(month.getFullYear(), month.getMonth() + 1, 0).getDate();
      for (var day = 1; day <= days; day++) {
        var b = document.createElement("button"), date = new Date(month.getFullYear(), month.getMonth(), day);
        b.type = "button"; b.className = "cs-cal-day"; b.textContent = String(day);
        b.setAttribute("data-date", iso(date));
        if (chosen && iso(chosen) === iso(date)) b.classList.add("cs-cal-chosen");
        b.addEventListener("click", (function (d) {
          return function () { input.value = shown(d); input.classList.remove("is-invalid"); box.classList.add("d-none"); input.dispatchEvent(new Event("change", {bubbles: true})); };
        })(date));
        grid.appendChild(b);
      }
      box.appendChild(grid);
    }
    return {
      toggle: function () {
        var chosen = parse(input.value) || new Date();
        month = new Date(chosen.getFullYear(), chosen.getMonth(), 1);
        draw();
        box.classList.toggle("d-none");
      },
      hide: function () { box.classList.add("d-none"); },
      box: box,
    };
  }

  Array.prototype.slice.call(document.querySelectorAll("input[type=date]")).forEach(function (input) {
    var value = parse(input.value);
    input.type = "text";
    input.setAttribute("inputmode", "numeric");
    input.setAttribute("autocomplete", "off");
    input.setAttribute("placeholder", ru ? "ДД.ММ.ГГГГ" : "YYYY-MM-DD");
    input.setAttribute("data-cs-date", "");
    input.value = value ? shown(value) : input.value;
    var wrap = document.createElement("span");
    wrap.className = "cs-date";
    input.parentNode.insertBefore(wrap, input);
    wrap.appendChild(input);
    var cal = calendar(input);
    input.addEventListener("focus", function () { if (cal.box.classList.contains("d-none")) cal.toggle(); });
    input.addEventListener("blur", function () {
      var d = parse(input.value);
      if (d) input.value = shown(d);
    });
    document.addEventListener("mousedown", function (ev) { if (!wrap.contains(ev.target)) cal.hide(); });
    input.addEventListener("keydown", function (ev) { if (ev.key === "Escape") cal.hide(); });
    if (input.form && !input.form.hasAttribute("data-cs-dates")) {
      input.form.setAttribute("data-cs-dates", "");
      input.form.addEventListener("submit", function () {
        Array.prototype.slice.call(input.form.querySelectorAll("[data-cs-date]")).forEach(function (field) {
          var d = parse(field.value);
          if (d) field.value = iso(d);  // the server reads ISO dates; anything else it refuses with a message
        });
      });
    }
  });
})();
