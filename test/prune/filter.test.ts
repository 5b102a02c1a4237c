/**
 * Filter pruning on graphs built in code, one per architecture family: each either prunes
 * correctly — onnxruntime runs the result, output shapes are unchanged, and removing a channel
 * whose filters are all zero leaves the outputs exactly as they were — or refuses the group it
 * cannot follow, with the reason.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readOnnx } from '../../src/formats/onnx/read.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import type { Model } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { verifyModel } from '../../src/ir/verify.js';
import { buildFmnistCnn } from '../../src/models/fmnist.js';
import { inferShapes } from '../../src/ops/infer.js';
import { analyzeChannels } from '../../src/prune/analyze.js';
import { constantInput } from '../../src/prune/channels.js';
import { pruneFilters } from '../../src/prune/filter.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { maxAbsDiff, randomTensor } from '../helpers.js';
import { ARCHITECTURES, flattenMlp, resnetBlock } from './architectures.js';

const copy = (m: Model): Model => readOnnx(writeOnnx(m).model);

async function run(model: Model, x: Tensor): Promise<Tensor> {
  const s = await nodeBackend().createSession(model);
  try {
    return (await s.run({ x }))[s.outputNames[0]];
  } finally {
    await s.release();
  }
}

/**
 * Zeroes every filter (and bias, and the following BatchNormalization's β and μ) of one
 * removable channel class, so that class carries exact zeros and scores 0. Returns its size.
 */
function zeroOneClass(model: Model, pick = 1): { members: number; layers: string[] } {
  inferShapes(model);
  const a = analyzeChannels(model);
  const pinned = a.sets.pinnedClasses();
  const classes = new Set<number>();
  for (const r of a.roots)
    for (let c = 0; c < r.channels; c++) if (!pinned.has(a.sets.find(r.first + c))) classes.add(a.sets.find(r.first + c));
  assert.ok(classes.size > 0, 'the model has a removable channel');
  const cls = [...classes][Math.min(pick, classes.size - 1)];
  let members = 0;
  const layers: string[] = [];
  for (const r of a.roots) {
    for (let c = 0; c < r.channels; c++) {
      if (a.sets.find(r.first + c) !== cls) continue;
      members++;
      layers.push(r.node.name);
      const wv = r.node.input(1);
      const w = constantInput(wv) as Tensor;
      const data = Float32Array.from(w.data as Float32Array);
      const inner = w.dims.slice(r.weightAxis + 1).reduce((x, y) => x * y, 1);
      const outer = w.dims.slice(0, r.weightAxis).reduce((x, y) => x * y, 1);
      for (let o = 0; o < outer; o++) data.fill(0, (o * r.channels + c) * inner, (o * r.channels + c + 1) * inner);
      (wv as NonNullable<typeof wv>).initializer = Tensor.from('float32', w.dims, data);
      const zeroAt = (v: typeof wv) => {
        const t = v?.initializer;
        if (!v || !t) return;
        const d = Float32Array.from(t.data as Float32Array);
        d[c] = 0;
        v.initializer = Tensor.from('float32', t.dims, d);
      };
      zeroAt(r.node.input(2));
      const out = r.node.outputs[0];
      const bn = out?.uses.length === 1 && out.uses[0].node.opType === 'BatchNormalization' ? out.uses[0].node : undefined;
      if (bn) {
        zeroAt(bn.input(2));
        zeroAt(bn.input(3));
      }
    }
  }
  return { members, layers };
}

describe('filter pruning: architectures built in code', () => {
  for (const [name, build] of Object.entries(ARCHITECTURES)) {
    it(`${name}: removing a zero channel keeps the outputs; ORT runs the smaller model`, async () => {
      const model = build();
      const { members } = zeroOneClass(model);
      const original = copy(model);
      const x = randomTensor([2, 3, 16, 16], 11);
      const before = await run(original, x);
      const report = pruneFilters(model, { flops: 1e-9 });
      assert.deepEqual(verifyModel(model), []);
      const removedChannels = report.layers.reduce((s, l) => s + l.channels - l.kept, 0);
      assert.equal(removedChannels, members, 'exactly the zeroed class was removed');
      assert.ok(report.macsAfter < report.macsBefore);
      const after = await run(model, x);
      assert.deepEqual(after.dims, before.dims);
      const scale = Math.max(...Array.from(before.toFloat32(), Math.abs));
      assert.ok(maxAbsDiff(before, after) <= 1e-5 * Math.max(1, scale), `outputs changed by ${maxAbsDiff(before, after)}`);
      // A larger cut still gives a model onnxruntime runs with the same output shape.
      const big = copy(original);
      const cut = name === 'shufflenet' || name === 'grouped' ? 0.05 : 0.3;
      const r2 = pruneFilters(big, { flops: cut });
      assert.ok(r2.macsAfter <= (1 - cut) * r2.macsBefore + 1, `${r2.macsAfter} of ${r2.macsBefore} MACs left`);
      assert.deepEqual((await run(big, x)).dims, before.dims);
    });
  }

  it('ResNet: the shortcut conv, the block conv and the next residual are one group', () => {
    const model = resnetBlock();
    inferShapes(model);
    const report = pruneFilters(model, { ratio: 0.25 });
    const group = report.groups.find((g) => g.layers.includes('b1_conv2'));
    assert.ok(group);
    for (const l of ['b1_conv2', 'b1_down', 'b2_conv']) assert.ok(group.layers.includes(l), `${l} in ${group.layers}`);
    const kept = (n: string) => report.layers.find((l) => l.name === n)?.kept;
    assert.equal(kept('b1_conv2'), kept('b1_down'));
    assert.equal(kept('b1_conv2'), 12);
  });

  it('ShuffleNet: the channel shuffle is refused with its reason, the rest is pruned', () => {
    const model = ARCHITECTURES.shufflenet();
    const report = pruneFilters(model, { ratio: 0.5 });
    const shuffled = report.groups.find((g) => g.layers.includes('pw'));
    assert.ok(shuffled && shuffled.protectedClasses === shuffled.classes, 'the channels going into the shuffle are kept whole');
    assert.match(shuffled.reason ?? '', /shuffle_reshape1.*channel shuffle/);
    assert.equal(report.layers.find((l) => l.name === 'conv0')?.kept, 4);
    assert.equal(report.layers.find((l) => l.name === 'conv1')?.kept, 4);
  });

  it('EfficientNet: squeeze-excite Mul ties the expand and SE-expand convs; depthwise follows', () => {
    const model = ARCHITECTURES.efficientnet();
    const report = pruneFilters(model, { ratio: 0.5 });
    const g = report.groups.find((x) => x.layers.includes('expand'));
    assert.ok(g?.layers.includes('se_expand'));
    assert.equal(g?.protectedClasses, 0);
    const dw = model.graph.nodes.find((n) => n.name === 'depthwise');
    assert.equal(dw?.int('group'), 8);
  });

  it('Flatten → Gemm: a removed channel takes its block of H·W input features', () => {
    const model = flattenMlp();
    const report = pruneFilters(model, { ratio: 0.5 });
    assert.equal(report.layers.find((l) => l.name === 'conv0')?.kept, 3);
    const fc1 = model.graph.nodes.find((n) => n.name === 'fc1');
    assert.deepEqual(constantInput(fc1?.input(1))?.dims, [48, 8]);
    const fc2 = model.graph.nodes.find((n) => n.name === 'fc2');
    assert.deepEqual(constantInput(fc2?.input(1))?.dims, [5, 8]);
  });

  it('a grouped convolution keeps the channels it reads, with the reason', () => {
    const report = pruneFilters(ARCHITECTURES.grouped(), { ratio: 0.5 });
    const g = report.groups.find((x) => x.layers.includes('conv0'));
    assert.equal(g?.protectedClasses, 8);
    assert.match(g?.reason ?? '', /gconv.*grouped convolution \(group 2\)/);
    assert.equal(report.layers.find((l) => l.name === 'conv1')?.kept, 4);
  });

  it('--scope layer reaches a MAC target with one ratio for every group', () => {
    const model = resnetBlock();
    const report = pruneFilters(model, { flops: 0.3, scope: 'layer' });
    assert.ok(report.macsAfter <= 0.7 * report.macsBefore);
    const fractions = report.layers.filter((l) => l.kept < l.channels).map((l) => l.kept / l.channels);
    assert.ok(Math.max(...fractions) - Math.min(...fractions) < 0.15, `kept fractions ${fractions}`);
  });

  it('multiple 8 keeps every pruned layer at a multiple of 8 channels', () => {
    const model = buildFmnistCnn(2);
    const report = pruneFilters(model, { flops: 0.5, multiple: 8 });
    assert.ok(report.macsAfter <= 0.5 * report.macsBefore);
    for (const l of report.layers) assert.equal(l.kept % 8 === 0 || l.kept === l.channels, true, `${l.name} keeps ${l.kept}`);
  });
});
