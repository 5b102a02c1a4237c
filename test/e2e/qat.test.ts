/**
 * `mobilize qat` end to end on small subsets: a QDQ model with int8 per-channel weights and int32
 * biases that `mobilize eval` takes, accuracies of the float, PTQ and QAT models in the JSON, and
 * one-line refusals of bad input. Also `--help` of the training commands.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { FashionMnist } from '../../src/data/fashion-mnist.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import { loadModel } from '../../src/io/files.js';
import { buildFmnistCnn } from '../../src/models/fmnist.js';
import type { OrtModule } from '../../src/runtime/ort.js';
import { train } from '../../src/train/trainer.js';
import { type CliResult, cli, tmpDir } from '../helpers.js';

function json(r: CliResult): Record<string, unknown> {
  assert.equal(r.code, 0, `exit code (stderr: ${r.stderr})`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

function expectOneLine(r: CliResult, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr}, stdout: ${r.stdout})`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line:\n${r.stderr}`);
  assert.match(lines[0], pattern);
}

describe('mobilize qat', () => {
  const dir = tmpDir();
  const float = join(dir, 'float.onnx');
  const out = join(dir, 'qat.onnx');
  let report: Record<string, unknown>;

  before(async () => {
    const trained = await train({
      ort: ort as unknown as OrtModule,
      model: buildFmnistCnn(1),
      data: new FashionMnist('train'),
      epochs: 1,
      limit: 1024,
      batchSize: 64,
      lr: 0.01,
    });
    writeFileSync(float, writeOnnx(trained.model).model);
    report = json(cli(['qat', float, '--limit', '512', '--test-limit', '500', '--batch', '64', '--calib-size', '64', '-o', out, '--json']));
  });

  it('writes a QDQ model: int8 per-channel weights, int32 biases, int8 activations', () => {
    const m = loadModel(out);
    const dqs = m.graph.nodes.filter((n) => n.opType === 'DequantizeLinear');
    const consts = dqs.map((n) => n.input(0)?.initializer).filter((t) => t !== undefined);
    assert.equal(consts.filter((t) => t.dtype === 'int8' && t.size > 1).length, 3, 'three int8 weights');
    assert.equal(consts.filter((t) => t.dtype === 'int32').length, 3, 'three int32 biases');
    for (const n of dqs.filter((x) => x.input(0)?.initializer?.dtype === 'int8')) {
      assert.ok((n.input(1)?.initializer?.size ?? 0) > 1, `${n.describe()} has per-channel scales`);
    }
    const activations = m.graph.nodes.filter((n) => n.opType === 'QuantizeLinear');
    assert.ok(activations.length >= 4);
    for (const q of activations) assert.equal(q.input(2)?.initializer?.dtype, 'int8', `${q.describe()} quantizes to int8`);
    assert.ok(!m.graph.nodes.some((n) => n.opType === 'BatchNormalization'), 'BatchNormalization folded');
  });

  it('reports float, PTQ and QAT accuracy, and eval measures the same QAT accuracy', () => {
    const acc = report.accuracy as { float: number; ptq: number; qat: number };
    for (const k of ['float', 'ptq', 'qat'] as const) assert.ok(acc[k] > 0.5 && acc[k] <= 1, `${k} accuracy ${acc[k]}`);
    assert.equal(report.scheme, 'int8');
    assert.equal(report.steps, 8);
    const e = json(cli(['eval', out, '--data', 'fashion-mnist', '--limit', '500', '--json']));
    assert.equal(e.top1, acc.qat);
  });

  it('refuses bad input in one line, writing nothing', () => {
    const bad = join(dir, 'bad.onnx');
    expectOneLine(
      cli(['qat', out, '--limit', '64', '-o', bad]),
      2,
      /already quantized \(QDQ\); quantization-aware training starts from the float model/,
    );
    expectOneLine(cli(['qat', float, '--scheme', 'int4', '-o', bad]), 2, /--scheme int4: quantization-aware training takes int8 or uint8/);
    expectOneLine(cli(['qat', float, '-o', float]), 2, /overwrite|input/);
    expectOneLine(cli(['qat', join(dir, 'missing.onnx'), '-o', bad]), 2, /missing\.onnx/);
    assert.ok(!existsSync(bad));
  });
});

describe('training commands: --help', () => {
  for (const command of ['train', 'distill', 'qat']) {
    it(`${command} --help`, () => {
      const r = cli([command, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`Usage: mobilize ${command} `));
      assert.match(r.stdout, /--json/);
      assert.match(r.stdout, /-o, --output <file>/);
    });
  }
});
