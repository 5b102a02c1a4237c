/**
 * The training loop on small Fashion-MNIST subsets (a few seconds each): the loss falls, the same
 * seed gives the same weights, the saved model is an ordinary inference model, a NaN stops
 * training and keeps the last good checkpoint, and bad data is refused in one line.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { ArrayDataset } from '../../src/data/arrays.js';
import type { Batch, Dataset } from '../../src/data/dataset.js';
import { FashionMnist } from '../../src/data/fashion-mnist.js';
import { evaluate } from '../../src/eval/accuracy.js';
import { readOnnx } from '../../src/formats/onnx/read.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import { loadModel } from '../../src/io/files.js';
import { Tensor } from '../../src/ir/tensor.js';
import { assertValid } from '../../src/ir/verify.js';
import { buildFmnistCnn, buildFmnistSmall } from '../../src/models/fmnist.js';
import { defaultRegistry } from '../../src/ops/index.js';
import { runTraining } from '../../src/pipeline/train.js';
import { nodeBackend } from '../../src/runtime/node.js';
import type { OrtModule } from '../../src/runtime/ort.js';
import { augmentImages } from '../../src/train/augment.js';
import { learningRate } from '../../src/train/optimizer.js';
import { TrainingDiverged, train } from '../../src/train/trainer.js';
import { Random } from '../../src/util/random.js';
import { tmpDir } from '../helpers.js';

const ORT = ort as unknown as OrtModule;

let trainSet: FashionMnist;
let testSet: FashionMnist;

before(() => {
  trainSet = new FashionMnist('train');
  testSet = new FashionMnist('test');
});

function initializerBytes(m: ReturnType<typeof buildFmnistCnn>): Map<string, Uint8Array> {
  return new Map(m.graph.initializers.map((v) => [v.name, v.initializer?.bytes as Uint8Array]));
}

describe('training loop', () => {
  it('lowers the loss within a few dozen steps on a subset', async () => {
    const losses: number[] = [];
    const report = await train({
      ort: ORT,
      model: buildFmnistCnn(0),
      data: trainSet,
      epochs: 3,
      batchSize: 64,
      limit: 640,
      lr: 0.01,
      onStep: (p) => losses.push(p.loss),
    });
    assert.equal(report.steps, 30);
    const [e1, , e3] = report.epochs;
    assert.ok(e3.loss < 0.7 * e1.loss, `epoch losses ${report.epochs.map((e) => e.loss)}`);
    assert.ok(e3.trainAccuracy > e1.trainAccuracy && e3.trainAccuracy > 0.6, `train accuracy ${e3.trainAccuracy}`);
    assert.ok(Number.isFinite(report.stepMs) && report.stepMs > 0);
  });

  it('gives identical weights for the same seed, and other weights for another', async () => {
    const run = async (seed: number) =>
      (
        await train({
          ort: ORT,
          model: buildFmnistSmall(seed),
          data: trainSet,
          epochs: 1,
          batchSize: 32,
          limit: 256,
          augment: true,
          seed,
        })
      ).model;
    const a = initializerBytes(await run(7));
    const b = initializerBytes(await run(7));
    const c = initializerBytes(await run(8));
    assert.deepEqual([...a.keys()], [...b.keys()]);
    for (const [name, bytes] of a)
      assert.ok(Buffer.from(bytes).equals(Buffer.from(b.get(name) as Uint8Array)), `${name} differs between two runs`);
    assert.ok(!Buffer.from(a.get('fc.weight') as Uint8Array).equals(Buffer.from(c.get('fc.weight') as Uint8Array)));
  });

  it('returns an inference model: BatchNormalization in inference mode, learned statistics, accuracy as measured', async () => {
    const report = await train({
      ort: ORT,
      model: buildFmnistCnn(3),
      data: trainSet,
      test: testSet,
      epochs: 1,
      batchSize: 64,
      limit: 640,
      testLimit: 500,
      lr: 0.01,
    });
    const m = report.model;
    assertValid(m, 'trained model', { registry: defaultRegistry() });
    assert.ok((m.opset('') ?? 0) >= 13);
    assert.deepEqual(
      m.graph.inputs.map((v) => v.name),
      ['input'],
    );
    assert.deepEqual(
      m.graph.outputs.map((v) => v.name),
      ['logits'],
    );
    for (const n of m.graph.nodes.filter((x) => x.opType === 'BatchNormalization')) {
      assert.ok(!n.int('training_mode'), `${n.describe()} is in inference mode`);
      assert.equal(n.outputs.filter((o) => o).length, 1);
    }
    const mean = m.graph.initializers.find((v) => v.name === 'conv1.bn.mean')?.initializer as Tensor;
    assert.ok(
      [...(mean.data as Float32Array)].some((x) => x !== 0),
      'running mean was learned',
    );
    const measured = await evaluate(m, testSet, nodeBackend(), { limit: 500 });
    assert.ok(Math.abs(measured.top1 - (report.testAccuracy as number)) <= 0.004, `${measured.top1} vs ${report.testAccuracy}`);
    assert.ok(measured.top1 > 0.5, `test accuracy ${measured.top1}`);
  });

  it('stops at a NaN loss, names the step, keeps the last good checkpoint and writes no output', async () => {
    /** The training subset, whose batches turn to NaN from the third request on (epoch 2). */
    class Poisoned implements Dataset {
      readonly name = 'poisoned';
      readonly size = 128;
      readonly sampleDims = [1, 28, 28];
      readonly dtype = 'float32' as const;
      readonly hasLabels = true;
      readonly classes = 10;
      calls = 0;
      async batch(indices: ArrayLike<number>): Promise<Batch> {
        const b = trainSet.batchSync(indices);
        if (++this.calls < 3) return b;
        return { input: Tensor.from('float32', b.input.dims, new Float32Array(b.input.size).fill(Number.NaN)), label: b.label };
      }
    }
    const dir = tmpDir();
    const checkpoint = join(dir, 'ck');
    const output = join(dir, 'out.onnx');
    await assert.rejects(
      runTraining({ model: 'fmnist-cnn', data: new Poisoned(), epochs: 3, batchSize: 64, checkpoint, output }),
      (e: unknown) => {
        assert.ok(e instanceof TrainingDiverged);
        assert.equal(e.exitCode, 1);
        assert.equal(e.step, 3);
        assert.match(e.message, /^the loss became NaN at step 3 \(epoch 2, batch 1 of 2\);.*the last good checkpoint is .*epoch-1\.onnx/);
        assert.ok(!e.message.includes('\n'));
        return true;
      },
    );
    assert.deepEqual(readdirSync(checkpoint), ['epoch-1.onnx']);
    assert.ok(!existsSync(output));
    const kept = loadModel(join(checkpoint, 'epoch-1.onnx'));
    for (const v of kept.graph.initializers) {
      const data = v.initializer?.data;
      if (data instanceof Float32Array) assert.ok(data.every(Number.isFinite), `${v.name} is finite`);
    }
    assert.ok((await evaluate(kept, testSet, nodeBackend(), { limit: 200 })).top1 > 0.1);
  });

  it('keeps masked weights exactly zero while fine-tuning an imported model, and frozen ones unchanged', async () => {
    // An imported ONNX model (bytes → IR), as pruning hands over.
    const source = readOnnx(writeOnnx(buildFmnistCnn(5)).model);
    const rng = new Random(11);
    const masks = new Map<string, Float32Array>();
    for (const name of ['conv2.weight', 'fc.weight']) {
      const size = source.graph.initializers.find((v) => v.name === name)?.initializer?.size as number;
      masks.set(
        name,
        Float32Array.from({ length: size }, () => (rng.next() < 0.5 ? 0 : 1)),
      );
    }
    const before = new Map(source.graph.initializers.map((v) => [v.name, Float32Array.from(v.initializer?.data as Float32Array)]));
    const report = await train({
      ort: ORT,
      model: source,
      data: trainSet,
      epochs: 1,
      batchSize: 64,
      limit: 640,
      lr: 0.01,
      masks,
      freeze: ['conv1.weight'],
    });
    const after = new Map(report.model.graph.initializers.map((v) => [v.name, v.initializer as Tensor]));
    for (const [name, mask] of masks) {
      const w = after.get(name)?.data as Float32Array;
      const old = before.get(name) as Float32Array;
      let moved = 0;
      for (let i = 0; i < mask.length; i++) {
        if (mask[i] === 0) assert.equal(w[i], 0, `${name}[${i}] is masked`);
        else if (w[i] !== old[i]) moved++;
      }
      assert.ok(moved > 0.9 * mask.reduce((a, b) => a + b, 0), `${name}: kept weights were trained (${moved} moved)`);
    }
    assert.deepEqual(after.get('conv1.weight')?.data, before.get('conv1.weight'));
    assert.ok(report.frozen.includes('conv1.weight'));
    assert.deepEqual(
      report.masked.map((m) => m.name),
      ['conv2.weight', 'fc.weight'],
    );
    assert.ok(report.epochs[0].trainAccuracy > 0.3, `train accuracy ${report.epochs[0].trainAccuracy}`);
  });

  it('refuses a mask that does not fit its weight, in one line', async () => {
    const model = buildFmnistCnn(0);
    const bad = async (masks: Map<string, Float32Array>, message: string) =>
      assert.rejects(train({ ort: ORT, model, data: trainSet, limit: 64, batchSize: 64, masks }), { name: 'MobilizeError', message });
    await bad(
      new Map([['conv9.weight', new Float32Array(4)]]),
      'mask for "conv9.weight": the model has no float32 initializer of that name',
    );
    await bad(new Map([['fc.weight', new Float32Array(7)]]), 'mask for "fc.weight" has 7 values; the initializer has 15680');
    await bad(
      new Map([['fc.bias', Float32Array.of(1, 1, 0.5, 1, 1, 1, 1, 1, 1, 1)]]),
      'mask for "fc.bias" holds 0.5 at 2; a mask holds 0 (pruned) and 1 (kept) only',
    );
  });

  it('refuses labels out of range and data that does not fit the model, in one line', async () => {
    const images = (n: number, dims: number[]) =>
      Tensor.from('float32', [n, ...dims], new Float32Array(n * dims.reduce((a, b) => a * b, 1)).fill(0.5));
    const badLabels = new ArrayDataset('labels.npz', images(4, [1, 28, 28]), Tensor.from('int64', [4], [1, 2, 12, 3]));
    await assert.rejects(train({ ort: ORT, model: buildFmnistCnn(0), data: badLabels, batchSize: 2 }), {
      name: 'MobilizeError',
      message: 'labels.npz has labels up to 12, but the model scores 10 classes',
    });
    const wrongSize = new ArrayDataset('small.npz', images(4, [1, 14, 14]), Tensor.from('int64', [4], [1, 2, 3, 4]));
    await assert.rejects(train({ ort: ORT, model: buildFmnistCnn(0), data: wrongSize, batchSize: 2 }), {
      name: 'MobilizeError',
      message: 'small.npz holds samples of shape [1,14,14] but the model\'s input "input" takes [N,1,28,28]',
    });
    const unlabelled = new ArrayDataset('x.npy', images(4, [1, 28, 28]));
    await assert.rejects(train({ ort: ORT, model: buildFmnistCnn(0), data: unlabelled }), {
      message: 'x.npy has no labels; training needs labelled data',
    });
  });
});

describe('augmentation and schedules', () => {
  /** A Random stand-in that plays back fixed draws. */
  function scripted(ints: number[], nexts: number[]): Random {
    return { int: () => ints.shift() as number, next: () => nexts.shift() as number } as unknown as Random;
  }
  const img = Float32Array.from({ length: 9 }, (_, i) => i + 1); // 1 2 3 / 4 5 6 / 7 8 9

  it('shifts with zero fill (pad-and-crop) and flips horizontally', () => {
    const down = augmentImages(img, [1, 1, 3, 3], { pad: 1, flip: true }, scripted([-1, 1], [0.9]));
    // Output (y, x) shows source (y − 1, x + 1): the image moves down and left.
    assert.deepEqual([...down], [0, 0, 0, 2, 3, 0, 5, 6, 0]);
    const flipped = augmentImages(img, [1, 1, 3, 3], { pad: 1, flip: true }, scripted([0, 0], [0.1]));
    assert.deepEqual([...flipped], [3, 2, 1, 6, 5, 4, 9, 8, 7]);
  });

  it('warms up linearly, then follows cosine or steps', () => {
    const s = { kind: 'cosine' as const, warmup: 4 };
    assert.equal(learningRate(1, s, 0, 104, 10), 0.25);
    assert.equal(learningRate(1, s, 3, 104, 10), 1);
    assert.equal(learningRate(1, s, 4, 104, 10), 1);
    assert.ok(Math.abs(learningRate(1, s, 54, 104, 10) - 0.5) < 1e-12);
    assert.ok(learningRate(1, s, 103, 104, 10) < 0.001);
    const st = { kind: 'step' as const, gamma: 0.5, stepEpochs: 2 };
    assert.deepEqual(
      [0, 19, 20, 45].map((k) => learningRate(0.8, st, k, 60, 10)),
      [0.8, 0.8, 0.4, 0.2],
    );
    assert.equal(learningRate(0.3, { kind: 'none' }, 50, 60, 10), 0.3);
  });
});
