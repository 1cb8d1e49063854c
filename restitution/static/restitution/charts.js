// Draws a dataset page's chart with uPlot (vendored, see vendor/uplot/SOURCE) from the JSON the
// page embeds (#chart-data: x in Unix seconds, one array per measure). Drag to zoom, double-click
// to reset: uPlot's own cursor behaviour.
(function () {
  "use strict";
  var holder = document.getElementById("chart");
  var source = document.getElementById("chart-data");
  if (!holder || !source || typeof uPlot === "undefined") return;
  var chart = JSON.parse(source.textContent);
  var colours = ["#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad"];
  var bars = chart.kind === "bars" ? uPlot.paths.bars({size: [0.8, 40]}) : null;
  var series = [{}];
  chart.labels.forEach(function (label, i) {
    var unit = chart.units[i];
    series.push({
      label: unit ? label + " (" + unit + ")" : label,
      stroke: colours[i % colours.length],
      fill: bars ? colours[i % colours.length] + "55" : undefined,
      width: 1.5,
      paths: bars || undefined,
      scale: unit === chart.units[0] ? "y" : "y2",
      value: function (u, v) { return v == null ? "—" : v.toLocaleString() + (unit ? " " + unit : ""); }
    });
  });
  var axes = [{}, {scale: "y", label: chart.units[0] || ""}];
  if (chart.units.some(function (u) { return u !== chart.units[0]; })) {
    axes.push({scale: "y2", side: 1, grid: {show: false},
               label: chart.units.filter(function (u) { return u !== chart.units[0]; })[0] || ""});
  }
  var width = Math.max(320, holder.clientWidth || 900);
  var plot = new uPlot({
    width: width, height: 360, series: series, axes: axes,
    scales: {x: {time: true}, y: {range: function (u, min, max) { return [0, max > 0 ? max * 1.05 : 1]; }}},
    cursor: {drag: {x: true, y: false}}
  }, [chart.x].concat(chart.series), holder);
  holder.dataset.rendered = "true";
  window.addEventListener("resize", function () {
    plot.setSize({width: Math.max(320, holder.clientWidth), height: 360});
  });
})();
