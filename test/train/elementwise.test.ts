/** Gradient rules of the elementwise family, checked by finite differences on onnxruntime. */
import { after, describe, it } from 'node:test';
import type { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { awayFrom, distinct, expectGradient, type FloatType, positive, RESULTS } from './gradcheck.js';

const unary =
  (op: string, attrs: Record<string, number> = {}, shape = [3, 4]) =>
  (b: ModelBuilder, t: FloatType) =>
    b.op(op, [b.input('x', t, shape)], attrs);

const binary = (op: string, a: number[], c: number[]) => (b: ModelBuilder, t: FloatType) =>
  b.op(op, [b.input('a', t, a), b.input('b', t, c)]);

after(() => {
  for (const r of RESULTS) console.log(`# ${r.name.padEnd(34)} ${r.dtype}  worst ${r.worst.toExponential(2)}`);
});

describe('gradients: unary elementwise ops', () => {
  const smooth: Array<[string, Record<string, number>?, Record<string, (r: import('../../src/util/random.js').Random) => number>?]> = [
    ['Sigmoid'],
    ['Tanh'],
    ['Exp'],
    ['Neg'],
    ['Sin'],
    ['Cos'],
    ['Softsign', {}, { x: awayFrom([0]) }],
    ['Log', {}, { x: positive() }],
    ['Sqrt', {}, { x: positive() }],
    ['Reciprocal', {}, { x: positive() }],
    ['Abs', {}, { x: awayFrom([0]) }],
    ['Relu', {}, { x: awayFrom([0]) }],
    ['LeakyRelu', { alpha: 0.1 }, { x: awayFrom([0]) }],
    ['Softplus'],
    ['Elu', { alpha: 0.7 }, { x: awayFrom([0]) }],
    ['Selu', {}, { x: awayFrom([0]) }],
    ['Erf'],
    ['HardSigmoid', { alpha: 0.3, beta: 0.4 }, { x: awayFrom([-0.4 / 0.3, 0.6 / 0.3], 0.1, 4) }],
    ['HardSwish', {}, { x: awayFrom([-3, 3], 0.1, 5) }],
    ['Floor', {}, { x: awayFrom([-2, -1, 0, 1, 2]) }],
    ['Round', {}, { x: awayFrom([-1.5, -0.5, 0.5, 1.5]) }],
  ];
  for (const [op, attrs, values] of smooth) {
    it(op, async () => {
      await expectGradient(op, { build: unary(op, attrs ?? {}), values });
    });
  }

  it('Clip with both bounds, one bound, none', async () => {
    const lo = (b: ModelBuilder, t: FloatType) => b.constant('lo', Tensor.from(t, [], [-0.5]));
    const hi = (b: ModelBuilder, t: FloatType) => b.constant('hi', Tensor.from(t, [], [0.8]));
    const values = { x: awayFrom([-0.5, 0.8], 0.05) };
    await expectGradient('Clip(min, max)', { build: (b, t) => b.op('Clip', [b.input('x', t, [3, 5]), lo(b, t), hi(b, t)]), values });
    await expectGradient('Clip(max only)', { build: (b, t) => b.op('Clip', [b.input('x', t, [3, 5]), null, hi(b, t)]), values });
    await expectGradient('Clip()', { build: (b, t) => b.op('Clip', [b.input('x', t, [3, 5])]) });
  });

  it('Cast float32 → float64', async () => {
    await expectGradient('Cast', {
      dtype: 'float32',
      build: (b) =>
        b.op('Mul', [b.op('Cast', [b.input('x', 'float32', [2, 3])], { to: 11 }), b.constant('k', Tensor.from('float64', [], [3]))]),
    });
  });
});

describe('gradients: broadcasting binary ops', () => {
  const shapes: Array<[number[], number[]]> = [
    [
      [2, 3, 4],
      [2, 3, 4],
    ],
    [[2, 3, 4], [4]],
    [
      [2, 1, 4],
      [3, 1],
    ],
    [[1], [2, 3]],
    [[], [2, 3]],
    [
      [3, 1, 2],
      [1, 4, 1],
    ],
  ];
  for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
    for (const [a, c] of shapes) {
      it(`${op} [${a}] with [${c}]`, async () => {
        await expectGradient(`${op} [${a}]·[${c}]`, {
          build: binary(op, a, c),
          values: op === 'Div' ? { b: awayFrom([0], 0.5) } : undefined,
        });
      });
    }
  }

  it('Mul of a value by itself (x·x), and x used by two nodes', async () => {
    await expectGradient('Mul(x, x)', { build: (b, t) => ((x) => b.op('Mul', [x, x]))(b.input('x', t, [2, 3])) });
    await expectGradient('Add(Exp x, Sin x)', {
      build: (b, t) => {
        const x = b.input('x', t, [2, 3]);
        return b.op('Add', [b.op('Exp', [x]), b.op('Sin', [x])]);
      },
    });
  });

  it('Pow with a constant exponent, and with a varying one', async () => {
    for (const e of [2, 3, 0.5, -1.5]) {
      await expectGradient(`Pow(x, ${e})`, {
        build: (b, t) => b.op('Pow', [b.input('x', t, [2, 3]), b.constant('e', Tensor.from(t, [], [e]))]),
        values: { x: positive() },
      });
    }
    await expectGradient('Pow(a, b) broadcast', {
      build: binary('Pow', [2, 3], [3]),
      values: { a: positive(), b: (r) => r.next() * 2 - 1 },
    });
  });

  it('PRelu with a per-channel slope', async () => {
    await expectGradient('PRelu', {
      build: (b, t) => b.op('PRelu', [b.input('x', t, [2, 3, 4]), b.input('s', t, [3, 1])]),
      values: { x: awayFrom([0]) },
    });
  });
});

describe('gradients: variadic ops and Where', () => {
  it('Sum and Mean of three broadcasting inputs', async () => {
    for (const op of ['Sum', 'Mean']) {
      await expectGradient(op, {
        build: (b, t) => b.op(op, [b.input('a', t, [2, 3]), b.input('b', t, [3]), b.input('c', t, [2, 1])]),
      });
    }
  });

  it('Max and Min', async () => {
    for (const op of ['Max', 'Min']) {
      await expectGradient(op, {
        build: (b, t) => b.op(op, [b.input('a', t, [2, 3]), b.input('b', t, [2, 3])]),
        values: { a: distinct(0.1), b: (r) => r.next() * 0.04 + 0.1 * Math.floor(r.next() * 20 - 10) + 0.03 },
      });
    }
  });

  it('Where with broadcasting branches', async () => {
    await expectGradient('Where', {
      build: (b, t) =>
        b.op('Where', [b.constant('c', Tensor.from('bool', [2, 3], [1, 0, 0, 1, 1, 0])), b.input('x', t, [2, 3]), b.input('y', t, [3])]),
    });
  });
});
