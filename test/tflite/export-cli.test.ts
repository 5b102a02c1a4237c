/**
 * `mobilize export` and `mobilize verify` as a user meets them: a small conv net exported to
 * TFLite (fp32 with NCHW and NHWC I/O, int8 calibrated on an .npy) and to ONNX, each verified on
 * the real runtime; a wrong reference fails with exit 1; bad flags, an op TFLite has no builtin
 * for and hostile files are one line, exit 2, nothing written.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { zipSync } from 'fflate';
import { serializeNpy } from '../../src/data/npy.js';
import { saveModel } from '../../src/io/files.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { buildFmnistCnn } from '../../src/models/fmnist.js';
import { cli, listFiles, randomTensor, smallConvNet, tmpDir } from '../helpers.js';

const dir = tmpDir('mobilize-tflite-cli-');
const model = join(dir, 'small.onnx');
const other = join(dir, 'other.onnx');
const calib = join(dir, 'calib.npy');
const labelled = join(dir, 'labelled.npz');

function oneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(stderr, /\n\s+at /);
}

describe('mobilize export / verify (TFLite)', () => {
  before(() => {
    saveModel(smallConvNet(1), model);
    saveModel(smallConvNet(2), other);
    writeFileSync(calib, serializeNpy(randomTensor([16, 3, 8, 8], 5)));
    const labels = Tensor.from(
      'int64',
      [16],
      Array.from({ length: 16 }, (_, i) => i % 5),
    );
    writeFileSync(labelled, zipSync({ 'inputs.npy': serializeNpy(randomTensor([16, 3, 8, 8], 9)), 'labels.npy': serializeNpy(labels) }));
  });

  for (const cmd of ['export', 'verify']) {
    it(`${cmd} --help exits 0 and describes the command`, () => {
      const r = cli([cmd, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`Usage: mobilize ${cmd}`));
    });
  }

  it('exports fp32 TFLite, verifies it on the interpreter, and reports it as one JSON object', () => {
    const out = join(dir, 'small.tflite');
    const r = cli(['export', model, '--target', 'tflite', '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    const bytes = readFileSync(out);
    assert.equal(bytes.subarray(4, 8).toString(), 'TFL3');
    assert.equal(report.bytes, bytes.length);
    assert.equal(report.target, 'tflite');
    assert.equal(report.precision, 'fp32');
    assert.equal(report.tflite.opHistogram.CONV_2D, 1);
    assert.equal(report.tflite.opHistogram.FULLY_CONNECTED, 1);
    assert.match(report.notes.join(' '), /batch dim N fixed to 1/);
    assert.equal(report.verify.runtime, 'tflite');
    assert.equal(report.verify.passed, true);
    assert.ok(report.verify.worst <= 1e-4, `worst ${report.verify.worst}`);
    assert.ok(report.verify.tflite.outputs[0].cosine > 0.99999);
    assert.ok(report.ms.total > 0);

    // The standalone verify agrees, and prints a readable table.
    const v = cli(['verify', out, '--reference', model]);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /logits .* ok/);
    // On labelled data both models' accuracies are reported (equal: the export is exact).
    const d = cli(['verify', out, '--reference', model, '--data', labelled, '--json']);
    assert.equal(d.code, 0, d.stderr);
    const dv = JSON.parse(d.stdout);
    assert.equal(dv.samples, 16);
    assert.match(dv.source, /labelled\.npz$/);
    assert.equal(dv.accuracy.tflite, dv.accuracy.reference);
    assert.ok(dv.accuracy.tflite > 0 && dv.accuracy.tflite < 1, `accuracy ${dv.accuracy.tflite}`);
    // Against another model it fails the check: exit 1, one line naming both files.
    const bad = cli(['verify', out, '--reference', other, '--json']);
    assert.equal(bad.code, 1, bad.stderr);
    assert.equal(JSON.parse(bad.stdout).passed, false);
    oneLine(bad.stderr, /small\.tflite does not match .*other\.onnx: logits off by/);
  });

  it('with --io nhwc the file has no TRANSPOSE and takes NHWC input', () => {
    const out = join(dir, 'small-nhwc.tflite');
    const r = cli(['export', model, '--target', 'tflite', '--io', 'nhwc', '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.tflite.transposes, 0);
    assert.equal(report.verify.passed, true);
    assert.deepEqual(report.verify.tflite.inputs[0], { tflite: 'x', reference: 'x', transposed: true });
  });

  it('exports full int8 calibrated on an .npy; int8 I/O is (de)quantized by verify', () => {
    const out = join(dir, 'small-int8.tflite');
    const r = cli([
      'export',
      model,
      '--target',
      'tflite',
      '--precision',
      'int8',
      '--calib',
      calib,
      '--io-type',
      'int8',
      '-o',
      out,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.precision, 'int8');
    assert.equal(report.verify.passed, true, JSON.stringify(report.verify.tflite?.outputs));
    assert.match(report.verify.tflite.source, /calib\.npy$/);
    assert.equal(report.verify.tflite.inputs[0].quantized.dtype, 'int8');
    assert.ok(report.verify.tflite.outputs[0].cosine > 0.99, `cosine ${report.verify.tflite.outputs[0].cosine}`);
  });

  it('exports optimized ONNX for onnxruntime Mobile, verified on onnxruntime', () => {
    const out = join(dir, 'small.opt.onnx');
    const r = cli(['export', model, '--target', 'onnx', '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.verify.runtime, 'onnxruntime');
    assert.equal(report.verify.passed, true);
    assert.equal(report.bytes, readFileSync(out).length);
  });

  it('refuses bad flags and an output that is the input, writing nothing', () => {
    const clean = tmpDir('mobilize-tflite-bad-');
    const out = join(clean, 'x.tflite');
    const cases: Array<[string[], RegExp]> = [
      [['--target', 'coreml'], /--target coreml: expected tflite, onnx/],
      [['--target', 'tflite', '--precision', 'int4'], /--precision int4: expected fp32, fp16, dynamic, int8/],
      [['--target', 'tflite', '--io', 'nwhc'], /--io nwhc: expected nchw, nhwc/],
      [['--target', 'tflite', '--io-type', 'int8'], /--io-type int8 needs --precision int8/],
      [['--target', 'tflite', '--precision', 'int8'], /int8 export needs calibration data \(--calib\)/],
      [['--target', 'onnx', '--precision', 'fp16'], /--precision fp16 is for --target tflite/],
    ];
    for (const [flags, pattern] of cases) {
      const r = cli(['export', model, ...flags, '-o', out]);
      assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
      oneLine(r.stderr, pattern);
    }
    const same = cli(['export', model, '--target', 'onnx', '-o', model]);
    assert.equal(same.code, 2);
    oneLine(same.stderr, /would overwrite the input/);
    assert.deepEqual(listFiles(clean), []);
  });

  it('verifies an int8 export of the Fashion-MNIST CNN on the real test images, with both accuracies', () => {
    const path = join(dir, 'fmnist.onnx');
    saveModel(buildFmnistCnn(3), path);
    const out = join(dir, 'fmnist-int8.tflite');
    const e = cli([
      'export',
      path,
      '--target',
      'tflite',
      '--precision',
      'int8',
      '--calib',
      'fashion-mnist:train',
      '--calib-size',
      '64',
      '--verify-size',
      '50',
      '-o',
      out,
      '--json',
    ]);
    assert.equal(e.code, 0, e.stderr);
    assert.equal(JSON.parse(e.stdout).verify.tflite.samples, 50);
    const r = cli(['verify', out, '--reference', path, '--data', 'fashion-mnist:test', '--limit', '300', '--tolerance', '1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const v = JSON.parse(r.stdout);
    assert.equal(v.samples, 300);
    assert.equal(v.source, 'fashion-mnist:test');
    assert.ok(v.accuracy, 'labelled data gives both accuracies');
    // An untrained net: accuracies near chance, but int8 must make the same calls almost always.
    assert.ok(v.outputs[0].top1Agreement > 0.9, `top-1 agreement ${v.outputs[0].top1Agreement}`);
    assert.ok(Math.abs(v.accuracy.tflite - v.accuracy.reference) <= 0.05, JSON.stringify(v.accuracy));
    assert.ok(v.outputs[0].sqnrDb > 15, `SQNR ${v.outputs[0].sqnrDb}`);
  });

  it('names the node whose op has no TFLite builtin, exit 2, nothing written', () => {
    const clean = tmpDir('mobilize-tflite-op-');
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [1, 4, 4]);
    b.output(b.op('Det', [b.op('Relu', [x], {}, { name: 'relu' })], {}, { name: 'the_det' }), 'y');
    const path = join(clean, 'det.onnx');
    saveModel(b.build(), path);
    const r = cli(['export', path, '--target', 'tflite', '-o', join(clean, 'det.tflite')]);
    assert.equal(r.code, 2, r.stderr);
    oneLine(r.stderr, /the_det.*Det/);
    assert.deepEqual(listFiles(clean), ['det.onnx']);
  });

  it('verify refuses a truncated or foreign file with one line', () => {
    const tflite = readFileSync(join(ROOT_MEDIAPIPE));
    const cut = join(dir, 'cut.tflite');
    writeFileSync(cut, tflite.subarray(0, 2000));
    const r = cli(['verify', cut, '--reference', model]);
    assert.equal(r.code, 2, r.stderr);
    oneLine(r.stderr, /cut\.tflite: /);
    const foreign = cli(['verify', model, '--reference', model]);
    assert.equal(foreign.code, 2);
    oneLine(foreign.stderr, /not a TFLite model/);
    const tol = cli(['verify', cut, '--reference', model, '--tolerance', '-1']);
    assert.equal(tol.code, 2);
    oneLine(tol.stderr, /--tolerance -1: expected a number ≥ 0/);
  });
});

const ROOT_MEDIAPIPE = join(import.meta.dirname, '../../node_modules/@mediapipe/face_detection/face_detection_short_range.tflite');
