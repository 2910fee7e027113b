// Charts from the data the page already shows as a table (a <script type="application/json">
// beside each canvas): the page works without them.
function drawUsage(canvas, data) {
  new Chart(canvas, {
    data: {
      labels: data.labels,
      datasets: [
        { type: "bar", label: "Requests", data: data.requests, backgroundColor: "#4f46e5", yAxisID: "requests" },
        { type: "line", label: "Cost ($)", data: data.cost, borderColor: "#f59f00", backgroundColor: "#f59f00", yAxisID: "cost", tension: 0, pointRadius: 2 },
      ],
    },
    options: {
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        requests: { type: "linear", position: "left", beginAtZero: true, ticks: { precision: 0 } },
        cost: {
          type: "linear", position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
          ticks: { callback: (value) => `$${Number(value).toLocaleString(undefined, { maximumSignificantDigits: 3 })}` },
        },
      },
    },
  });
}
function drawBars(canvas, data) {
  new Chart(canvas, {
    type: "bar",
    data: { labels: data.labels, datasets: data.datasets },
    options: { maintainAspectRatio: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
  });
}
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const source = document.getElementById(canvas.dataset.source);
    if (!source || typeof Chart === "undefined") return;
    const data = JSON.parse(source.textContent);
    (canvas.dataset.chart === "usage" ? drawUsage : drawBars)(canvas, data);
  });
});
