// The statistics dashboard's charts (Apache ECharts, served from /static/vendor/echarts). The figures come in
// the page's <script type="application/json" id="dashboard-data">; htmx replaces them every refresh, and the
// charts are drawn again. A suppressed count (1 to 4) is null: ECharts leaves it out.
(function () {
  "use strict";
  var charts = [];

  function draw(id, option) {
    var element = document.getElementById(id);
    if (!element) return;
    var chart = echarts.init(element, null, { renderer: "canvas" });
    chart.setOption(option);
    charts.push(chart);
  }

  function timeAxis(points) {
    return points.map(function (p) { return p[0].slice(0, 16).replace("T", " "); });
  }

  function bars(pairs, name, none) {
    var shown = pairs.slice().reverse();
    return {
      title: shown.length ? undefined : { text: none, left: "center", top: "middle", textStyle: { color: "#616e7c", fontSize: 14 } },
      grid: { left: 8, right: 24, top: 10, bottom: 24, containLabel: true },
      tooltip: { trigger: "axis" },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", data: shown.map(function (p) { return p[0]; }), axisLabel: { fontSize: 11 } },
      series: [{ type: "bar", name: name, data: shown.map(function (p) { return p[1]; }), itemStyle: { color: "#c0392b" } }]
    };
  }

  function render() {
    var holder = document.getElementById("dashboard-data");
    if (!holder || typeof echarts === "undefined") return;
    var data = JSON.parse(holder.textContent);
    charts.forEach(function (chart) { chart.dispose(); });
    charts = [];
    var s = data.series;
    draw("chart-documents", {
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 48, right: 16, top: 32, bottom: 28 },
      xAxis: { type: "category", data: timeAxis(s.documents.points.length ? s.documents.points : s.purchases.points) },
      yAxis: { type: "value", minInterval: 1 },
      series: ["documents", "purchases", "matched", "mismatches"].map(function (name) {
        var byTime = {};
        s[name].points.forEach(function (p) { byTime[p[0]] = p[1]; });
        var axis = s.documents.points.length ? s.documents.points : s.purchases.points;
        return { name: s[name].label, type: name === "documents" ? "bar" : "line",
                 data: axis.map(function (p) { return p[0] in byTime ? byTime[p[0]] : 0; }) };
      })
    });
    draw("chart-rate", {
      series: [{
        type: "gauge", min: 0, max: 100, progress: { show: true },
        title: { offsetCenter: [0, "78%"] },
        detail: { formatter: data.matchRate === null ? "—" : "{value}%", fontSize: 22, offsetCenter: [0, "45%"] },
        data: [{ value: data.matchRate === null ? 0 : Math.round(data.matchRate * 1000) / 10, name: data.labels.rate }]
      }]
    });
    draw("chart-mismatches", bars(data.mismatches, "", data.labels.none));
    draw("chart-rejections", bars(data.rejections, "", data.labels.none));
    draw("chart-times", {
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 48, right: 16, top: 32, bottom: 28 },
      xAxis: { type: "category", data: data.times[0].buckets.map(function (b) { return b[0]; }) },
      yAxis: { type: "value", minInterval: 1 },
      series: data.times.map(function (m) {
        return { name: m.label, type: "bar", data: m.buckets.map(function (b) { return b[1]; }) };
      })
    });
    draw("chart-tax", {
      tooltip: { trigger: "axis" },
      grid: { left: 64, right: 16, top: 16, bottom: 28 },
      xAxis: { type: "category", data: timeAxis(s.tax.points) },
      yAxis: { type: "value" },
      series: [{ name: s.tax.label, type: "bar", data: s.tax.points.map(function (p) { return p[1]; }), itemStyle: { color: "#2d7d46" } }]
    });
    draw("chart-backlog", bars(data.backlog, "", data.labels.none));
    draw("chart-warnings", bars(data.warnings, "", data.labels.none));
    draw("chart-inspections", {
      tooltip: { trigger: "axis" },
      grid: { left: 8, right: 24, top: 10, bottom: 24, containLabel: true },
      xAxis: { type: "value", min: 0, max: 100, name: "%" },
      yAxis: { type: "category", data: data.inspections.map(function (p) { return p[0]; }).reverse(), axisLabel: { fontSize: 11 } },
      series: [{ type: "bar", name: data.labels.inspected, data: data.inspections.map(function (p) { return p[1]; }).reverse(),
                 label: { show: true, position: "right", formatter: "{c}%" }, itemStyle: { color: "#b9770e" } }]
    });
  }

  document.addEventListener("DOMContentLoaded", render);
  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.target && event.target.id === "dashboard-live") render();
  });
  window.addEventListener("resize", function () { charts.forEach(function (chart) { chart.resize(); }); });
})();
