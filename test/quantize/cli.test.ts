/**
 * `mobilize quantize`, `compare` and `bench` as a user runs them, and the bad input each must
 * refuse in one line with exit code 2, writing nothing.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { serializeNpy } from '../../src/data/npy.js';
import { saveModel } from '../../src/io/files.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { type CliResult, cli, listFiles, ROOT, smallConvNet, tmpDir } from '../helpers.js';
import { uniform } from './helpers.js';

/** A folder with the small conv net (input x: N×3×8×8) and calibration data for it. */
function fixture(): { dir: string; model: string; calib: string } {
  const dir = tmpDir();
  const model = join(dir, 'm.onnx');
  saveModel(smallConvNet(), model);
  const calib = join(dir, 'calib.npy');
  writeFileSync(calib, serializeNpy(uniform([24, 3, 8, 8], 1, 5)));
  return { dir, model, calib };
}

function expectBadInput(r: CliResult, pattern: RegExp): void {
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line:\n${r.stderr}`);
  assert.match(lines[0], pattern);
}

describe('mobilize quantize, compare, bench', () => {
  for (const cmd of ['quantize', 'compare', 'bench']) {
    it(`${cmd} --help describes the command`, () => {
      const r = cli([cmd, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`Usage: mobilize ${cmd}`));
    });
  }

  it('quantize writes a QDQ model and reports what it did; compare and bench read it', () => {
    const { dir, model, calib } = fixture();
    const out = join(dir, 'q.onnx');
    const q = cli(['quantize', model, '-o', out, '--calib', calib, '--calib-size', '16', '--json']);
    assert.equal(q.code, 0, q.stderr);
    const report = JSON.parse(q.stdout);
    assert.equal(report.scheme, 'uint8');
    assert.deepEqual(report.quantized, { Conv: 1, Gemm: 1 });
    assert.equal(report.calibration.samples, 16);
    assert.equal(report.tensors.absorbed, 1);
    assert.ok(report.weightBytes.after < report.weightBytes.before);
    assert.deepEqual(listFiles(dir), ['calib.npy', 'm.onnx', 'q.onnx']);

    const c = cli(['compare', model, out, '--data', calib, '--per-layer', '--json']);
    assert.equal(c.code, 0, c.stderr);
    const cmp = JSON.parse(c.stdout);
    assert.equal(cmp.samples, 24);
    assert.equal(cmp.outputs[0].name, 'logits');
    assert.ok(cmp.outputs[0].sqnrDb > 20, `SQNR ${cmp.outputs[0].sqnrDb}`);
    assert.ok(cmp.outputs[0].top1Agreement > 0.8);
    assert.ok(cmp.layers.length >= 3);
    // Worst first.
    for (let i = 1; i < cmp.layers.length; i++) assert.ok(cmp.layers[i - 1].sqnrDb <= cmp.layers[i].sqnrDb);
    // A quality gate: exit 1 below the SQNR asked for.
    const gate = cli(['compare', model, out, '--data', calib, '--min-sqnr', '200']);
    assert.equal(gate.code, 1, gate.stderr);
    assert.match(gate.stderr, /SQNR below 200 dB: logits/);

    const b = cli(['bench', model, out, '--runs', '5', '--warmup', '1', '--threads', '1', '--json']);
    assert.equal(b.code, 0, b.stderr);
    const bench = JSON.parse(b.stdout);
    assert.equal(bench.results.length, 2);
    assert.ok(bench.results.every((r: { medianMs: number; p90Ms: number }) => r.medianMs > 0 && r.p90Ms >= r.medianMs));
    assert.equal(bench.results[0].ratio, 1);
    assert.ok(bench.peakRssMB > 10);
  });

  it('quantize prints a readable summary, with --scheme int8, --per-tensor and a histogram method', () => {
    const { dir, model, calib } = fixture();
    const r = cli([
      'quantize',
      model,
      '-o',
      join(dir, 'q8.onnx'),
      '--calib',
      calib,
      '--scheme',
      'int8',
      '--per-tensor',
      '--calib-method',
      'entropy',
      '--calib-size',
      '8',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /int8 \(int8 activations, int8 weights per tensor\), calibrated on .*calib\.npy \(8 samples, entropy\)/);
    assert.match(r.stdout, /quantized: Conv 1, Gemm 1/);
    assert.match(r.stdout, /wrote .*q8\.onnx/);
  });

  it('a trained Fashion-MNIST CNN loses at most 0.5 pt of top-1 (2000 test images)', () => {
    const dir = tmpDir();
    const fp32 = join(ROOT, 'bench/fixtures/fmnist_cnn_trained.onnx');
    const out = join(dir, 'q.onnx');
    const q = cli(['quantize', fp32, '-o', out, '--calib', 'fashion-mnist', '--calib-size', '256', '--json']);
    assert.equal(q.code, 0, q.stderr);
    const c = cli(['compare', fp32, out, '--data', 'fashion-mnist:test', '--limit', '2000', '--json']);
    assert.equal(c.code, 0, c.stderr);
    const { accuracy, outputs } = JSON.parse(c.stdout);
    assert.ok(accuracy.a > 0.88, `float top-1 ${accuracy.a}`);
    assert.ok(accuracy.a - accuracy.b <= 0.005, `top-1 ${accuracy.a} → ${accuracy.b}`);
    assert.ok(outputs[0].top1Agreement > 0.98);
  });
});

describe('quantize refuses bad input: one line, exit 2, nothing written', () => {
  it('calibration data whose sample shape does not match the model input', () => {
    const { dir, model } = fixture();
    const bad = join(dir, 'bad.npy');
    writeFileSync(bad, serializeNpy(uniform([4, 3, 9, 9], 1, 1)));
    expectBadInput(
      cli(['quantize', model, '-o', join(dir, 'q.onnx'), '--calib', bad]),
      /bad\.npy holds samples of shape \[3,9,9\] but the model's input "x" is float32\[N,3,8,8\]/,
    );
    assert.deepEqual(listFiles(dir), ['bad.npy', 'calib.npy', 'm.onnx']);
  });

  it('calibration data of the wrong element type', () => {
    const { dir, model } = fixture();
    const bad = join(dir, 'ints.npy');
    writeFileSync(bad, serializeNpy(Tensor.from('int32', [2, 3, 8, 8], new Int32Array(384))));
    expectBadInput(
      cli(['quantize', model, '-o', join(dir, 'q.onnx'), '--calib', bad]),
      /ints\.npy holds int32 data but the model's input "x" is float32/,
    );
    assert.deepEqual(listFiles(dir), ['calib.npy', 'ints.npy', 'm.onnx']);
  });

  it('an empty image folder', () => {
    const { dir, model } = fixture();
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    expectBadInput(cli(['quantize', model, '-o', join(dir, 'q.onnx'), '--calib', empty]), /empty: no images found/);
    assert.deepEqual(listFiles(dir), ['calib.npy', 'empty', 'm.onnx']);
  });

  it('an image that cannot be read', async () => {
    const { dir, model } = fixture();
    const images = join(dir, 'images');
    mkdirSync(images);
    await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 200, g: 10, b: 10 } } })
      .png()
      .toFile(join(images, 'a.png'));
    writeFileSync(join(images, 'b.png'), 'this is not a png');
    expectBadInput(cli(['quantize', model, '-o', join(dir, 'q.onnx'), '--calib', images]), /b\.png: cannot read the image/);
    assert.deepEqual(listFiles(dir), ['calib.npy', 'images', 'm.onnx']);
  });

  it('a model with no quantizable op', () => {
    const dir = tmpDir();
    const b = new ModelBuilder({ opset: 13 });
    b.output(b.op('Relu', [b.input('x', 'float32', ['N', 4])]), 'y');
    const model = join(dir, 'relu.onnx');
    saveModel(b.build(), model);
    const calib = join(dir, 'calib.npy');
    writeFileSync(calib, serializeNpy(uniform([4, 4], 1, 1)));
    expectBadInput(
      cli(['quantize', model, '-o', join(dir, 'q.onnx'), '--calib', calib]),
      /nothing to quantize: the model has no Conv, ConvTranspose, Gemm or MatMul/,
    );
    assert.deepEqual(listFiles(dir), ['calib.npy', 'relu.onnx']);
  });

  it('an unknown scheme, an unknown calibration method, missing calibration data', () => {
    const { dir, model, calib } = fixture();
    const out = join(dir, 'q.onnx');
    expectBadInput(
      cli(['quantize', model, '-o', out, '--calib', calib, '--scheme', 'int3']),
      /--scheme int3: no such scheme; the schemes are uint8, int8/,
    );
    expectBadInput(
      cli(['quantize', model, '-o', out, '--calib', calib, '--calib-method', 'magic']),
      /--calib-method magic: expected one of minmax, percentile, entropy, mse/,
    );
    expectBadInput(cli(['quantize', model, '-o', out]), /give calibration data with --calib/);
    expectBadInput(cli(['quantize', model, '-o', model, '--calib', calib]), /m\.onnx/);
    assert.deepEqual(listFiles(dir), ['calib.npy', 'm.onnx']);
  });

  it('compare --per-layer needs a float model and its QDQ version', () => {
    const { model, calib } = fixture();
    expectBadInput(
      cli(['compare', model, model, '--data', calib, '--per-layer']),
      /--per-layer compares a float model with its QDQ version/,
    );
  });
});
