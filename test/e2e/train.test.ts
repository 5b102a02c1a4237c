/**
 * `mobilize train` and `mobilize distill` end to end on small subsets: JSON reports, checkpoints,
 * a saved model that `eval` and `optimize` take as it is, and one-line refusals of bad input.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { zipSync } from 'fflate';
import { serializeNpy } from '../../src/data/npy.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { type CliResult, cli, listFiles, tmpDir } from '../helpers.js';

interface EpochJson {
  epoch: number;
  loss: number;
  trainAccuracy: number;
  testAccuracy: number;
  seconds: number;
  samplesPerSecond: number;
  parts?: Record<string, number>;
}

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

const SMALL = ['--limit', '512', '--test-limit', '500', '--batch', '64'];

describe('mobilize train / distill', () => {
  const dir = tmpDir();
  const teacher = join(dir, 'teacher.onnx');
  let report: Record<string, unknown>;

  before(() => {
    report = json(cli(['train', ...SMALL, '--epochs', '2', '--lr', '0.01', '--checkpoint', join(dir, 'ck'), '-o', teacher, '--json']));
  });

  it('trains, reports each epoch as JSON and writes checkpoints', () => {
    const epochs = report.epochs as EpochJson[];
    assert.equal(epochs.length, 2);
    for (const e of epochs) {
      for (const k of ['loss', 'trainAccuracy', 'testAccuracy', 'seconds', 'samplesPerSecond'] as const) {
        assert.ok(Number.isFinite(e[k]), `${k} of epoch ${e.epoch}`);
      }
    }
    assert.ok(epochs[1].loss < epochs[0].loss);
    assert.equal(report.model, 'fmnist-cnn');
    assert.equal(report.test, 'fashion-mnist:test');
    assert.equal(report.testAccuracy, epochs[1].testAccuracy);
    assert.equal(report.steps, 16);
    assert.deepEqual(listFiles(join(dir, 'ck')), ['epoch-1.onnx', 'epoch-2.onnx']);
  });

  it('saves a model that eval and optimize take as it is', () => {
    const e = json(cli(['eval', teacher, '--data', 'fashion-mnist', '--limit', '500', '--json']));
    assert.ok(Math.abs((e.top1 as number) - (report.testAccuracy as number)) <= 0.004, `${e.top1} vs ${report.testAccuracy}`);
    const o = json(cli(['optimize', teacher, '-o', join(dir, 'opt.onnx'), '--json']));
    assert.ok((o.nodesAfter as number) < (o.nodesBefore as number), 'BatchNormalization folds into the convolutions');
  });

  it('fine-tunes an ONNX file, keeping frozen initializers', () => {
    const r = json(
      cli(['train', '--model', teacher, ...SMALL, '--epochs', '1', '--freeze', 'conv1.*', '-o', join(dir, 'tuned.onnx'), '--json']),
    );
    assert.equal(r.lr, 0.001, 'fine-tuning default');
    assert.ok((r.frozen as string[]).includes('conv1.weight'));
    assert.ok(!(r.weights as string[]).some((w) => w.startsWith('conv1.')));
  });

  it('distills a student from a teacher', () => {
    const r = json(cli(['distill', '--teacher', teacher, ...SMALL, '--epochs', '1', '-o', join(dir, 'student.onnx'), '--json']));
    assert.equal(r.model, 'fmnist-small');
    const t = r.teacher as { testAccuracy: number; temperature: number; alpha: number };
    assert.equal(t.temperature, 4);
    assert.equal(t.alpha, 0.7);
    assert.ok(Math.abs(t.testAccuracy - (report.testAccuracy as number)) <= 0.004);
    const [e] = r.epochs as EpochJson[];
    assert.ok(Number.isFinite(e.parts?.kd_loss) && Number.isFinite(e.parts?.ce_loss));
    assert.ok(existsSync(join(dir, 'student.onnx')));
    json(cli(['eval', join(dir, 'student.onnx'), '--data', 'fashion-mnist', '--limit', '100', '--json']));
  });
});

describe('mobilize train: bad input', () => {
  const dir = tmpDir();
  const images = (n: number, dims: number[]) =>
    serializeNpy(Tensor.from('float32', [n, ...dims], new Float32Array(n * dims.reduce((a, b) => a * b, 1)).fill(0.5)));

  it('labels out of range: exit 2, one line, nothing written', () => {
    const data = join(dir, 'labels.npz');
    writeFileSync(data, zipSync({ 'x.npy': images(4, [1, 28, 28]), 'labels.npy': serializeNpy(Tensor.from('int64', [4], [0, 1, 10, 2])) }));
    const out = join(dir, 'a.onnx');
    expectOneLine(cli(['train', '--data', data, '-o', out]), 2, /labels\.npz has labels up to 10, but the model scores 10 classes/);
    assert.ok(!existsSync(out));
  });

  it('data that does not fit the model: exit 2, one line', () => {
    const data = join(dir, 'small.npz');
    writeFileSync(data, zipSync({ 'x.npy': images(4, [1, 14, 14]), 'labels.npy': serializeNpy(Tensor.from('int64', [4], [0, 1, 2, 3])) }));
    expectOneLine(
      cli(['train', '--data', data, '-o', join(dir, 'b.onnx')]),
      2,
      /holds samples of shape \[1,14,14\] but the model's input "input" is/,
    );
  });

  it('an op with no gradient rule: exit 2, naming the node', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('input', 'float32', ['N', 1, 28, 28]);
    const f = b.op('Flatten', [x], { axis: 1 });
    const h = b.op('Gemm', [f, b.floats('w', [10, 784], new Float32Array(7840).fill(0.01))], { transB: 1 });
    b.output(b.op('CumSum', [h, b.ints('axis', [1], [])], {}, { name: 'cumsum' }), 'logits', {
      kind: 'tensor',
      dtype: 'float32',
      shape: ['N', 10],
    });
    const model = join(dir, 'nograd.onnx');
    writeFileSync(model, writeOnnx(b.build()).model);
    expectOneLine(
      cli(['train', '--model', model, '--limit', '64', '-o', join(dir, 'c.onnx')]),
      2,
      /no gradient rule for CumSum node "cumsum"/,
    );
  });

  it('a diverging run: exit 1, naming the step, nothing written', () => {
    const out = join(dir, 'd.onnx');
    const r = cli(['train', '--optimizer', 'sgd', '--lr', '1e30', '--limit', '256', '--batch', '64', '--epochs', '1', '-o', out]);
    expectOneLine(r, 1, /the loss became (NaN|Infinity) at step \d+ \(epoch 1, batch \d+ of 4\).*d\.onnx was not written/);
    assert.ok(!existsSync(out));
  });

  it('unknown flag values: exit 2', () => {
    expectOneLine(cli(['train', '--optimizer', 'lion', '-o', join(dir, 'e.onnx')]), 2, /--optimizer lion: expected adamw, adam or sgd/);
    expectOneLine(cli(['train', '--model', 'resnet', '-o', join(dir, 'e.onnx')]), 2, /model resnet: not a built-in/);
    expectOneLine(
      cli(['distill', '--teacher', join(dir, 'missing.onnx'), '-o', join(dir, 'e.onnx')]),
      2,
      /missing\.onnx: no such model file/,
    );
  });

  it('refuses a teacher whose input does not take the data, naming it: exit 2, nothing written', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('pixels', 'float32', ['N', 3, 8, 8]);
    b.output(b.op('ReduceMean', [x], { keepdims: 0, axes: [2, 3] }), 'logits');
    const wrong = join(dir, 'wrong-teacher.onnx');
    writeFileSync(wrong, writeOnnx(b.build()).model);
    const out = join(dir, 'w.onnx');
    expectOneLine(
      cli(['distill', '--teacher', wrong, '--limit', '64', '--epochs', '1', '-o', out]),
      2,
      /teacher .*wrong-teacher\.onnx: fashion-mnist:train holds samples of shape \[1,28,28\] but its input "pixels" is float32\[N,3,8,8\]/,
    );
    assert.ok(!existsSync(out));
  });
});
