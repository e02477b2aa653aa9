/* Flask-Admin's filter date pickers in the page's language, not the browser's (issue 15 §11).
 * Flask-Admin starts bootstrap-daterangepicker on the filter inputs with moment's English and ISO
 * dates. Once its scripts have run (they load after ours), each filter picker is started again with
 * the page's format (ru 24.11.2026, en 2026-11-24), month and weekday names (Intl, in the page's
 * language), Monday first in Russian and the buttons' words from the page (#cs-date-picker); a
 * filter added later («Add filter») gets the same. The server reads both formats
 * (web/admin/date_filters.py). Form fields of edit pages are left as Flask-Admin made them. */
(function () {
  "use strict";
  var meta = document.querySelector("meta[name=cs-lang]");
  var lang = ((meta && meta.getAttribute("content")) || document.documentElement.getAttribute("lang") || "ru").slice(0, 2);
  var ru = lang === "ru";
  var ROLES = {datepicker: false, daterangepicker: true};
  var FORMAT = ru ? "DD.MM.YYYY" : "YYYY-MM-DD";
  var SEPARATOR = ru ? " — " : " to ";
  var pad = function (n) { return (n < 10 ? "0" : "") + n; };

  function capital(text) { return text.charAt(0).toUpperCase() + text.slice(1); }
  function locale() {
    var words = document.getElementById("cs-date-picker");
    var month = new Intl.DateTimeFormat(lang, {month: "long"}), day = new Intl.DateTimeFormat(lang, {weekday: "short"});
    var monthNames = [], daysOfWeek = [];
    for (var m = 0; m < 12; m++) monthNames.push(capital(month.format(new Date(2023, m, 1))));
    for (var d = 0; d < 7; d++) daysOfWeek.push(capital(day.format(new Date(2023, 0, 1 + d)).replace(".", "")));  // 2023-01-01: a Sunday
    var say = function (name, fallback) { return (words && words.getAttribute("data-" + name)) || fallback; };
    return {monthNames: monthNames, daysOfWeek: daysOfWeek, firstDay: ru ? 1 : 0,
            applyLabel: say("apply", "Apply"), cancelLabel: say("cancel", "Cancel"),
            fromLabel: say("from", "From"), toLabel: say("to", "To"), weekLabel: say("week", "W")};
  }
  // A value typed on a page of the other language (a shared link): the page's format, dates kept.
  function inPageFormat(text) {
    return String(text || "").replace(/(\d{4})-(\d{1,2})-(\d{1,2})|(\d{1,2})\.(\d{1,2})\.(\d{4})/g, function (all, y, mo, d, d2, mo2, y2) {
      var parts = y ? [y, +mo, +d] : [y2, +mo2, +d2];
      return ru ? pad(parts[2]) + "." + pad(parts[1]) + "." + parts[0] : parts[0] + "-" + pad(parts[1]) + "-" + pad(parts[2]);
    }).replace(/ to | — | - /, SEPARATOR);
  }

  function localise($el, role) {
    if (!$el.hasClass("filter-val") || !(role in ROLES) || !$el.daterangepicker) return;
    $el.val(inPageFormat($el.val()));
    $el.attr("data-date-format", FORMAT).attr("data-cs-lang", lang);
    $el.daterangepicker({timePicker: false, showDropdowns: true, singleDatePicker: !ROLES[role],
                         format: FORMAT, separator: SEPARATOR, locale: locale()},
                        function () { window.jQuery(".filter-val").trigger("change"); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var $ = window.jQuery, form = window.faForm;
    if (!$ || !form || !$.fn.daterangepicker) return;
    var apply = form.applyStyle;
    form.applyStyle = function ($el, name) {
      var result = apply.apply(this, arguments);
      localise($el, name);
      return result;
    };
    $("#filter_form .filter-val").each(function () {  // the active filters, started before this ran
      var $el = $(this);
      if ($el.data("daterangepicker")) localise($el, $el.data("daterangepicker").singleDatePicker ? "datepicker" : "daterangepicker");
    });
  });
}());
