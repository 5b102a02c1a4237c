/** The command line as a user meets it: help, JSON output, exit codes, the demo. */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { serializeNpy } from '../../src/data/npy.js';
import { saveModel } from '../../src/io/files.js';
import { buildFmnistCnn } from '../../src/models/fmnist.js';
import { cli, listFiles, randomTensor, smallConvNet, tmpDir } from '../helpers.js';

describe('mobilize CLI', () => {
  for (const cmd of ['demo', 'inspect', 'convert', 'run']) {
    it(`${cmd} --help exits 0 and describes the command`, () => {
      const r = cli([cmd, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`Usage: mobilize ${cmd}`));
    });
  }

  it('--version and --help exit 0', () => {
    assert.equal(cli(['--version']).code, 0);
    const r = cli(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /inspect/);
  });

  it('inspect --json prints exactly one JSON object with nodes and macs', () => {
    const dir = tmpDir();
    const path = join(dir, 'm.onnx');
    saveModel(smallConvNet(), path);
    const r = cli(['inspect', path, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.nodes, 5);
    assert.equal(report.macs, 4 * 64 * 27 + 20);
    assert.deepEqual(report.inputs, [{ name: 'x', dtype: 'float32', shape: ['N', 3, 8, 8] }]);
    assert.deepEqual(report.opsets, { 'ai.onnx': 13 });
  });

  it('run takes .npy inputs and writes .npy outputs', () => {
    const dir = tmpDir();
    const path = join(dir, 'm.onnx');
    saveModel(smallConvNet(), path);
    writeFileSync(join(dir, 'x.npy'), serializeNpy(randomTensor([2, 3, 8, 8])));
    const r = cli(['run', path, '--input', `x=${join(dir, 'x.npy')}`, '-o', join(dir, 'out'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(report.outputs[0].shape, [2, 5]);
    assert.deepEqual(listFiles(join(dir, 'out')), ['logits.npy']);
    const ref = cli(['run', path, '--input', `x=${join(dir, 'x.npy')}`, '--backend', 'reference', '--json']);
    assert.equal(ref.code, 0, ref.stderr);
    assert.ok(Math.abs(JSON.parse(ref.stdout).outputs[0].mean - report.outputs[0].mean) < 1e-5);
  });

  it('run --random fixes symbolic dims with --input-shape', () => {
    const dir = tmpDir();
    const path = join(dir, 'm.onnx');
    saveModel(smallConvNet(), path);
    const r = cli(['run', path, '--random', '--input-shape', 'x:3x3x8x8', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).outputs[0].shape, [3, 5]);
  });

  it('convert --external-data writes the weights beside the model', () => {
    const dir = tmpDir();
    const path = join(dir, 'm.onnx');
    saveModel(smallConvNet(), path);
    const r = cli(['convert', path, '-o', join(dir, 'out.onnx'), '--external-data', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(JSON.parse(r.stdout).output.endsWith('out.onnx'));
  });
});

describe('mobilize optimize', () => {
  it('reports nodes, op histograms and per-pass figures, and verifies on onnxruntime', () => {
    const dir = tmpDir();
    const path = join(dir, 'm.onnx');
    saveModel(smallConvNet(), path);
    const r = cli(['optimize', path, '-o', join(dir, 'o.onnx'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.nodesBefore, 5);
    assert.ok(report.nodesAfter <= 5);
    assert.equal(typeof report.opsBefore.Conv, 'number');
    assert.ok(report.passes.every((p: { name: string; rewrites: number; ms: number }) => p.name && p.rewrites >= 0 && p.ms >= 0));
    assert.equal(report.verify.checked, true);
    assert.ok(existsSync(join(dir, 'o.onnx')));
  });

  it('refuses an unknown level or pass name', () => {
    const dir = tmpDir();
    const path = join(dir, 'm.onnx');
    saveModel(smallConvNet(), path);
    const bad = cli(['optimize', path, '-o', join(dir, 'o.onnx'), '--level', 'max']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--level max: expected basic or all/);
    const pass = cli(['optimize', path, '-o', join(dir, 'o.onnx'), '--disable', 'nope']);
    assert.equal(pass.code, 2);
    assert.match(pass.stderr, /--disable nope: no such pass/);
    assert.deepEqual(listFiles(dir), ['m.onnx']);
  });
});

describe('mobilize eval', () => {
  it('reports top-1, top-5 and n as JSON', () => {
    const dir = tmpDir();
    saveModel(buildFmnistCnn(0), join(dir, 'fmnist-cnn.onnx'));
    const r = cli(['eval', join(dir, 'fmnist-cnn.onnx'), '--data', 'fashion-mnist:test', '--limit', '500', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.n, 500);
    assert.ok(report.top1 >= 0 && report.top1 <= report.top5 && report.top5 <= 1);
  });

  it('refuses a dataset that does not fit the model', () => {
    const dir = tmpDir();
    saveModel(smallConvNet(), join(dir, 'm.onnx'));
    const r = cli(['eval', join(dir, 'm.onnx'), '--data', 'fashion-mnist']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /fashion-mnist:test holds samples of shape \[1,28,28\] but the model's input "x" is float32\[N,3,8,8\]/);
  });
});
