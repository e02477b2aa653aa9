/* Chatsource admin: the dashboard's charts (Chart.js 4, served from /static/vendor/chartjs) and the
 * live progress of «replay events». The numbers come from the page itself (#cs-dashboard-data, the
 * same dict as GET /api/v1/dashboard); every chart has its table next to it, so the page reads
 * without JavaScript too. */
(function () {
  "use strict";

  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  /* -- replay progress: refresh the runs still under way ------------------------------------ */
  var runs = document.querySelector("[data-replay-runs]");
  if (runs) {
    var url = runs.getAttribute("data-progress-url");
    var poll = function () {
      var open = $all("tr[data-run][data-finished=false]", runs).map(function (tr) { return tr.getAttribute("data-run"); });
      if (!open.length) return;
      fetch(url + "?ids=" + open.join(","), {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (!body) return;
          body.data.forEach(function (run) {
            var tr = runs.querySelector("tr[data-run='" + run.id + "']");
            if (!tr) return;
            ["done", "failed", "pending", "total"].forEach(function (key) {
              var cell = tr.querySelector("[data-field=" + key + "]");
              if (cell) cell.textContent = run[key];
            });
            var bar = tr.querySelector(".progress-bar");
            if (bar) {
              var pct = Math.round(run.progress * 100);
              bar.style.width = pct + "%"; bar.setAttribute("aria-valuenow", pct); bar.textContent = pct + "%";
              bar.classList.toggle("progress-bar-animated", !run.finished);
              bar.classList.toggle("progress-bar-striped", !run.finished);
              bar.classList.toggle("bg-danger", run.finished && run.failed > 0);
              bar.classList.toggle("bg-success", run.finished && run.failed === 0);
            }
            tr.setAttribute("data-finished", run.finished ? "true" : "false");
            var state = tr.querySelector("[data-field=state]");
            if (state && run.finished) state.textContent = state.getAttribute("data-finished-text");
          });
        })
        .catch(function () { /* the next tick tries again */ })
        .then(function () { setTimeout(poll, 2000); });
    };
    setTimeout(poll, 1500);
  }

  /* -- the dashboard ------------------------------------------------------------------------ */
  var source = document.getElementById("cs-dashboard-data");
  if (!source || typeof window.Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  var Chart = window.Chart;
  var locale = data.locale === "en" ? "en-GB" : "ru-RU";
  var reduced = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.font.size = 12;
  Chart.defaults.color = "#5f6b7a";
  Chart.defaults.borderColor = "#edf1f5";
  Chart.defaults.animation = reduced ? false : {duration: 400};
  Chart.defaults.maintainAspectRatio = false;

  var number = new Intl.NumberFormat(locale);
  var dayFormat = new Intl.DateTimeFormat(locale, {day: "numeric", month: "short"});
  var longDay = new Intl.DateTimeFormat(locale, {weekday: "short", day: "numeric", month: "long", year: "numeric"});
  function parseDay(iso) { var p = iso.split("-"); return new Date(+p[0], +p[1] - 1, +p[2]); }
  var labels = data.days.map(function (d) { return dayFormat.format(parseDay(d)); });
  var titles = data.days.map(function (d) { return longDay.format(parseDay(d)); });
  var ready = 0, expected = 0;
  function drawn() {
    ready += 1;
    if (ready >= expected) document.documentElement.setAttribute("data-charts-ready", "1");
  }
  var whenDrawn = {id: "csReady", afterRender: function (chart) {
    if (!chart.$csReady) { chart.$csReady = true; drawn(); }
  }};

  function stacked(canvas, series) {
    expected += 1;
    return new Chart(canvas, {
      type: "bar",
      data: {labels: labels, datasets: datasets(series)},
      options: {
        interaction: {mode: "index", intersect: false},
        scales: {
          x: {stacked: true, grid: {display: false}, ticks: {autoSkip: true, maxRotation: 0, autoSkipPadding: 12}},
          y: {stacked: true, beginAtZero: true, ticks: {precision: 0, callback: function (v) { return number.format(v); }}}
        },
        plugins: {
          legend: {display: false},
          tooltip: {
            filter: function (item) { return item.raw > 0; },
            itemSort: function (a, b) { return b.raw - a.raw; },
            callbacks: {
              title: function (items) { return titles[items[0].dataIndex]; },
              label: function (item) { return " " + item.dataset.label + ": " + number.format(item.raw); },
              footer: function (items) {
                var sum = 0;
                items[0].chart.data.datasets.forEach(function (ds) { sum += ds.data[items[0].dataIndex] || 0; });
                return data.text.total + ": " + number.format(sum);
              }
            }
          }
        }
      },
      plugins: [whenDrawn]
    });
  }
  function datasets(series) {
    return series.map(function (s) {
      return {label: s.label, data: s.data, backgroundColor: s.color, borderColor: s.color, borderWidth: 0,
              borderRadius: 2, maxBarThickness: 38};
    });
  }

  var channels = document.getElementById("chart-channels");
  if (channels) stacked(channels, data.channel);

  var breakdownCanvas = document.getElementById("chart-breakdown");
  var breakdown = breakdownCanvas ? stacked(breakdownCanvas, data.campaign) : null;
  $all(".cs-js-hidden").forEach(function (el) { el.classList.add("d-none"); });
  $all("[data-breakdown]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var kind = btn.getAttribute("data-breakdown");
      $all("[data-breakdown]").forEach(function (b) {
        var on = b === btn;
        b.classList.toggle("active", on); b.setAttribute("aria-pressed", on ? "true" : "false");
      });
      $all("[data-breakdown-legend]").forEach(function (el) {
        el.classList.toggle("d-none", el.getAttribute("data-breakdown-legend") !== kind);
      });
      if (breakdown) { breakdown.data.datasets = datasets(data[kind]); breakdown.update(); }
    });
  });

  /* The doughnut with the number to watch in its middle. */
  var centre = {
    id: "csCentre",
    afterDraw: function (chart) {
      var meta = chart.getDatasetMeta(0);
      if (!meta.data.length || data.session_percent === null) return;
      var arc = meta.data[0], ctx = chart.ctx;
      ctx.save();
      ctx.textAlign = "center"; ctx.textBaseline = "middle";
      ctx.fillStyle = "#1b5e20";
      ctx.font = "600 26px " + Chart.defaults.font.family;
      ctx.fillText(new Intl.NumberFormat(locale, {maximumFractionDigits: 1}).format(data.session_percent) + "%", arc.x, arc.y - 8);
      ctx.fillStyle = "#5f6b7a";
      ctx.font = "12px " + Chart.defaults.font.family;
      ctx.fillText(data.text.session_share, arc.x, arc.y + 16);
      ctx.restore();
    }
  };
  var doughnut = document.getElementById("chart-attribution");
  if (doughnut) {
    expected += 1;
    var total = data.attribution.reduce(function (s, a) { return s + a.count; }, 0);
    new Chart(doughnut, {
      type: "doughnut",
      data: {
        labels: data.attribution.map(function (a) { return a.label; }),
        datasets: [{data: data.attribution.map(function (a) { return a.count; }),
                    backgroundColor: data.attribution.map(function (a) { return a.color; }),
                    borderColor: "#fff", borderWidth: 2, hoverOffset: 6}]
      },
      options: {
        cutout: "68%",
        plugins: {
          legend: {display: false},
          tooltip: {callbacks: {label: function (item) {
            var pct = total ? Math.round(item.raw / total * 1000) / 10 : 0;
            return " " + item.label + ": " + number.format(item.raw) + " (" + number.format(pct) + "%)";
          }}}
        }
      },
      plugins: [centre, whenDrawn]
    });
  }

  var share = document.getElementById("chart-session-share");
  if (share) {
    expected += 1;
    var lines = [{label: data.text.session_share, data: data.session_share, borderColor: "#2e7d32",
                  backgroundColor: "rgba(46, 125, 50, .12)", fill: true, tension: 0.3, spanGaps: true,
                  pointRadius: data.days.length > 45 ? 0 : 2, borderWidth: 2}];
    if (data.session_share_previous !== null) {
      lines.push({label: data.text.previous_period, data: data.days.map(function () { return data.session_share_previous; }),
                  borderColor: "#9aa5b1", borderDash: [5, 4], borderWidth: 1.5, pointRadius: 0, fill: false});
    }
    new Chart(share, {
      type: "line",
      data: {labels: labels, datasets: lines},
      options: {
        interaction: {mode: "index", intersect: false},
        scales: {
          x: {grid: {display: false}, ticks: {autoSkip: true, maxRotation: 0, autoSkipPadding: 12}},
          y: {min: 0, max: 100, ticks: {stepSize: 25, callback: function (v) { return v + "%"; }}}
        },
        plugins: {
          legend: {display: lines.length > 1, position: "bottom", labels: {boxWidth: 12, boxHeight: 2}},
          tooltip: {callbacks: {
            title: function (items) { return titles[items[0].dataIndex]; },
            label: function (item) {
              return " " + item.dataset.label + ": " + (item.raw === null ? data.text.no_requests : number.format(item.raw) + "%");
            }
          }}
        }
      },
      plugins: [whenDrawn]
    });
  }
  if (!expected) document.documentElement.setAttribute("data-charts-ready", "1");
})();
