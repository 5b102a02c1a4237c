/** `mobilize demo`, the README's main job, on a quick setting: every stage runs for real. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cli, tmpDir } from '../helpers.js';

describe('mobilize demo', () => {
  it('trains, prunes, quantizes, exports to ONNX and TFLite, verifies on both runtimes and writes a report', () => {
    const dir = tmpDir();
    const r = cli(['demo', '-o', dir, '--epochs', '1', '--limit', '6000', '--test-limit', '1000', '--json'], { timeout: 300_000 });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.ok, true);
    assert.deepEqual(
      report.stages.map((s: { stage: string }) => s.stage),
      ['trained fp32', 'pruned fp32', 'pruned int8', 'TFLite fp32', 'TFLite int8'],
    );
    const [trained, pruned, int8, tfFp32, tfInt8] = report.stages;
    // Learned something on 6000 images, and every later stage kept it.
    assert.ok(trained.top1 > 0.6, `trained top-1 ${trained.top1}`);
    for (const s of [pruned, int8, tfFp32, tfInt8]) assert.ok(s.top1 > trained.top1 - 0.02, `${s.stage} top-1 ${s.top1}`);
    // Half the MACs are gone; int8 shrinks the files about 4x.
    assert.ok(pruned.macs <= 0.55 * trained.macs && pruned.macs >= 0.4 * trained.macs);
    assert.ok(int8.bytes < 0.45 * pruned.bytes);
    assert.ok(tfInt8.bytes < 0.4 * tfFp32.bytes);
    // pruning and int8 cost little; the TFLite files follow onnxruntime (fp32 to 1e-4 of the scale, int8 within 0.2 pt).
    assert.deepEqual(
      report.checks.map((c: { ok: boolean }) => c.ok),
      [true, true, true, true],
    );
    for (const f of [
      'fmnist-cnn.onnx',
      'fmnist-cnn.pruned.onnx',
      'fmnist-cnn.pruned.int8.onnx',
      'fmnist-cnn.mobile.onnx',
      'fmnist-cnn.pruned.tflite',
      'fmnist-cnn.pruned.int8.tflite',
    ]) {
      assert.ok(existsSync(join(dir, f)), f);
    }
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    assert.match(html, /TFLite int8/);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')).stages, report.stages);
  });

  it('refuses a bad flag with exit 2 and one line', () => {
    const r = cli(['demo', '--epochs', '0']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--epochs 0: expected a whole number ≥ 1/);
  });
});
