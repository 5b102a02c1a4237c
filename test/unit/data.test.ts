import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { zipSync } from 'fflate';
import sharp from 'sharp';
import { batches } from '../../src/data/dataset.js';
import { fashionMnistAvailable } from '../../src/data/fashion-mnist.js';
import { serializeNpy } from '../../src/data/npy.js';
import { openDataset } from '../../src/data/spec.js';
import { Graph } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tmpDir } from '../helpers.js';

function modelInput(shape: Array<number | string>): ReturnType<Graph['addInput']> {
  return new Graph().addInput('input', { kind: 'tensor', dtype: 'float32', shape });
}

describe('datasets', () => {
  it('fashion-mnist: float32 N×1×28×28 in [0,1] with int64 labels, test split by default', async () => {
    assert.ok(fashionMnistAvailable(), 'dataset-fashion-mnist is installed by the test setup');
    const ds = openDataset('fashion-mnist', { defaultSplit: 'test', input: modelInput(['N', 1, 28, 28]) });
    assert.equal(ds.name, 'fashion-mnist:test');
    assert.equal(ds.size, 10000);
    const b = await ds.batch([0, 1]);
    assert.deepEqual(b.input.dims, [2, 1, 28, 28]);
    const v = b.input.data as Float32Array;
    assert.ok(v.every((x) => x >= 0 && x <= 1) && v.some((x) => x > 0.5));
    assert.equal(b.label?.dtype, 'int64');
    assert.deepEqual(b.label?.toNumbers(), [9, 2]);
    assert.equal(openDataset('fashion-mnist:train').size, 60000);
  });

  it('an .npy of inputs and an .npz of inputs and labels', async () => {
    const dir = tmpDir();
    const x = Tensor.from('float32', [3, 2], [1, 2, 3, 4, 5, 6]);
    writeFileSync(join(dir, 'x.npy'), serializeNpy(x));
    const npy = openDataset(join(dir, 'x.npy'), { input: modelInput(['N', 2]) });
    assert.deepEqual((await npy.batch([2, 0])).input.toNumbers(), [5, 6, 1, 2]);
    assert.equal(npy.hasLabels, false);
    const y = Tensor.from('int64', [3], [1, 0, 1]);
    writeFileSync(join(dir, 'd.npz'), zipSync({ 'x.npy': serializeNpy(x), 'labels.npy': serializeNpy(y) }));
    const npz = openDataset(join(dir, 'd.npz'));
    const all = [];
    for await (const b of batches(npz, { batchSize: 2 })) all.push(...(b.label?.toNumbers() ?? []));
    assert.deepEqual(all, [1, 0, 1]);
  });

  it('an image folder with one sub-folder per class, resized and normalised for the model', async () => {
    const dir = tmpDir();
    for (const [cls, colour] of [
      ['cat', '#ff0000'],
      ['dog', '#0000ff'],
    ] as const) {
      mkdirSync(join(dir, cls));
      await sharp({ create: { width: 10, height: 6, channels: 3, background: colour } })
        .png()
        .toFile(join(dir, cls, 'a.png'));
    }
    const ds = openDataset(dir, { input: modelInput(['N', 3, 4, 4]), mean: [0.5], std: [0.5] });
    assert.equal(ds.size, 2);
    assert.equal(ds.classes, 2);
    const b = await ds.batch([0, 1]);
    assert.deepEqual(b.input.dims, [2, 3, 4, 4]);
    const v = b.input.data as Float32Array;
    // Red cat: channel 0 is (1 - 0.5) / 0.5 = 1, channel 2 is -1; blue dog the other way round.
    assert.ok(Math.abs(v[0] - 1) < 1e-6 && Math.abs(v[2 * 16] + 1) < 1e-6);
    assert.ok(Math.abs(v[48] + 1) < 1e-6 && Math.abs(v[48 + 32] - 1) < 1e-6);
    assert.deepEqual(b.label?.toNumbers(), [0, 1]);
  });

  it('refuses data that does not fit the model, empty folders and unreadable images', async () => {
    const dir = tmpDir();
    writeFileSync(join(dir, 'x.npy'), serializeNpy(Tensor.from('float32', [2, 3], [1, 2, 3, 4, 5, 6])));
    assert.throws(
      () => openDataset(join(dir, 'x.npy'), { input: modelInput(['N', 2]) }),
      /holds samples of shape \[3\] but the model's input "input" is float32\[N,2\]/,
    );
    writeFileSync(join(dir, 'i.npy'), serializeNpy(Tensor.from('int32', [1, 2], [1, 2])));
    assert.throws(
      () => openDataset(join(dir, 'i.npy'), { input: modelInput(['N', 2]) }),
      /holds int32 data but the model's input "input" is float32/,
    );
    const empty = tmpDir();
    assert.throws(() => openDataset(empty, { input: modelInput(['N', 3, 4, 4]) }), /no images found/);
    writeFileSync(join(empty, 'broken.png'), 'not an image');
    const ds = openDataset(empty, { input: modelInput(['N', 3, 4, 4]) });
    await assert.rejects(ds.batch([0]), /broken\.png: cannot read the image/);
    assert.throws(() => openDataset('/no/such/data'), /no such dataset/);
    assert.throws(() => openDataset(empty, { input: modelInput(['N', 3, 'H', 'W']) }), /no fixed image size/);
  });
});
