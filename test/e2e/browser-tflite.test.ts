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
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadTflite } from '../../src/runtime/tflite.js';
import { ROOT } from '../helpers.js';
import { type PageServer, servePage, withPage } from './browser/harness.js';

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
  let server: PageServer;

  before(async () => {
    server = await servePage({
      entry: { stdin: { contents: ENTRY, resolveDir: ROOT, loader: 'ts' } },
      title: 'mobilize tflite',
      folders: { '/wasm/': WASM_DIR },
      files: { '/model.tflite': MODEL },
    });
  });

  after(async () => {
    await server?.close();
  });

  it('runs MediaPipe face detection and gives what the Node runner gives', { timeout: 120_000 }, async () => {
    const result = await withPage(server.url, async (page, errors) => {
      await page.waitForFunction(() => 'runTflite' in globalThis, undefined, { timeout: 30_000 });
      const r = (await page.evaluate(
        (modelUrl) => (globalThis as unknown as { runTflite: (u: string) => Promise<unknown> }).runTflite(modelUrl),
        '/model.tflite',
      )) as { build: string; inputs: Array<{ name: string; shape: number[] }>; outputs: Record<string, number[]> };
      assert.deepEqual(errors, []);
      return r;
    });
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
