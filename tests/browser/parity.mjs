// Runs the browser build of the edge (www/pkg) in Debian's headless Chromium on the frames of a
// job folder and writes the payloads it produces, for the Rust parity tests to compare with the
// native and wasmtime builds.
//
//   node parity.mjs --www ../../www --work JOB_DIR
//
// JOB_DIR/job.json:
//   {"model": "mobilenet_v2.onnx",
//    "frames": [{"file": "f0.rgb", "width": 900, "height": 900}],
//    "scenarios": [{"name": "rs", "artifact": "rs.pwart",
//                   "encode": {"webp_quality": 90, "tile_quality": 90}}]}
// Frames are packed 8-bit RGB. Output: JOB_DIR/browser/<scenario>-<i>.pwir, and
// JOB_DIR/browser/timings.json with the per-frame stage times the module reported.

import { createServer } from "node:http";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { extname, join, normalize, resolve } from "node:path";

import { chromium } from "playwright-core";

import { CHROMIUM, CHROMIUM_ARGS } from "./chromium.mjs";

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) {
    throw new Error(`missing ${name}`);
  }
  return resolve(process.argv[i + 1]);
}

const TYPES = { ".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html" };

// Serves /pkg/* from the www folder and /work/* from the job folder, nothing else.
function serve(www, work) {
  const page = `<!doctype html><meta charset="utf-8"><title>parity</title>`;
  return createServer(async (req, res) => {
    const url = new URL(req.url, "http://localhost");
    const [root, rest] = url.pathname.startsWith("/pkg/")
      ? [www, url.pathname.slice(1)]
      : url.pathname.startsWith("/work/")
        ? [work, url.pathname.slice("/work/".length)]
        : [null, null];
    if (url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end(page);
      return;
    }
    const path = root && normalize(join(root, rest));
    if (!path || !path.startsWith(root)) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(path);
      res.writeHead(200, { "content-type": TYPES[extname(path)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
}

const www = arg("--www");
const work = arg("--work");
const job = JSON.parse(await readFile(join(work, "job.json"), "utf8"));
const server = serve(www, work);
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${base}/`);
  const results = await page.evaluate(async (job) => {
    const { default: init, Edge } = await import("/pkg/patchwire_edge.js");
    await init();
    const bytes = async (name) => new Uint8Array(await (await fetch(`/work/${name}`)).arrayBuffer());
    const model = await bytes(job.model);
    const frames = [];
    for (const f of job.frames) {
      frames.push({ ...f, rgb: await bytes(f.file) });
    }
    const out = [];
    for (const s of job.scenarios) {
      const artifact = s.artifact ? await bytes(s.artifact) : undefined;
      const edge = new Edge({ scenario: s.name, encode: s.encode }, model, artifact);
      frames.forEach((f, i) => {
        const frame = edge.processRgb(f.rgb, f.width, f.height, i);
        // Base64 keeps the transfer out of the page cheap and exact.
        let text = "";
        const p = frame.payload;
        for (let k = 0; k < p.length; k += 0x8000) {
          text += String.fromCharCode.apply(null, p.subarray(k, k + 0x8000));
        }
        out.push({
          scenario: s.name,
          index: i,
          payload: btoa(text),
          times: { resize_ms: frame.resize_ms, extract_ms: frame.extract_ms, encode_ms: frame.encode_ms },
        });
        frame.free();
      });
      edge.free();
    }
    return out;
  }, job);
  if (errors.length) {
    throw new Error(`page errors: ${errors.join("; ")}`);
  }
  const dir = join(work, "browser");
  await mkdir(dir, { recursive: true });
  for (const r of results) {
    await writeFile(join(dir, `${r.scenario}-${r.index}.pwir`), Buffer.from(r.payload, "base64"));
  }
  const timings = results.map(({ scenario, index, times }) => ({ scenario, index, ...times }));
  await writeFile(join(dir, "timings.json"), JSON.stringify(timings, null, 1));
  console.log(`browser: ${results.length} payloads written to ${dir}`);
} finally {
  await browser.close();
  server.close();
}
