// The admin analytics page's "Now" figures, from the staff websocket feed (monitoring.live),
// reconnecting with a growing pause if the connection drops.
(() => {
  const panel = document.getElementById("gz-live");
  if (!panel) return;
  const state = document.getElementById("gz-live-state");
  const shown = {
    requests_per_second: (v) => v.toFixed(2),
    error_rate: (v) => `${(100 * v).toFixed(1)}%`,
    latency_p95_ms: (v) => (v == null ? "—" : `${v} ms`),
    tokens_per_second: (v) => v.toFixed(1),
  };
  let pause = 1000;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${panel.dataset.ws}`);
    socket.onopen = () => { pause = 1000; state.textContent = "(live, every second)"; };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      const minute = message.data?.windows?.["1m"];
      if (!minute) return;
      panel.querySelectorAll("[data-figure]").forEach((cell) => {
        cell.textContent = shown[cell.dataset.figure](minute[cell.dataset.figure]);
      });
    };
    socket.onclose = (event) => {
      state.textContent = event.code === 4403 ? "(the live feed is for staff who may see monitoring)" : "(reconnecting…)";
      if (event.code !== 4403) setTimeout(connect, (pause = Math.min(pause * 2, 30000)));
    };
  }
  connect();
})();
