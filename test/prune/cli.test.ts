/**
 * `mobilize prune` from the command line: bad input gets one line and exit code 2 with nothing
 * written (no prunable layer, a ratio outside (0, 1), a pattern like 3:2, a cut that would empty
 * a layer, a truncated file); a good run prints one JSON object with --json.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { cli, listFiles, smallConvNet, tmpDir } from '../helpers.js';
import { resnetBlock } from './architectures.js';

/** Runs the built CLI's `mobilize prune …` (npm test builds it first). */
async function prune(args: string[]) {
  return cli(['prune', ...args]);
}

function setup() {
  const dir = tmpDir('mobilize-prune-');
  const conv = join(dir, 'conv.onnx');
  writeFileSync(conv, writeOnnx(smallConvNet()).model);
  const b = new ModelBuilder({ opset: 17 });
  b.output(b.op('Relu', [b.input('x', 'float32', ['N', 4])]), 'y');
  const relu = join(dir, 'relu.onnx');
  writeFileSync(relu, writeOnnx(b.build()).model);
  const truncated = join(dir, 'truncated.onnx');
  writeFileSync(truncated, readFileSync(conv).subarray(0, 200));
  return { dir, conv, relu, truncated, out: join(dir, 'out.onnx') };
}

describe('mobilize prune: bad input', () => {
  const f = setup();
  const before = listFiles(f.dir);
  const cases: Array<[string, string[], RegExp]> = [
    ['no prunable layer (filters)', [f.relu, '-o', f.out, '--method', 'l1-filter', '--sparsity', '0.5'], /no prunable layer/],
    ['no prunable layer (weights)', [f.relu, '-o', f.out, '--method', 'magnitude', '--sparsity', '0.5'], /no prunable layer/],
    [
      'ratio above 1',
      [f.conv, '-o', f.out, '--method', 'magnitude', '--sparsity', '1.5'],
      /--sparsity 1\.5: expected a fraction strictly between 0 and 1/,
    ],
    ['ratio 0', [f.conv, '-o', f.out, '--method', 'l1-filter', '--flops', '0'], /--flops 0: expected a fraction/],
    ['pattern 3:2', [f.conv, '-o', f.out, '--method', 'nm', '--pattern', '3:2'], /--pattern 3:2: expected N:M with 0 < N < M/],
    [
      'every channel of a layer',
      [f.conv, '-o', f.out, '--method', 'l1-filter', '--sparsity', '0.99'],
      /would remove all 4 channels of .*conv/,
    ],
    [
      'both --sparsity and --flops',
      [f.conv, '-o', f.out, '--method', 'l1-filter', '--sparsity', '0.5', '--flops', '0.5'],
      /one of --sparsity/,
    ],
    ['unknown method', [f.conv, '-o', f.out, '--method', 'random', '--sparsity', '0.5'], /--method random/],
    ['truncated file', [f.truncated, '-o', f.out, '--method', 'l1-filter', '--sparsity', '0.5'], /truncated\.onnx/],
    ['output over the input', [f.conv, '-o', f.conv, '--method', 'l1-filter', '--sparsity', '0.5'], /overwrite the input/],
  ];
  for (const [name, args, message] of cases) {
    it(`${name}: one line, exit 2, nothing written`, async () => {
      const r = await prune(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.equal(r.stdout, '');
      assert.deepEqual(listFiles(f.dir), before);
    });
  }
});

describe('mobilize prune: runs', () => {
  it('l1-filter --flops with --json prints one object and writes a smaller model', async () => {
    const dir = tmpDir('mobilize-prune-');
    const input = join(dir, 'resnet.onnx');
    writeFileSync(input, writeOnnx(resnetBlock()).model);
    const out = join(dir, 'pruned.onnx');
    const r = await prune([input, '-o', out, '--method', 'l1-filter', '--flops', '0.4', '--latency-runs', '3', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.ok(report.after.macs <= 0.6 * report.before.macs);
    assert.ok(report.after.params < report.before.params);
    assert.ok(report.after.bytes < report.before.bytes);
    assert.equal(typeof report.after.latencyMs, 'number');
    assert.ok(report.filter.layers.some((l: { kept: number; channels: number }) => l.kept < l.channels));
    assert.deepEqual(listFiles(dir), ['pruned.onnx', 'resnet.onnx']);
  });

  it('--help lists the methods', async () => {
    const r = await prune(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /l1-filter/);
    assert.match(r.stdout, /--flops/);
  });
});
