/**
 * Weight pruning: magnitude masks (per layer and global, exact counts), N:M masks along the
 * input channels, the pattern parser, the cubic schedule; and the prune recipe end to end on
 * Fashion-MNIST: masked weights stay zero through fine-tuning and into the written file, and a
 * filter-pruned depthwise-separable model fine-tunes with distillation.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import { loadModel } from '../../src/io/files.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { buildFmnistCnn, buildFmnistSmall } from '../../src/models/fmnist.js';
import { runPrune } from '../../src/pipeline/prune.js';
import {
  applyMasks,
  gradualSparsity,
  magnitudeMasks,
  nmMasks,
  parsePattern,
  prunableWeights,
  weightSparsity,
} from '../../src/prune/weights.js';
import { tmpDir } from '../helpers.js';

describe('weight masks', () => {
  it('magnitude per layer zeroes exactly round(s·n) of each layer, the smallest |w|', () => {
    const model = buildFmnistCnn(3);
    const masks = magnitudeMasks(model, { sparsity: 0.3 });
    for (const w of prunableWeights(model)) {
      const m = masks.get(w.value.name) as Float32Array;
      const d = (w.value.initializer as Tensor).data as Float32Array;
      const zeros = m.filter((x) => x === 0).length;
      assert.equal(zeros, Math.round(0.3 * d.length));
      let maxCut = 0;
      let minKept = Number.POSITIVE_INFINITY;
      for (let i = 0; i < d.length; i++) {
        if (m[i] === 0) maxCut = Math.max(maxCut, Math.abs(d[i]));
        else minKept = Math.min(minKept, Math.abs(d[i]));
      }
      assert.ok(maxCut <= minKept);
    }
  });

  it('global magnitude uses one threshold across layers', () => {
    const model = buildFmnistCnn(3);
    const masks = magnitudeMasks(model, { sparsity: 0.5, scope: 'global' });
    let zeros = 0;
    let total = 0;
    for (const m of masks.values()) {
      zeros += m.filter((x) => x === 0).length;
      total += m.length;
    }
    assert.equal(zeros, Math.round(0.5 * total));
    applyMasks(model, masks);
    const per = weightSparsity(model);
    assert.ok(per.some((l) => l.sparsity > 0.55) && per.some((l) => l.sparsity < 0.45), 'layers differ under one threshold');
  });

  it('2:4 keeps the 2 largest of every 4 consecutive input channels', () => {
    const model = buildFmnistCnn(3);
    const masks = nmMasks(model, 2, 4);
    const conv2 = prunableWeights(model).find((w) => w.node.opType === 'Conv' && (w.value.initializer as Tensor).dims[1] === 16);
    assert.ok(conv2);
    const t = conv2.value.initializer as Tensor;
    const m = masks.get(conv2.value.name) as Float32Array;
    const [o, c, kh, kw] = t.dims;
    const d = t.data as Float32Array;
    for (let oc = 0; oc < o; oc++) {
      for (let g = 0; g < c; g += 4) {
        for (let k = 0; k < kh * kw; k++) {
          const idx = [0, 1, 2, 3].map((j) => (oc * c + g + j) * kh * kw + k);
          assert.equal(idx.filter((i) => m[i] === 1).length, 2);
          const kept = Math.min(...idx.filter((i) => m[i] === 1).map((i) => Math.abs(d[i])));
          const cut = Math.max(...idx.filter((i) => m[i] === 0).map((i) => Math.abs(d[i])));
          assert.ok(cut <= kept);
        }
      }
    }
    // conv1 has one input channel: shorter than M, it stays dense.
    const conv1 = prunableWeights(model).find((w) => (w.value.initializer as Tensor).dims[1] === 1);
    assert.ok((masks.get(conv1?.value.name ?? '') as Float32Array).every((x) => x === 1));
  });

  it('parses N:M patterns and refuses the others', () => {
    assert.deepEqual(parsePattern('2:4'), { n: 2, m: 4 });
    assert.deepEqual(parsePattern('1:8'), { n: 1, m: 8 });
    for (const bad of ['3:2', '4:4', '0:4', '2-4', '2:', 'a:b']) assert.throws(() => parsePattern(bad), /--pattern/);
  });

  it('the cubic schedule rises from 0 to the final sparsity, fastest at first', () => {
    assert.equal(gradualSparsity(0.8, 0, 4), 0);
    assert.equal(gradualSparsity(0.8, 4, 4), 0.8);
    const s = [1, 2, 3, 4].map((k) => gradualSparsity(0.8, k, 4));
    assert.ok(s[0] - 0 > s[1] - s[0] && s[1] - s[0] > s[2] - s[1]);
  });
});

describe('prune recipe on Fashion-MNIST', () => {
  it('magnitude 50% + fine-tuning: the zeros survive into the written model', async () => {
    const dir = tmpDir('mobilize-prune-');
    const input = join(dir, 'cnn.onnx');
    writeFileSync(input, writeOnnx(buildFmnistCnn(1)).model);
    const output = join(dir, 'pruned.onnx');
    const r = await runPrune({
      input,
      output,
      method: 'magnitude',
      sparsity: 0.5,
      finetuneEpochs: 1,
      data: 'fashion-mnist',
      limit: 1024,
      testLimit: 300,
      latencyRuns: 3,
    });
    assert.equal(r.rounds.length, 1);
    assert.equal(typeof r.rounds[0].accuracyFinetuned, 'number');
    assert.equal(typeof r.before.accuracy, 'number');
    for (const l of weightSparsity(loadModel(output))) assert.ok(l.sparsity >= 0.5, `${l.name}: ${l.sparsity}`);
    assert.ok(r.after.gzipBytes < r.before.gzipBytes, 'zeros compress');
    assert.equal(r.after.params, r.before.params);
  });

  it('l1-filter on a depthwise-separable model, fine-tuned with distillation in 2 rounds', async () => {
    const dir = tmpDir('mobilize-prune-');
    const input = join(dir, 'small.onnx');
    writeFileSync(input, writeOnnx(buildFmnistSmall(1)).model);
    const output = join(dir, 'pruned.onnx');
    const r = await runPrune({
      input,
      output,
      method: 'l1-filter',
      flops: 0.4,
      steps: 2,
      finetuneEpochs: 2,
      distill: true,
      data: 'fashion-mnist',
      limit: 512,
      testLimit: 300,
      latencyRuns: 0,
    });
    assert.equal(r.rounds.length, 2);
    assert.ok(r.rounds[0].target < r.rounds[1].target);
    assert.ok(r.after.macs <= 0.6 * r.before.macs + 1, `${r.after.macs} of ${r.before.macs}`);
    assert.ok(r.after.params < r.before.params);
    assert.ok(r.distill);
    assert.equal(loadModel(output).graph.outputs[0].name, 'logits');
  });
});
