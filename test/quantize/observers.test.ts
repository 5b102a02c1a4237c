/** Observers and the quantization arithmetic, against ranges worked out by hand. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createObserver,
  EntropyObserver,
  Histogram,
  klThreshold,
  MinMaxObserver,
  MseObserver,
  mseRange,
  PercentileObserver,
  quantizationMse,
} from '../../src/quantize/observers.js';
import {
  biasScaleFloor,
  fakeQuant,
  paramsForRange,
  quantizeBias,
  quantizeWeights,
  representable,
  roundHalfEven,
} from '../../src/quantize/params.js';
import { Random } from '../../src/util/random.js';

const feed = (o: { observe(v: Float32Array, lo: number, hi: number): void }, values: number[]): void => {
  const v = Float32Array.from(values);
  o.observe(v, Math.min(...values), Math.max(...values));
};

function normal(n: number, seed: number, std = 1): Float32Array {
  const rng = new Random(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * std);
}

describe('quantization parameters', () => {
  it('asymmetric uint8 maps the range onto 0..255 with zero exact', () => {
    const p = paramsForRange(-1, 3, 'uint8', false);
    assert.equal(p.scale, Math.fround(4 / 255));
    assert.equal(p.zeroPoint, 64); // round(0 - (-1) / (4/255)) = round(63.75)
    assert.equal(fakeQuant(0, p), 0);
  });

  it('widens the range to hold zero: a ReLU output starts at zero point 0', () => {
    const p = paramsForRange(0.5, 6, 'uint8', false);
    assert.equal(p.zeroPoint, 0);
    assert.equal(p.scale, Math.fround(6 / 255));
    const int8 = paramsForRange(0, 6, 'int8', false);
    assert.equal(int8.zeroPoint, -128);
    assert.deepEqual(representable(int8)[0], 0);
  });

  it('symmetric int8 has zero point 0 and scale max|x| / 127.5', () => {
    const p = paramsForRange(-2, 1, 'int8', true);
    assert.equal(p.zeroPoint, 0);
    assert.equal(p.scale, Math.fround(2 / 127.5));
  });

  it('an all-zero range gets scale 1', () => {
    assert.deepEqual(paramsForRange(0, 0, 'uint8', false), { scale: 1, zeroPoint: 0, dtype: 'uint8' });
  });

  it('rounds half to even, as QuantizeLinear does', () => {
    assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 2.4].map(roundHalfEven), [0, 2, 2, -0, -2, 2]);
  });

  it('quantizes weights per output channel, symmetric in ±127', () => {
    // Two channels (axis 0) of two elements: max |w| 1 and 0.1.
    const { values, scales } = quantizeWeights(Float32Array.from([1, -0.5, 0.1, 0.05]), [2, 2], 0);
    assert.deepEqual([...scales], [Math.fround(1 / 127), Math.fround(0.1 / 127)]);
    assert.deepEqual([...values], [127, -64, 127, 64]);
    // Axis 1 of a [2, 2] matrix: the columns.
    const cols = quantizeWeights(Float32Array.from([1, 0.1, -2, 0.05]), [2, 2], 1);
    assert.deepEqual([...cols.scales], [Math.fround(2 / 127), Math.fround(0.1 / 127)]);
    assert.deepEqual([...cols.values], [64, 127, -127, 64]);
    // Per tensor.
    const one = quantizeWeights(Float32Array.from([1, -0.5, 0.1, 0.05]), [2, 2], undefined);
    assert.equal(one.scales.length, 1);
  });

  it('stores the bias as int32 with scale input × weight, and keeps it representable', () => {
    const weightScales = Float32Array.from([0.01, 0.02]);
    const b = quantizeBias(Float32Array.from([0.5, -0.3]), 0.1, weightScales, (i) => i);
    assert.deepEqual([...b.scales], [Math.fround(0.1 * weightScales[0]), Math.fround(0.1 * weightScales[1])]);
    assert.deepEqual([...b.values], [500, -150]);
    assert.equal(b.clamped, 0);
    // A weight channel of zeros with a large bias: the floor keeps bias/scale inside int32.
    const floor = biasScaleFloor(Float32Array.from([1e6]), 1e-6, 1, () => 0);
    const w = quantizeWeights(new Float32Array(4), [1, 4], 0, floor);
    assert.equal(quantizeBias(Float32Array.from([1e6]), 1e-6, w.scales, () => 0).clamped, 0);
  });
});

describe('observers', () => {
  it('min-max keeps the extremes over batches', () => {
    const o = new MinMaxObserver();
    feed(o, [0.5, 2, -1]);
    feed(o, [3, 0]);
    o.observe(undefined, -4, 1);
    assert.deepEqual(o.range(), [-4, 3]);
    assert.deepEqual(new MinMaxObserver().range(), [0, 0]);
  });

  it('min-max skips non-finite values', () => {
    const o = new MinMaxObserver();
    o.observe(Float32Array.from([1, Number.NaN, -2, Number.POSITIVE_INFINITY]), Number.NaN, Number.POSITIVE_INFINITY);
    assert.deepEqual(o.range(), [-2, 1]);
  });

  it('a histogram grows by merging whole bins and loses no count', () => {
    const h = new Histogram(8);
    h.add(Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8]), 0, 8);
    assert.equal(h.width, 1);
    assert.equal(h.total, 9);
    // Out to the right: bins merge pairwise (width 2).
    h.add(Float32Array.from([15]), 15, 15);
    assert.equal(h.origin, 0);
    assert.equal(h.width, 2);
    assert.deepEqual([...h.counts], [2, 2, 2, 3, 0, 0, 0, 1]);
    // Out to the left: origin moves left by whole bins, then bins merge.
    h.add(Float32Array.from([-3]), -3, -3);
    assert.ok(h.origin <= -3);
    assert.equal(
      h.counts.reduce((a, b) => a + b, 0),
      11,
    );
    assert.equal(h.total, 11);
    assert.equal(h.min, -3);
    assert.equal(h.max, 15);
  });

  it('histogram quantiles interpolate within a bin', () => {
    const h = new Histogram(100);
    h.add(
      Float32Array.from({ length: 1000 }, (_, i) => i / 10),
      0,
      99.9,
    );
    assert.ok(Math.abs(h.quantile(0.5) - 50) < 0.2);
    assert.ok(Math.abs(h.quantile(0.9) - 90) < 0.2);
  });

  it('percentile cuts each tail of two-sided data and keeps the floor of one-sided data', () => {
    const values = Float32Array.from({ length: 10001 }, (_, i) => i - 5000); // -5000..5000, uniform
    const o = new PercentileObserver({ dtype: 'int8', symmetric: false, percentile: 99 });
    o.observe(values, -5000, 5000);
    const [lo, hi] = o.range();
    assert.ok(Math.abs(lo - -4900) < 10, `lo ${lo}`);
    assert.ok(Math.abs(hi - 4900) < 10, `hi ${hi}`);
    const relu = new PercentileObserver({ dtype: 'uint8', symmetric: false, percentile: 99 });
    relu.observe(
      Float32Array.from({ length: 1001 }, (_, i) => i),
      0,
      1000,
    );
    const [rlo, rhi] = relu.range();
    assert.equal(rlo, 0);
    assert.ok(Math.abs(rhi - 990) < 2, `hi ${rhi}`);
  });

  it('percentile over batches equals percentile over the whole', () => {
    const all = normal(40000, 7);
    const whole = new PercentileObserver({ dtype: 'int8', symmetric: false, percentile: 99.9 });
    whole.observe(all, Math.min(...all), Math.max(...all));
    const streamed = new PercentileObserver({ dtype: 'int8', symmetric: false, percentile: 99.9 });
    // Small first batch: the histogram must grow several times.
    for (const [a, b] of [
      [0, 100],
      [100, 5000],
      [5000, 40000],
    ]) {
      const part = all.subarray(a, b);
      streamed.observe(part, Math.min(...part), Math.max(...part));
    }
    const [wl, wh] = whole.range();
    const [sl, sh] = streamed.range();
    assert.ok(Math.abs(wl - sl) < 0.05 && Math.abs(wh - sh) < 0.05, `${[wl, wh]} vs ${[sl, sh]}`);
    // 99.9th percentile of a standard normal: 3.09.
    assert.ok(Math.abs(wh - 3.09) < 0.15, `hi ${wh}`);
  });

  it('entropy clips a long-tailed distribution well inside its maximum', () => {
    // Gaussian bulk (σ = 1) plus a few far outliers at ±40.
    const bulk = normal(200000, 3);
    const values = new Float32Array(bulk.length + 20);
    values.set(bulk);
    for (let i = 0; i < 20; i++) values[bulk.length + i] = i % 2 ? 40 : -40;
    const o = new EntropyObserver({ dtype: 'int8', symmetric: true });
    o.observe(values, -40, 40);
    const [lo, hi] = o.range();
    assert.ok(hi > 3 && hi < 20, `threshold ${hi} should sit between the bulk and the outliers`);
    assert.equal(lo, -hi);
  });

  it('entropy keeps the whole range of a uniform distribution', () => {
    const h = new Histogram(2048, true);
    h.add(
      Float32Array.from({ length: 100000 }, (_, i) => (i / 100000) * 10),
      0,
      10,
    );
    assert.ok(klThreshold(h, 128) > 9.5);
  });

  it('mse picks the clipping range with the smallest error, and beats min-max on outliers', () => {
    const bulk = normal(100000, 5);
    const values = new Float32Array(bulk.length + 10);
    values.set(bulk);
    for (let i = 0; i < 10; i++) values[bulk.length + i] = 60;
    const o = new MseObserver({ dtype: 'uint8', symmetric: false });
    o.observe(values, Math.min(...values), 60);
    const [lo, hi] = o.range();
    assert.ok(hi < 60, `clipped: ${hi}`);
    const h = new Histogram(2048);
    h.add(values, Math.min(...values), 60);
    const mseChosen = quantizationMse(h, lo, hi, 'uint8', false);
    const mseMinMax = quantizationMse(h, h.min, h.max, 'uint8', false);
    assert.ok(mseChosen < mseMinMax, `${mseChosen} < ${mseMinMax}`);
    assert.deepEqual(mseRange(h, 'uint8', false), [lo, hi]);
  });

  it('createObserver rejects a percentile outside (50, 100]', () => {
    assert.throws(() => createObserver('percentile', { dtype: 'uint8', symmetric: false, percentile: 20 }), /percentile 20/);
    assert.equal(createObserver('minmax', { dtype: 'uint8', symmetric: false }).needsValues, false);
    assert.equal(createObserver('entropy', { dtype: 'uint8', symmetric: false }).needsValues, true);
  });
});
