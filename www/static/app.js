// The camera page: the wasm edge on each frame, payloads to /v1/inspect, the heatmap back.
import init, { Edge } from "/pkg/patchwire_edge.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const token = params.get("token");
const deviceName = params.get("device");

const state = {
  models: [],
  edge: null,
  edgeModel: null,
  timer: null,
  busy: false,
  source: null,
  lastTxMs: null,
  frames: 0,
};

function fail(message) {
  $("error").hidden = false;
  $("error").textContent = message;
  console.error(message);
}

function ms(v) {
  return v == null ? "-" : `${v.toFixed(1)} ms`;
}

async function bytesOf(url) {
  const res = await fetch(url);
  if (!res.ok) {
    throw new Error(`${url}: ${res.status} ${await res.text()}`);
  }
  return new Uint8Array(await res.arrayBuffer());
}

// Builds the edge for the chosen scenario: the edge model for feature scenarios, the
// scenario's artifact when it has one.
async function setScenario(name) {
  const m = state.models.find((x) => x.scenario === name);
  const sendsImage = name === "original" || name === "webp";
  if (!sendsImage && !state.edgeModel) {
    $("status").textContent = "fetching the edge model...";
    state.edgeModel = await bytesOf("/v1/models/edge");
  }
  const artifact = m.artifact ? await bytesOf(m.artifact) : undefined;
  if (state.edge) {
    state.edge.free();
  }
  state.edge = new Edge({ scenario: name, encode: m.encode }, sendsImage ? undefined : state.edgeModel, artifact);
  $("threshold").textContent = m.threshold.toFixed(3);
  $("status").textContent = `edge ready: ${name} (${Edge.version()})`;
}

// Draws the source at its own resolution into a work canvas and returns its pixels.
function grab(source) {
  const w = source.videoWidth || source.naturalWidth || source.width;
  const h = source.videoHeight || source.naturalHeight || source.height;
  if (!w || !h) {
    return null;
  }
  const c = grab.canvas || (grab.canvas = document.createElement("canvas"));
  c.width = w;
  c.height = h;
  const g = c.getContext("2d", { willReadFrequently: true });
  g.drawImage(source, 0, 0, w, h);
  return g.getImageData(0, 0, w, h);
}

async function drawResult(source, mapB64) {
  const view = $("view");
  const g = view.getContext("2d");
  g.drawImage(source, 0, 0, view.width, view.height);
  const map = new Image();
  map.src = `data:image/png;base64,${mapB64}`;
  await map.decode();
  g.drawImage(map, 0, 0, view.width, view.height);
  document.body.dataset.heatmaps = String(Number(document.body.dataset.heatmaps || 0) + 1);
}

async function processFrame() {
  if (state.busy || !state.edge || !state.source) {
    return;
  }
  state.busy = true;
  try {
    const pixels = grab(state.source);
    if (!pixels) {
      return;
    }
    const frame = state.edge.process(pixels.data, pixels.width, pixels.height);
    const payload = frame.payload;
    const timings = [frame.resize_ms, frame.extract_ms, frame.encode_ms];
    if (state.lastTxMs != null) {
      timings.push(state.lastTxMs);
    }
    const t0 = performance.now();
    const res = await fetch("/v1/inspect?inline_map=true", {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/octet-stream",
        "x-patchwire-edge-ms": timings.map((t) => t.toFixed(3)).join(","),
      },
      body: payload,
    });
    const roundTrip = performance.now() - t0;
    const body = await res.json();
    if (!res.ok) {
      throw new Error(`server refused the frame: ${body.error.kind}: ${body.error.message}`);
    }
    const server = body.server_ms.total_ms;
    const tx = Math.max(0, roundTrip - server);
    state.lastTxMs = tx;
    await drawResult(state.source, body.map_png_base64);
    const edgeMs = frame.resize_ms + frame.extract_ms + frame.encode_ms;
    show(body, frame, edgeMs, tx, server);
    frame.free();
    state.frames += 1;
    document.body.dataset.frames = String(state.frames);
    $("status").textContent = `${state.frames} frames processed`;
  } catch (e) {
    fail(String(e.message || e));
  } finally {
    state.busy = false;
  }
}

function show(body, frame, edgeMs, tx, server) {
  $("verdict").textContent = body.verdict;
  $("verdict").className = `verdict ${body.verdict}`;
  $("score").textContent = body.score.toFixed(3);
  $("payload").textContent = `${body.payload_bytes.toLocaleString()} B`;
  $("sequence").textContent = String(body.sequence);
  $("version").textContent = body.edge_version;
  $("t-resize").textContent = ms(frame.resize_ms);
  $("t-extract").textContent = ms(frame.extract_ms);
  $("t-encode").textContent = ms(frame.encode_ms);
  $("t-tx").textContent = ms(tx);
  $("t-server").textContent = ms(server);
  const total = edgeMs + tx + server;
  $("t-total").textContent = ms(total);
  const parts = [["edge", edgeMs], ["tx", tx], ["server", server]];
  $("bar").innerHTML = parts
    .map(([k, v]) => `<span class="${k}" style="width:${(100 * v) / total}%" title="${k} ${v.toFixed(1)} ms"></span>`)
    .join("");
  const row = document.createElement("tr");
  const cells = [body.sequence, body.scenario, body.payload_bytes, edgeMs.toFixed(1), tx.toFixed(1), server.toFixed(1), body.score.toFixed(3), body.verdict];
  row.innerHTML = cells.map((c) => `<td>${c}</td>`).join("");
  $("log").prepend(row);
  while ($("log").children.length > 10) {
    $("log").lastChild.remove();
  }
}

function startLoop() {
  stopLoop();
  const fps = Number($("rate").value);
  state.timer = setInterval(processFrame, 1000 / fps);
  $("stop").disabled = false;
}

function stopLoop() {
  if (state.timer) {
    clearInterval(state.timer);
  }
  state.timer = null;
  $("stop").disabled = true;
}

async function startCamera() {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    const video = $("video");
    video.srcObject = stream;
    await video.play();
    state.source = video;
    startLoop();
  } catch (e) {
    fail(`camera: ${e.message || e}`);
  }
}

async function useFile(file) {
  const img = new Image();
  img.src = URL.createObjectURL(file);
  await img.decode();
  stopLoop();
  state.source = img;
  await processFrame();
}

async function main() {
  if (!token) {
    fail("open this page with ?device=NAME&token=TOKEN (patchwire serve --device NAME prints the link)");
  }
  $("device").textContent = deviceName ? `device ${deviceName}` : "";
  await init();
  const res = await fetch("/v1/models");
  state.models = (await res.json()).models;
  const select = $("scenario");
  for (const m of state.models) {
    const o = document.createElement("option");
    o.value = o.textContent = m.scenario;
    select.append(o);
  }
  const preferred = params.get("scenario");
  if (preferred && state.models.some((m) => m.scenario === preferred)) {
    select.value = preferred;
  }
  await setScenario(select.value);
  select.addEventListener("change", () => setScenario(select.value).catch((e) => fail(String(e))));
  $("rate").addEventListener("change", () => state.timer && startLoop());
  $("camera").addEventListener("click", startCamera);
  $("stop").addEventListener("click", stopLoop);
  $("file").addEventListener("change", (e) => e.target.files[0] && useFile(e.target.files[0]));
  document.body.dataset.ready = "true";
  if (params.get("autostart") === "camera") {
    await startCamera();
  }
}

main().catch((e) => fail(String(e.message || e)));
