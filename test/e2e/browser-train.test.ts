/**
 * Training in the browser: the same training graph and loop, on onnxruntime-web in headless
 * Chromium. The test bundles test/e2e/browser/train-entry.ts with esbuild, serves it and
 * onnxruntime-web's WASM files from localhost (nothing is fetched from the internet), hands a
 * small batch of Fashion-MNIST to the page, trains fmnist-cnn for a few dozen steps there and
 * checks that the loss falls.
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
import { FashionMnist } from '../../src/data/fashion-mnist.js';
import { ROOT } from '../helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ORT_DIST = join(ROOT, 'node_modules/onnxruntime-web/dist');
const SAMPLES = 64;

const TYPES: Record<string, string> = {
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.html': 'text/html',
};

function contentType(path: string): string {
  const dot = path.lastIndexOf('.');
  return TYPES[path.slice(dot)] ?? 'application/octet-stream';
}

describe('training in the browser (onnxruntime-web in headless Chromium)', () => {
  let server: Server;
  let url: string;
  const profile = mkdtempSync(join(tmpdir(), 'mobilize-chromium-'));

  before(async () => {
    const bundle = await build({
      entryPoints: [join(ROOT, 'test/e2e/browser/train-entry.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
    });
    const js = bundle.outputFiles[0].contents;
    const page = '<!doctype html><meta charset="utf-8"><title>mobilize training</title><script type="module" src="/bundle.js"></script>';
    server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      let body: Uint8Array | string | undefined;
      let type = 'text/html';
      if (path === '/') body = page;
      else if (path === '/bundle.js') {
        body = js;
        type = 'text/javascript';
      } else if (path.startsWith('/ort/') && existsSync(join(ORT_DIST, basename(path)))) {
        body = readFileSync(join(ORT_DIST, basename(path)));
        type = contentType(path);
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

  it('trains fmnist-cnn for 30 steps and the loss falls', { timeout: 180_000 }, async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `Chromium is not installed at ${CHROMIUM}; the browser test needs it: run scripts/setup.sh --test (or apt-get install chromium)`,
    );
    const train = new FashionMnist('train');
    const pixels = Array.from(train.pixels.subarray(0, SAMPLES * 784));
    const labels = Array.from(train.labels.subarray(0, SAMPLES));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    });
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      // Everything the page loads comes from the test's server.
      await page.route(/^(?!http:\/\/127\.0\.0\.1:)/, (route) => route.abort());
      await page.goto(url);
      await page.waitForFunction(() => 'mobilizeTrain' in globalThis, undefined, { timeout: 30_000 });
      const result = (await page.evaluate(
        (job) => (globalThis as unknown as { mobilizeTrain: (j: typeof job) => Promise<unknown> }).mobilizeTrain(job),
        { pixels, labels, epochs: 15, batchSize: 32 },
      )) as { losses: number[]; accuracies: number[]; stepMs: number };
      assert.deepEqual(errors, []);
      const { losses, accuracies } = result;
      console.log(
        `browser: epoch losses ${losses.map((l) => l.toFixed(3)).join(' ')}; ${result.stepMs.toFixed(1)} ms a step (batch 32, 1 WASM thread)`,
      );
      assert.equal(losses.length, 15);
      assert.ok(losses.every(Number.isFinite));
      assert.ok(losses[14] < 0.5 * losses[0], `the loss falls: ${losses[0]} → ${losses[14]}`);
      assert.ok(accuracies[14] > accuracies[0]);
    } finally {
      await context.close();
    }
  });
});
