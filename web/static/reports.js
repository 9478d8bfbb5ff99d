// Report charts (lines drawn over the bars: a lower `order` is drawn later), drawn with the vendored Chart.js from the JSON the page embeds (no inline
// script: the Content-Security-Policy allows only our own files).
(function () {
  "use strict";
  const COLOURS = {
    sent: "#067647", queued: "#2957d6", sending: "#6172f3", held: "#b54708",
    failed: "#b42318", cancelled: "#98a2b3", skipped: "#f79009",
  };
  const EXTRA = ["#9e77ed", "#ee46bc", "#16b364", "#ef6820", "#0ba5ec", "#667085"];
  const reduced = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  const LABELS = JSON.parse(document.getElementById("labels").textContent);

  function data(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function messagesChart() {
    const chart = data("messages-chart-data");
    const canvas = document.getElementById("messages-chart");
    if (!chart || !canvas) return;
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: chart.labels,
        datasets: chart.datasets.map((d, i) => ({
          label: d.label, data: d.data,
          backgroundColor: COLOURS[d.label] || EXTRA[i % EXTRA.length],
        })),
      },
      options: {
        animation: reduced ? false : { duration: 300 },
        maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { tooltip: { mode: "index", intersect: false } },
      },
    });
  }

  function runsChart() {
    const chart = data("runs-chart-data");
    const canvas = document.getElementById("runs-chart");
    if (!chart || !canvas) return;
    const skipped = chart.skipped.map((d, i) => ({
      type: "bar", label: `skipped: ${LABELS.skip_reasons[d.label] || d.label.replace(/_/g, " ")}`,
      data: d.data, stack: "messages", backgroundColor: EXTRA[i % EXTRA.length], yAxisID: "y",
      order: 1,
    }));
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: chart.labels,
        datasets: [
          { type: "line", label: "reached", data: chart.reached, borderColor: "#17203a",
            backgroundColor: "#17203a", yAxisID: "y", stack: "reached", spanGaps: true, order: 0 },
          { type: "bar", label: "sent", data: chart.sent, stack: "messages",
            backgroundColor: COLOURS.sent, yAxisID: "y", order: 1 },
          { type: "bar", label: "failed", data: chart.failed, stack: "messages",
            backgroundColor: COLOURS.failed, yAxisID: "y", order: 1 },
          ...skipped,
          { type: "line", label: "points awarded", data: chart.points_awarded,
            borderColor: "#2957d6", backgroundColor: "#2957d6", yAxisID: "points", order: 0 },
          { type: "line", label: "points expired", data: chart.points_expired,
            borderColor: "#b42318", backgroundColor: "#b42318", borderDash: [6, 4],
            yAxisID: "points", order: 0 },
        ],
      },
      options: {
        animation: reduced ? false : { duration: 300 },
        maintainAspectRatio: false,
        scales: {
          x: { stacked: true },
          y: { stacked: true, beginAtZero: true, ticks: { precision: 0 },
               title: { display: true, text: "customers / messages" } },
          points: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
                    title: { display: true, text: "points" } },
        },
        plugins: { tooltip: { mode: "index", intersect: false } },
      },
    });
  }

  messagesChart();
  runsChart();
})();
