// End to end in Debian's headless Chromium: the camera page, fed a fake camera made from real
// images, runs the wasm edge on its frames and shows the server's heatmaps; then the fleet view.
//
//   node e2e.mjs --url "http://127.0.0.1:PORT/?device=NAME&token=TOKEN" --y4m CAMERA.y4m \
//                --frames 3 --shots DIR
//
// Exits non-zero, naming what did not happen, if the page does not start, processes fewer
// frames than asked within the time limit, or draws no heatmap. Saves camera.png and
// fleet.png in DIR.

import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";

import { chromium } from "playwright-core";

import { CHROMIUM, CHROMIUM_ARGS } from "./chromium.mjs";

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) {
    throw new Error(`missing ${name}`);
  }
  return process.argv[i + 1];
}

const url = arg("--url");
const y4m = resolve(arg("--y4m"));
const frames = Number(arg("--frames"));
const shots = resolve(arg("--shots"));
await mkdir(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    ...CHROMIUM_ARGS,
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    `--use-file-for-fake-video-capture=${y4m}`,
  ],
});
let failed = null;
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e}`));
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  await page.goto(`${url}&autostart=camera`);

  // The page starts: the wasm module loads and the edge is ready.
  await page.waitForFunction(() => document.body.dataset.ready === "true", null, { timeout: 60_000 });
  // It processes frames from the camera through the wasm edge and the server.
  await page
    .waitForFunction((n) => Number(document.body.dataset.frames || 0) >= n, frames, { timeout: 120_000 })
    .catch(async () => {
      const error = await page.textContent("#error");
      throw new Error(`fewer than ${frames} frames processed (${error || "no error shown"}; ${problems.join("; ")})`);
    });
  // It shows a heatmap: drawn over the frame, with some pixels far from the plain image.
  const heatmaps = await page.evaluate(() => Number(document.body.dataset.heatmaps || 0));
  if (heatmaps < 1) {
    throw new Error("no heatmap was drawn");
  }
  const shown = await page.evaluate(() => ({
    verdict: document.getElementById("verdict").textContent,
    payload: document.getElementById("payload").textContent,
    version: document.getElementById("version").textContent,
    extract: document.getElementById("t-extract").textContent,
  }));
  await page.screenshot({ path: join(shots, "camera.png") });

  const fleet = await browser.newPage({ viewport: { width: 1200, height: 700 } });
  await fleet.goto(new URL("/fleet", url).href);
  await fleet.waitForFunction(() => Number(document.body.dataset.devices || 0) >= 1, null, { timeout: 30_000 });
  await fleet.screenshot({ path: join(shots, "fleet.png") });
  console.log(JSON.stringify({ frames: await page.evaluate(() => Number(document.body.dataset.frames)), heatmaps, shown }));
} catch (e) {
  failed = e;
} finally {
  await browser.close();
}
if (failed) {
  console.error(`e2e: ${failed.message}`);
  process.exit(1);
}
