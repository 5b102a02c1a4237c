/**
 * The same TFLite runner in a browser: src/runtime/tflite-web.ts bundled with esbuild, the
 * interpreter's WASM files and a MediaPipe model served from localhost (nothing is fetched from
 * the internet), run in headless Chromium; the outputs must equal those the Node runner gives
 * for the same input.
 *
 * Needs Debian's chromium (scripts/setup.sh --test installs it): without it the test fails and
 * says so, rather than skipping.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { loadTflite } from '../../src/runtime/tflite.js';
import { ROOT } from '../helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const WASM_DIR = join(ROOT, 'node_modules/@tensorflow/tfjs-tflite/wasm');
const MODEL = join(ROOT, 'node_modules/@mediapipe/face_detection/face_detection_short_range.tflite');

/** The page's entry: load the model through the web runner and run it on a fixed smooth input. */
const ENTRY = `
import { loadTfliteWeb } from './src/runtime/tflite-web.ts';
globalThis.runTflite = async (modelUrl) => {
  const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
  const runner = await loadTfliteWeb(bytes, '/wasm/');
  const input = runner.inputs[0];
  const n = input.shape.reduce((a, b) => a * b, 1);
  const out = await runner.run({ [input.name]: Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.013)) });
  const result = { build: runner.build, inputs: runner.inputs, outputs: Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Array.from(t.data)])) };
  runner.dispose();
  return result;
};
`;

describe('TFLite runner in the browser (headless Chromium)', () => {
  let server: Server;
  let url: string;
  const profile = mkdtempSync(join(tmpdir(), 'mobilize-chromium-'));

  before(async () => {
    const bundle = await build({
      stdin: { contents: ENTRY, resolveDir: ROOT, loader: 'ts' },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
    });
    const js = bundle.outputFiles[0].contents;
    const page = '<!doctype html><meta charset="utf-8"><title>mobilize tflite</title><script type="module" src="/bundle.js"></script>';
    server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      let body: Uint8Array | string | undefined;
      let type = 'text/html';
      if (path === '/') body = page;
      else if (path === '/bundle.js') {
        body = js;
        type = 'text/javascript';
      } else if (path === '/model.tflite') {
        body = readFileSync(MODEL);
        type = 'application/octet-stream';
      } else if (path.startsWith('/wasm/') && existsSync(join(WASM_DIR, basename(path)))) {
        body = readFileSync(join(WASM_DIR, basename(path)));
        type = path.endsWith('.wasm') ? 'application/wasm' : 'text/javascript';
      }
      if (body === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': type }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });

  after(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    rmSync(profile, { recursive: true, force: true });
  });

  it('runs MediaPipe face detection and gives what the Node runner gives', { timeout: 120_000 }, async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `Chromium is not installed at ${CHROMIUM}; the browser test needs it: run scripts/setup.sh --test (or apt-get install chromium)`,
    );
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    });
    let result: { build: string; inputs: Array<{ name: string; shape: number[] }>; outputs: Record<string, number[]> };
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.route(/^(?!http:\/\/127\.0\.0\.1:)/, (route) => route.abort());
      await page.goto(url);
      await page.waitForFunction(() => 'runTflite' in globalThis, undefined, { timeout: 30_000 });
      result = (await page.evaluate(
        (modelUrl) => (globalThis as unknown as { runTflite: (u: string) => Promise<unknown> }).runTflite(modelUrl),
        '/model.tflite',
      )) as typeof result;
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
    assert.equal(result.build, 'simd');
    assert.deepEqual(result.inputs[0].shape, [1, 128, 128, 3]);
    const node = await loadTflite(new Uint8Array(readFileSync(MODEL)));
    try {
      const out = await node.run({ input: Float32Array.from({ length: 128 * 128 * 3 }, (_, i) => Math.sin(i * 0.013)) });
      assert.deepEqual(Object.keys(result.outputs).sort(), Object.keys(out).sort());
      for (const [name, t] of Object.entries(out)) {
        const web = result.outputs[name];
        const mine = Array.from(t.data as Float32Array);
        assert.equal(web.length, mine.length);
        let worst = 0;
        for (let i = 0; i < mine.length; i++) worst = Math.max(worst, Math.abs(web[i] - mine[i]));
        assert.ok(worst <= 1e-5, `${name}: browser and Node differ by ${worst}`);
      }
    } finally {
      node.dispose();
    }
  });
});
