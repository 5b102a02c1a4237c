/**
 * The quality tools on small models made to show each failure mode: cross-layer equalization
 * keeps the float function, bias correction removes a depthwise layer's mean shift,
 * sensitivity finds the fragile layer, fallback keeps it float to meet a limit, and mixed
 * precision stays within its byte budget.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ArrayDataset } from '../../src/data/arrays.js';
import { modelStats } from '../../src/eval/stats.js';
import { readOnnx } from '../../src/formats/onnx/read.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import type { Model } from '../../src/ir/graph.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { correctBiases } from '../../src/quantize/bias-correction.js';
import { equalizeCrossLayer } from '../../src/quantize/equalize.js';
import { fallbackToFloat } from '../../src/quantize/fallback.js';
import { quantizeModel } from '../../src/quantize/index.js';
import { chooseOptions } from '../../src/quantize/mixed.js';
import { Scorer } from '../../src/quantize/scoring.js';
import { layerSensitivity } from '../../src/quantize/sensitivity.js';
import { prepareForQuantization } from '../../src/quantize/static.js';
import { nameLayers, Variants } from '../../src/quantize/variants.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { uniform } from './helpers.js';
import { balanced, between, biasedDepthwise, depthwiseNet, fragileNet, run, selfLabelled, varied } from './quality-helpers.js';

const backend = nodeBackend();
const copy = (m: Model): Model => readOnnx(writeOnnx(m).model);

function maxRelDiff(a: Tensor, b: Tensor): number {
  const x = a.toFloat32();
  const y = b.toFloat32();
  let scale = 0;
  for (const v of x) scale = Math.max(scale, Math.abs(v));
  let d = 0;
  for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - y[i]));
  return d / scale;
}

/** Mean over channels of |mean over N, H, W of (b − a)| for N×C×H×W outputs. */
function meanShift(a: Tensor, b: Tensor): number {
  const [n, c, h, w] = a.dims;
  const x = a.toFloat32();
  const y = b.toFloat32();
  let total = 0;
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let i = 0; i < n; i++) for (let k = 0; k < h * w; k++) s += y[(i * c + ch) * h * w + k] - x[(i * c + ch) * h * w + k];
    total += Math.abs(s / (n * h * w));
  }
  return total / c;
}

describe('cross-layer equalization', () => {
  it('keeps the float outputs (onnxruntime) and narrows the channel-range spread of a depthwise → pointwise chain', async () => {
    const float = depthwiseNet();
    const m = copy(float);
    prepareForQuantization(m);
    const r = equalizeCrossLayer(m);
    assert.deepEqual(
      r.pairs.map((p) => [p.first, p.second, p.depthwise]),
      [
        ['conv1', 'dw', [false, true]],
        ['dw', 'pw', [true, false]],
      ],
    );
    assert.ok(r.spread.before > 20, `spread before ${r.spread.before}`);
    assert.ok(r.spread.after < r.spread.before / 5, `spread ${r.spread.before} → ${r.spread.after}`);
    assert.ok(r.iterations >= 2);
    const x = uniform([4, 3, 8, 8], 1, 7);
    const d = maxRelDiff(await run(float, x, backend), await run(m, x, backend));
    assert.ok(d < 1e-5, `outputs differ by ${d} of their range`);
  });

  it('leaves Clip(0, 6) pairs alone, saying why', () => {
    const m = depthwiseNet('Clip');
    prepareForQuantization(m);
    const r = equalizeCrossLayer(m);
    assert.deepEqual(
      r.pairs.map((p) => p.first),
      ['dw'],
    );
    assert.equal(r.skipped.length, 1);
    assert.match(r.skipped[0].reason, /Clip/);
  });

  it('with --per-tensor, equalization lowers the int8 error of the imbalanced chain', async () => {
    const calib = new ArrayDataset('calib', uniform([32, 3, 8, 8], 1, 3));
    const x = uniform([16, 3, 8, 8], 1, 9);
    const float = depthwiseNet();
    const ref = await run(float, x, backend);
    const err = async (equalize: boolean): Promise<number> => {
      const m = copy(float);
      await quantizeModel(m, { scheme: 'uint8', calib, backend, perChannel: false, equalize });
      const y = (await run(m, x, backend)).toFloat32();
      const r = ref.toFloat32();
      let noise = 0;
      let signal = 0;
      for (let i = 0; i < r.length; i++) {
        noise += (r[i] - y[i]) ** 2;
        signal += r[i] ** 2;
      }
      return 10 * Math.log10(signal / noise);
    };
    const plain = await err(false);
    const equalized = await err(true);
    assert.ok(equalized > plain + 1, `SQNR ${plain.toFixed(1)} → ${equalized.toFixed(1)} dB`);
  });
});

describe('bias correction', () => {
  for (const mode of ['empirical', 'weights'] as const) {
    it(`(${mode}) removes most of a quantized depthwise layer's mean output shift`, async () => {
      const float = biasedDepthwise();
      const calib = new ArrayDataset('calib', between([32, 4, 8, 8], 0, 2, 1));
      const x = between([16, 4, 8, 8], 0, 2, 2);
      const prepared = copy(float);
      prepareForQuantization(prepared);
      nameLayers(prepared);
      const q = copy(prepared);
      await quantizeModel(q, { scheme: 'uint8', calib, backend, optimize: false });
      const ref = await run(float, x, backend);
      const before = meanShift(ref, await run(q, x, backend));
      const r = await correctBiases(q, prepared, calib, { backend, mode });
      assert.equal(r.corrected, 1);
      assert.deepEqual(r.skipped, []);
      const after = meanShift(ref, await run(q, x, backend));
      assert.ok(before > 0.01, `shift before ${before}`);
      assert.ok(after < before / 5, `mean shift ${before} → ${after}`);
    });
  }

  it('is kept by quantizeModel only when it helps, and reported', async () => {
    const calib = new ArrayDataset('calib', between([32, 4, 8, 8], 0, 2, 1));
    const m = biasedDepthwise();
    const r = await quantizeModel(m, { scheme: 'uint8', calib, backend, biasCorrection: true });
    const bc = r.quality?.biasCorrection;
    assert.ok(bc?.kept);
    assert.ok((bc.after?.sqnrDb ?? 0) > (bc.before?.sqnrDb ?? 0));
  });
});

describe('sensitivity, fallback, mixed precision', () => {
  /** fragileNet with classes that split the data; calibration and labelled data for it. */
  async function fragile(width = 4, n = 200): Promise<{ float: Model; calib: ArrayDataset; data: ArrayDataset }> {
    const float = await balanced(fragileNet(width), varied([200, 3, 8, 8], 20), backend);
    const calib = new ArrayDataset('calib', varied([32, 3, 8, 8], 21));
    const data = await selfLabelled(float, varied([n, 3, 8, 8], 22), backend);
    return { float, calib, data };
  }

  async function setup(): Promise<{ float: Model; variants: Variants; scorer: Scorer; data: ArrayDataset }> {
    const { float, calib, data } = await fragile();
    const prepared = copy(float);
    prepareForQuantization(prepared);
    nameLayers(prepared);
    const variants = await Variants.create(prepared, { activation: 'uint8', calib, backend });
    const scorer = await Scorer.create(prepared, data, backend);
    return { float, variants, scorer, data };
  }

  it('ranks the fragile layer first', async () => {
    const { variants, scorer } = await setup();
    const s = await layerSensitivity(variants, scorer);
    assert.equal(s.metric, 'accuracy');
    assert.deepEqual(s.layers.map((l) => l.layer).sort(), ['convA', 'convB', 'convC', 'fc']);
    assert.equal(s.layers[0].layer, 'convB');
    assert.ok((s.layers[0].drop ?? 0) > 20, `convB alone drops ${s.layers[0].drop} pt`);
    for (const l of s.layers.slice(1)) assert.ok(l.sqnrDb > s.layers[0].sqnrDb + 10, `${l.layer} ${l.sqnrDb} dB`);
  });

  it('fallback keeps the fragile layer float to meet --max-drop, and says so', async () => {
    const { variants, scorer } = await setup();
    const s = await layerSensitivity(variants, scorer);
    const fb = await fallbackToFloat(variants, scorer, s.layers, { maxDrop: 3 });
    assert.ok((fb.initialDrop ?? 0) > 20, `full int8 drops ${fb.initialDrop} pt`);
    assert.equal(fb.met, true);
    assert.deepEqual(fb.float, ['convB']);
    assert.ok((fb.finalDrop ?? 99) <= 3);
  });

  it('quantizeModel with maxDrop reports the layers kept float and the final drop', async () => {
    const { float, calib, data } = await fragile();
    const m = copy(float);
    const r = await quantizeModel(m, { scheme: 'uint8', calib, backend, maxDrop: 3, eval: data });
    assert.deepEqual(r.quality?.fallback?.float, ['convB']);
    assert.ok(r.float.some((f) => f.node === 'convB' && f.reason === 'excluded'));
    assert.ok((r.quality?.score?.drop ?? 99) <= 3, `drop ${r.quality?.score?.drop}`);
  });

  it('mixed precision stays within the size budget', async () => {
    const { float, calib, data } = await fragile(32, 100);
    for (const budget of [0.35, 0.5]) {
      const m = copy(float);
      const r = await quantizeModel(m, { scheme: 'uint8', calib, backend, sizeBudget: budget, eval: data });
      const mixed = r.quality?.mixed;
      assert.ok(mixed);
      assert.ok(mixed.met, `budget ${budget}: ${mixed.bytes} > ${mixed.budgetBytes}`);
      assert.ok(modelStats(m).weightBytes <= budget * mixed.floatBytes);
      // The fragile layer is never int8 when anything else fits.
      assert.notEqual(mixed.layers.find((l) => l.layer === 'convB')?.precision, 'int8');
    }
  });

  it('the knapsack picks the least total cost within the budget', () => {
    const o = (bytes: number, cost: number) => ({ precision: 'int8' as const, bytes, cost });
    const layers = [
      [o(10, 5), o(5, 9), o(20, 0)],
      [o(10, 1), o(5, 2), o(20, 0)],
    ];
    assert.deepEqual(chooseOptions(layers, 40), [2, 2]);
    assert.deepEqual(chooseOptions(layers, 30), [2, 0]);
    assert.deepEqual(chooseOptions(layers, 20), [0, 0]);
    assert.deepEqual(chooseOptions(layers, 15), [0, 1]);
    assert.equal(chooseOptions(layers, 9), undefined);
  });
});
