/** The library core must bundle for browsers: no Node-only module may be reachable from src/browser.ts. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { build } from 'esbuild';
import { ROOT } from '../helpers.js';

describe('browser bundle', () => {
  it('bundles src/browser.ts for the browser without Node modules', async () => {
    const result = await build({
      entryPoints: [`${ROOT}/src/browser.ts`],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      metafile: true,
    });
    assert.deepEqual(result.errors, []);
    const inputs = Object.keys(result.metafile.inputs);
    const nodeOnly = inputs.filter((f) => /^src\/(cli|io)\/|^src\/runtime\/node|^src\/pipeline\/demo|^src\/data\/fashion-mnist/.test(f));
    assert.deepEqual(nodeOnly, []);
    assert.ok(inputs.some((f) => f.endsWith('src/formats/onnx/read.ts')));
  });
});
