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
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FashionMnist } from '../../src/data/fashion-mnist.js';
import { ROOT } from '../helpers.js';
import { type PageServer, servePage, withPage } from './browser/harness.js';

const SAMPLES = 64;

describe('training in the browser (onnxruntime-web in headless Chromium)', () => {
  let server: PageServer;

  before(async () => {
    server = await servePage({
      entry: { file: join(ROOT, 'test/e2e/browser/train-entry.ts') },
      title: 'mobilize training',
      folders: { '/ort/': join(ROOT, 'node_modules/onnxruntime-web/dist') },
    });
  });

  after(async () => {
    await server?.close();
  });

  it('trains fmnist-cnn for 30 steps and the loss falls', { timeout: 180_000 }, async () => {
    const train = new FashionMnist('train');
    const pixels = Array.from(train.pixels.subarray(0, SAMPLES * 784));
    const labels = Array.from(train.labels.subarray(0, SAMPLES));
    await withPage(server.url, async (page, errors) => {
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
    });
  });
});
