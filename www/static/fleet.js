// The fleet view: per-device latency percentiles from the store, and a plot per device.
const $ = (id) => document.getElementById(id);
const f1 = (v) => v.toFixed(1);

// One small SVG line chart: edge and server milliseconds against time.
function plot(series, name) {
  const W = 640, H = 180, L = 48, B = 24, T = 18;
  if (series.length < 2) {
    return `<p class="muted">${name}: not enough inspections to plot</p>`;
  }
  const t0 = series[0][0], t1 = series[series.length - 1][0] || t0 + 1;
  const top = Math.max(1, ...series.map((s) => Math.max(s[1], s[2])));
  const x = (t) => L + ((t - t0) / Math.max(t1 - t0, 1e-9)) * (W - L - 8);
  const y = (v) => H - B - (v / top) * (H - B - T);
  const line = (k, cls) => `<polyline class="${cls}" fill="none" stroke-width="1.5" points="${series.map((s) => `${x(s[0]).toFixed(1)},${y(s[k]).toFixed(1)}`).join(" ")}"/>`;
  return `<svg width="${W}" height="${H}" role="img" aria-label="${name} latency">
    <text x="${L}" y="12">${name}: edge (blue) and server (purple) ms</text>
    <line x1="${L}" y1="${H - B}" x2="${W - 8}" y2="${H - B}" stroke="#999"/>
    <line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#999"/>
    <text x="4" y="${y(top) + 4}">${f1(top)}</text><text x="4" y="${H - B}">0</text>
    <text x="${L}" y="${H - 6}">${new Date(t0 * 1000).toLocaleTimeString()}</text>
    <text x="${W - 90}" y="${H - 6}">${new Date(t1 * 1000).toLocaleTimeString()}</text>
    ${line(1, "edge")}${line(2, "server")}
  </svg>`;
}

async function refresh() {
  const res = await fetch("/v1/fleet");
  const { devices } = await res.json();
  const rows = devices.map((d) => {
    const e = d.edge_ms, s = d.server_ms;
    return `<tr><td>${d.device.name}${d.device.revoked ? " (revoked)" : ""}</td><td>${d.inspections}</td><td>${d.defective}</td>
      <td>${f1(e.p50)} / ${f1(e.p90)} / ${f1(e.p99)}</td><td>${Math.round(d.payload_bytes.p50)}</td>
      <td>${f1(s.p50)} / ${f1(s.p90)} / ${f1(s.p99)}</td><td>${d.versions.join(", ")}</td></tr>`;
  });
  document.querySelector("#devices tbody").innerHTML = rows.join("");
  $("plots").innerHTML = devices.map((d) => plot(d.series, d.device.name)).join("");
  $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.devices = String(devices.length);
}

refresh();
setInterval(refresh, 5000);
