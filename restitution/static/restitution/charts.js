// Draws a dataset page's chart with uPlot (vendored, see vendor/uplot/SOURCE) from the JSON the
// page embeds (#chart-data: x in Unix seconds, one array per measure). Drag to zoom, double-click
// to reset: uPlot's own cursor behaviour.
//
// Lines share one chart (a dashed "peak" under a solid "average"). Bars never share a slot:
// each measure gets its own small chart (small multiples), one above the other, same time axis.
// Dates and times follow the page's language (French: day/month, 24-hour clock) in the
// gateway's time zone; the charts are as wide as their box, never wider than the screen.
(function () {
  "use strict";
  var holder = document.getElementById("chart");
  var source = document.getElementById("chart-data");
  if (!holder || !source || typeof uPlot === "undefined") return;
  var chart = JSON.parse(source.textContent);
  var locale = chart.language === "fr" ? "fr-FR" : "en-GB";
  var zone = chart.time_zone || undefined;
  var colours = ["#1f5fa8", "#b03a2e", "#1d7a4a", "#7d3c98"];
  var HEIGHT_LINES = 320, HEIGHT_BARS = 200;

  function formatter(options) {
    var format = new Intl.DateTimeFormat(locale, Object.assign({timeZone: zone, hourCycle: "h23"}, options));
    return function (seconds) { return format.format(new Date(seconds * 1000)); };
  }
  var byResolution = {
    raw: {tick: formatter({day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit"}),
          legend: formatter({weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit",
                             minute: "2-digit"})},
    day: {tick: formatter({day: "2-digit", month: "2-digit"}),
          legend: formatter({weekday: "short", day: "numeric", month: "long", year: "numeric"})},
    week: {tick: formatter({day: "2-digit", month: "2-digit"}),
           legend: formatter({day: "numeric", month: "long", year: "numeric"})},
    month: {tick: formatter({month: "short", year: "2-digit"}), legend: formatter({month: "long", year: "numeric"})}
  };
  var time = byResolution[chart.resolution] || byResolution.day;
  var number = new Intl.NumberFormat(locale, {maximumFractionDigits: 2});

  // Half a step of padding on each side, so the first and last bars are not cut in half.
  var step = {day: 86400, week: 7 * 86400, month: 30.44 * 86400}[chart.resolution] || 1800;
  if (chart.resolution === "raw") {
    for (var i = 1; i < chart.x.length; i++) { step = Math.min(step, chart.x[i] - chart.x[i - 1]) || step; }
  }
  function xRange(u, min, max) { return [min - step / 2, max + step / 2]; }

  function width() { return Math.max(200, Math.floor(holder.clientWidth || 600)); }

  function xAxis() {
    return {values: function (u, splits) { return splits.map(function (s) { return time.tick(s); }); },
            space: 70, size: 40};
  }
  function xSeries() { return {label: chart.x_label, value: function (u, v) { return v == null ? "—" : time.legend(v); }}; }
  function ySeries(i, extra) {
    var unit = chart.units[i];
    return Object.assign({
      label: unit ? chart.labels[i] + " (" + unit + ")" : chart.labels[i],
      stroke: colours[i % colours.length], width: 2,
      value: function (u, v) { return v == null ? "—" : number.format(v) + (unit ? " " + unit : ""); }
    }, extra || {});
  }
  function yAxis(unit) {
    return {label: unit || "", size: 56,
            values: function (u, splits) { return splits.map(function (s) { return number.format(s); }); }};
  }
  var plots = [];
  function make(series, data, height, box) {
    var units = series.slice(1).map(function (s, i) { return s._unit; });
    var plot = new uPlot({
      width: width(), height: height, series: series, axes: [xAxis(), yAxis(units[0])],
      scales: {x: {time: true, range: xRange}, y: {range: function (u, min, max) { return [0, max > 0 ? max * 1.08 : 1]; }}},
      cursor: {drag: {x: true, y: false}}, legend: {live: true}
    }, data, box);
    plots.push(plot);
  }

  if (chart.kind === "bars") {
    var bars = uPlot.paths.bars({size: [0.7, 48]});
    chart.series.forEach(function (values, i) {
      var box = document.createElement("div");
      box.className = "chart-multiple";
      holder.appendChild(box);
      var s = ySeries(i, {paths: bars, fill: colours[i % colours.length] + "99", width: 1});
      s._unit = chart.units[i];
      make([xSeries(), s], [chart.x, values], HEIGHT_BARS, box);
    });
  } else {
    // Lines: a "max" measure (peak) is drawn first, thin and dashed, so the average stays visible.
    var order = chart.series.map(function (_, i) { return i; }).sort(function (a, b) {
      return (chart.styles[a] === "max" ? 0 : 1) - (chart.styles[b] === "max" ? 0 : 1);
    });
    var series = [xSeries()].concat(order.map(function (i) {
      var s = chart.styles[i] === "max" ? ySeries(i, {width: 1, dash: [6, 4], stroke: "#8a5a00"}) : ySeries(i);
      s._unit = chart.units[i];
      return s;
    }));
    make(series, [chart.x].concat(order.map(function (i) { return chart.series[i]; })), HEIGHT_LINES, holder);
  }
  holder.plots = plots;  // for the browser tests: scales and computed axis labels
  holder.dataset.rendered = "true";
  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(function () {
      plots.forEach(function (p) { p.setSize({width: width(), height: p.height}); });
    }, 100);
  });
})();
