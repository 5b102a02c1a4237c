/**
 * Operators that fit no other family: random generators (shape rules only: their outputs are not
 * reproducible), string processing (StringNormalizer, TfIdfVectorizer, RegexFullMatch,
 * StringConcat, StringSplit), the losses NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss,
 * and the training operators of ai.onnx.preview.training (Adagrad, Adam, Momentum, Gradient).
 * Spec: https://onnx.ai/onnx/operators/
 */
import { broadcastShapes } from '../ir/dims.js';
import { type DType, dtypeCode, dtypeFromCode } from '../ir/dtype.js';
import type { Graph, Value } from '../ir/graph.js';
import { shapeSize, Tensor } from '../ir/tensor.js';
import type { Dim, Shape, ValueType } from '../ir/types.js';
import { elementCount, fromOutput0, withGradients } from './grad.js';
import type { GradContext, GradRule, InferContext, KernelContext, OpSchema } from './schema.js';
import { broadcastDims, broadcastIndices, fromNumbers, numbers } from './util.js';

const TRAINING = 'ai.onnx.preview.training';

/** A dtype attribute given as an ONNX code; `fallback` when absent. */
function dtypeAttr(ctx: InferContext | KernelContext, name: string, fallback: DType | undefined): DType | undefined {
  const code = ctx.node.int(name);
  if (code === undefined) return fallback;
  const dtype = dtypeFromCode(code);
  if (!dtype) return ctx.fail(`unknown ${name} ${code}`);
  return dtype;
}

// ---------------------------------------------------------------- random

const RANDOM_ATTRS = { dtype: 'int', high: 'float', low: 'float', mean: 'float', scale: 'float', seed: 'float' } as const;

/** RandomUniform, RandomNormal: shape and dtype (default float32) from attributes. */
function randomOp(op: string): OpSchema {
  return {
    op,
    attrs: { ...RANDOM_ATTRS, shape: 'ints' },
    infer(ctx) {
      const shape = ctx.node.ints('shape');
      if (!shape) return ctx.fail(`${op} needs the shape attribute`);
      ctx.output(0, dtypeAttr(ctx, 'dtype', 'float32'), shape);
    },
  };
}

/** RandomUniformLike, RandomNormalLike, Bernoulli: the input's shape; dtype from the attribute or the input. */
function randomLikeOp(op: string): OpSchema {
  return {
    op,
    attrs: RANDOM_ATTRS,
    infer: (ctx) => ctx.output(0, dtypeAttr(ctx, 'dtype', ctx.dtype(0)), ctx.shape(0)),
  };
}

const multinomial: OpSchema = {
  op: 'Multinomial',
  attrs: { dtype: 'int', sample_size: 'int', seed: 'float' },
  infer(ctx) {
    const shape = ctx.shape(0);
    if (shape && shape.length !== 2) ctx.fail(`Multinomial input must be [batch, classes], got rank ${shape.length}`);
    ctx.output(0, dtypeAttr(ctx, 'dtype', 'int32'), [shape?.[0] ?? null, ctx.node.int('sample_size', 1)]);
  },
};

// ---------------------------------------------------------------- StringNormalizer

/**
 * Removes stopwords (whole elements) and changes case. Input is [C] or [1, C]; when every element
 * is removed the output holds one empty string. Case mapping is full Unicode, like the ONNX
 * reference's Python ("ß" → "SS"); onnxruntime maps character by character and keeps "ß".
 */
const stringNormalizer: OpSchema = {
  op: 'StringNormalizer',
  attrs: { case_change_action: 'string', is_case_sensitive: 'int', locale: 'string', stopwords: 'strings' },
  infer(ctx) {
    const shape = ctx.shape(0);
    if (ctx.dtype(0) && ctx.dtype(0) !== 'string') ctx.fail(`StringNormalizer needs a string input, got ${ctx.dtype(0)}`);
    if (!shape) return ctx.output(0, 'string', undefined);
    if (shape.length !== 1 && shape.length !== 2) ctx.fail(`StringNormalizer input must be [C] or [1, C], got rank ${shape.length}`);
    if (shape.length === 2 && typeof shape[0] === 'number' && shape[0] !== 1)
      ctx.fail(`StringNormalizer input must be [1, C], got [${shape}]`);
    // How many elements survive the stopwords is only known at run time.
    const stops = ctx.node.attr('stopwords');
    const count: Dim = stops?.type === 'strings' && stops.value.length > 0 ? ctx.freshDim('strings') : shape[shape.length - 1];
    ctx.output(0, 'string', shape.length === 1 ? [count] : [1, count]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    if (x.rank === 2 && x.dims[0] !== 1) ctx.fail(`StringNormalizer input must be [1, C], got [${x.dims}]`);
    const action = ctx.node.str('case_change_action', 'NONE');
    if (action !== 'NONE' && action !== 'LOWER' && action !== 'UPPER') ctx.fail(`unknown case_change_action "${action}"`);
    const sensitive = ctx.node.int('is_case_sensitive', 0) !== 0;
    const attr = ctx.node.attr('stopwords');
    const key = (s: string): string => (sensitive ? s : s.toLowerCase());
    const stops = new Set((attr?.type === 'strings' ? attr.value : []).map(key));
    const kept = x.strings
      .filter((s) => !stops.has(key(s)))
      .map((s) => (action === 'LOWER' ? s.toLowerCase() : action === 'UPPER' ? s.toUpperCase() : s));
    const out = kept.length > 0 ? kept : [''];
    return [Tensor.fromStrings(x.rank === 1 ? [out.length] : [1, out.length], out)];
  },
};

// ---------------------------------------------------------------- TfIdfVectorizer

interface NgramTable {
  /** Output index of each n-gram, keyed by its items. */
  index: Map<string, number>;
  outputSize: number;
}

const ngramKey = (items: ReadonlyArray<string | number>): string => JSON.stringify(items);

/** The pool's n-grams (sizes min..max only) with their output indexes. */
function ngramTable(ctx: KernelContext): NgramTable {
  const n = ctx.node;
  const counts = n.ints('ngram_counts') ?? [];
  const indexes = n.ints('ngram_indexes') ?? [];
  const strAttr = n.attr('pool_strings');
  const pool: Array<string | number> = n.ints('pool_int64s') ?? (strAttr?.type === 'strings' ? strAttr.value : []);
  const minN = n.int('min_gram_length', 1);
  const maxN = n.int('max_gram_length', 1);
  const index = new Map<string, number>();
  // ngram_counts[i] is where the n-grams of size i+1 start in the pool; ids run over all of them.
  let id = 0;
  counts.forEach((start, i) => {
    const size = i + 1;
    const end = i + 1 < counts.length ? counts[i + 1] : pool.length;
    for (let at = start; at + size <= end; at += size, id++) {
      if (size < minN || size > maxN) continue;
      if (id >= indexes.length) ctx.fail(`ngram_indexes has ${indexes.length} entries, the pool more n-grams`);
      index.set(ngramKey(pool.slice(at, at + size)), indexes[id]);
    }
  });
  return { index, outputSize: indexes.length > 0 ? Math.max(...indexes) + 1 : 0 };
}

/** n-gram counts of one row: items `skip + 1` apart, each size counted once per skip distance (unigrams once). */
function countNgrams(ctx: KernelContext, row: ReadonlyArray<string | number>, table: NgramTable, counts: Float64Array): void {
  const minN = ctx.node.int('min_gram_length', 1);
  const maxN = ctx.node.int('max_gram_length', 1);
  const maxSkip = ctx.node.int('max_skip_count', 0);
  for (let skip = 0; skip <= maxSkip; skip++) {
    const step = skip + 1;
    const from = skip > 0 ? Math.max(minN, 2) : minN;
    for (let start = 0; start < row.length; start++) {
      for (let size = from; size <= maxN; size++) {
        if (start + (size - 1) * step >= row.length) break;
        const items = Array.from({ length: size }, (_, k) => row[start + k * step]);
        const out = table.index.get(ngramKey(items));
        if (out !== undefined) counts[out]++;
      }
    }
  }
}

const tfIdfVectorizer: OpSchema = {
  op: 'TfIdfVectorizer',
  attrs: {
    max_gram_length: 'int',
    max_skip_count: 'int',
    min_gram_length: 'int',
    mode: 'string',
    ngram_counts: 'ints',
    ngram_indexes: 'ints',
    pool_int64s: 'ints',
    pool_strings: 'strings',
    weights: 'floats',
  },
  infer(ctx) {
    const indexes = ctx.node.ints('ngram_indexes') ?? [];
    const size = indexes.length > 0 ? Math.max(...indexes) + 1 : 0;
    const shape = ctx.shape(0);
    if (!shape) return ctx.output(0, 'float32', undefined);
    if (shape.length === 0 || shape.length === 1) return ctx.output(0, 'float32', [size]);
    if (shape.length !== 2) ctx.fail(`TfIdfVectorizer input must be [C] or [N, C], got rank ${shape.length}`);
    ctx.output(0, 'float32', [shape[0], size]);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    if (x.rank > 2) ctx.fail(`TfIdfVectorizer input must be [C] or [N, C], got [${x.dims}]`);
    const rows = x.rank === 2 ? x.dims[0] : 1;
    const width = x.rank === 0 ? 1 : x.dims[x.rank - 1];
    const items: Array<string | number> = x.dtype === 'string' ? x.strings : Array.from(numbers(x));
    const table = ngramTable(ctx);
    const mode = ctx.node.str('mode', 'TF');
    const weights = ctx.node.floats('weights');
    const out = new Float64Array(rows * table.outputSize);
    for (let r = 0; r < rows; r++) {
      const counts = new Float64Array(table.outputSize);
      countNgrams(ctx, items.slice(r * width, (r + 1) * width), table, counts);
      for (let i = 0; i < table.outputSize; i++) {
        const w = weights ? weights[i] : 1;
        const c = counts[i];
        out[r * table.outputSize + i] =
          mode === 'TF' ? c : mode === 'IDF' ? (c > 0 ? w : 0) : mode === 'TFIDF' ? w * c : ctx.fail(`unknown mode "${mode}"`);
      }
    }
    return [fromNumbers('float32', x.rank === 2 ? [rows, table.outputSize] : [table.outputSize], out)];
  },
};

// ---------------------------------------------------------------- RegexFullMatch, StringConcat, StringSplit

const regexFullMatch: OpSchema = {
  op: 'RegexFullMatch',
  attrs: { pattern: 'string' },
  // RE2 syntax differs from JavaScript's; no kernel rather than a subtly different one.
  infer: (ctx) => ctx.output(0, 'bool', ctx.shape(0)),
};

const stringConcat: OpSchema = {
  op: 'StringConcat',
  infer(ctx) {
    const a = ctx.shape(0);
    const b = ctx.shape(1);
    if (!a || !b) return ctx.output(0, 'string', undefined);
    const out = broadcastShapes([a, b]);
    if (typeof out === 'string') return ctx.fail(out);
    ctx.output(0, 'string', out);
  },
  kernel(ctx) {
    const a = ctx.input(0);
    const b = ctx.input(1);
    const dims = broadcastDims(ctx, a.dims, b.dims);
    const ia = broadcastIndices(a.dims, dims);
    const ib = broadcastIndices(b.dims, dims);
    const sa = a.strings;
    const sb = b.strings;
    return [
      Tensor.fromStrings(
        dims,
        Array.from({ length: shapeSize(dims) }, (_, i) => sa[ia[i]] + sb[ib[i]]),
      ),
    ];
  },
};

/**
 * Splits like Python's str.split, as the ONNX reference does: on runs of whitespace when no
 * delimiter is given, at most maxsplit times, the remainder kept as is (onnxruntime also trims
 * the remainder's trailing whitespace).
 */
function splitString(s: string, delimiter: string, maxsplit: number | undefined): string[] {
  const limit = maxsplit ?? Number.POSITIVE_INFINITY;
  const parts: string[] = [];
  if (delimiter === '') {
    let rest = s.replace(/^\s+/, '');
    while (rest.length > 0) {
      const m = parts.length < limit ? /\s+/.exec(rest) : null;
      if (!m) {
        parts.push(rest);
        break;
      }
      parts.push(rest.slice(0, m.index));
      rest = rest.slice(m.index + m[0].length);
      if (parts.length >= limit) rest = rest.replace(/^\s+/, '');
    }
    return parts;
  }
  let rest = s;
  for (;;) {
    const at = parts.length < limit ? rest.indexOf(delimiter) : -1;
    if (at < 0) {
      parts.push(rest);
      return parts;
    }
    parts.push(rest.slice(0, at));
    rest = rest.slice(at + delimiter.length);
  }
}

const stringSplit: OpSchema = {
  op: 'StringSplit',
  attrs: { delimiter: 'string', maxsplit: 'int' },
  infer(ctx) {
    const shape = ctx.shape(0);
    // The number of substrings (the padded last dim) is only known at run time.
    ctx.output(0, 'string', shape ? [...shape, ctx.freshDim('splits')] : undefined);
    ctx.output(1, 'int64', shape);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const delimiter = ctx.node.str('delimiter', '');
    const maxsplit = ctx.node.int('maxsplit');
    const parts = x.strings.map((s) => splitString(s, delimiter, maxsplit));
    const width = Math.max(0, ...parts.map((p) => p.length));
    const padded = parts.flatMap((p) => [...p, ...new Array<string>(width - p.length).fill('')]);
    return [
      Tensor.fromStrings([...x.dims, width], padded),
      fromNumbers(
        'int64',
        x.dims,
        parts.map((p) => p.length),
      ),
    ];
  },
};

// ---------------------------------------------------------------- losses

/** Loss output: the target's shape with reduction none, else a scalar; input 0's dtype. */
function inferLoss(ctx: InferContext, lossName: string): void {
  const reduction = ctx.node.str('reduction', 'mean');
  if (reduction !== 'none' && reduction !== 'sum' && reduction !== 'mean') ctx.fail(`unknown reduction "${reduction}"`);
  const x = ctx.shape(0);
  const target = ctx.shape(1);
  if (x && x.length < 2) ctx.fail(`${lossName} input must be [N, C, ...], got rank ${x.length}`);
  if (x && target) {
    if (target.length !== x.length - 1) ctx.fail(`target rank ${target.length} must be input rank ${x.length} − 1`);
    const expected = [x[0], ...x.slice(2)];
    target.forEach((d, i) => {
      const e = expected[i];
      if (typeof d === 'number' && typeof e === 'number' && d !== e) ctx.fail(`target shape [${target}] does not match input shape [${x}]`);
    });
  }
  const w = ctx.shape(2);
  if (ctx.hasInput(2) && w && w.length !== 1) ctx.fail(`weight must be rank 1, got ${w.length}`);
  let out: Shape | undefined = [];
  if (reduction === 'none') out = target ?? (x ? [x[0], ...x.slice(2)] : undefined);
  ctx.output(0, ctx.dtype(0), out);
}

/**
 * Negative log-likelihood of log-probabilities `logp` ([N, C, D] flattened) at `target` ([N, D]):
 * −logp[n, t, d]·w[t], zero where t is ignore_index. mean divides by the summed weights.
 */
function nllLoss(ctx: KernelContext, logp: ArrayLike<number>, dims: readonly number[], target: Tensor, weight: Tensor | undefined): Tensor {
  const [N, C] = dims;
  const D = shapeSize(dims.slice(2));
  const t = numbers(target);
  const w = weight ? numbers(weight) : undefined;
  const ignore = ctx.node.int('ignore_index');
  const loss = new Float64Array(N * D);
  let weightSum = 0;
  for (let n = 0; n < N; n++) {
    for (let d = 0; d < D; d++) {
      const cls = t[n * D + d];
      if (cls === ignore) continue;
      if (cls < 0 || cls >= C) ctx.fail(`target ${cls} is outside [0, ${C})`);
      const wt = w ? w[cls] : 1;
      loss[n * D + d] = -logp[(n * C + cls) * D + d] * wt;
      weightSum += wt;
    }
  }
  const reduction = ctx.node.str('reduction', 'mean');
  const dtype = ctx.input(0).dtype;
  if (reduction === 'none') return fromNumbers(dtype, target.dims, loss);
  const sum = loss.reduce((a, b) => a + b, 0);
  return fromNumbers(dtype, [], [reduction === 'sum' ? sum : sum / weightSum]);
}

const LOSS_ATTRS = { ignore_index: 'int', reduction: 'string' } as const;

const negativeLogLikelihoodLoss: OpSchema = {
  op: 'NegativeLogLikelihoodLoss',
  attrs: LOSS_ATTRS,
  infer: (ctx) => inferLoss(ctx, 'NegativeLogLikelihoodLoss'),
  kernel(ctx) {
    const x = ctx.input(0);
    return [nllLoss(ctx, numbers(x), x.dims, ctx.input(1), ctx.optional(2))];
  },
};

/** log(softmax(x)) along axis 1 of [N, C, ...]. */
function logSoftmaxAxis1(x: Tensor): Float64Array {
  const v = numbers(x);
  const [N, C] = x.dims;
  const D = shapeSize(x.dims.slice(2));
  const out = new Float64Array(v.length);
  for (let n = 0; n < N; n++) {
    for (let d = 0; d < D; d++) {
      let max = Number.NEGATIVE_INFINITY;
      for (let c = 0; c < C; c++) max = Math.max(max, v[(n * C + c) * D + d]);
      let sum = 0;
      for (let c = 0; c < C; c++) sum += Math.exp(v[(n * C + c) * D + d] - max);
      const lse = max + Math.log(sum);
      for (let c = 0; c < C; c++) out[(n * C + c) * D + d] = v[(n * C + c) * D + d] - lse;
    }
  }
  return out;
}

const softmaxCrossEntropyLoss: OpSchema = {
  op: 'SoftmaxCrossEntropyLoss',
  attrs: LOSS_ATTRS,
  infer(ctx) {
    inferLoss(ctx, 'SoftmaxCrossEntropyLoss');
    // The optional second output is log(softmax(scores)), shaped like the scores.
    ctx.output(1, ctx.dtype(0), ctx.shape(0));
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const logp = logSoftmaxAxis1(x);
    return [nllLoss(ctx, logp, x.dims, ctx.input(1), ctx.optional(2)), fromNumbers(x.dtype, x.dims, logp)];
  },
};

// ---------------------------------------------------------------- training (ai.onnx.preview.training)

/**
 * Inputs R, T, then `groups` runs of n tensors each (X…, G…, …); outputs are `outGroups` runs of
 * n, each mirroring the X run's types (the optimised tensors and their state share shapes).
 */
function inferOptimizer(ctx: InferContext, groups: number, outGroups: number): void {
  const n = (ctx.numInputs - 2) / groups;
  if (!Number.isInteger(n) || n < 1) ctx.fail(`${ctx.node.opType} needs 2 + ${groups}·n inputs, got ${ctx.numInputs}`);
  if (ctx.numOutputs > outGroups * n) ctx.fail(`${ctx.node.opType} has ${ctx.numOutputs} outputs, at most ${outGroups * n} expected`);
  for (let g = 0; g < outGroups; g++) {
    for (let i = 0; i < n; i++) {
      // New X mirrors X (input group 0); each new state mirrors its state (groups 2… after G).
      const src = 2 + (g === 0 ? 0 : g + 1) * n + i;
      const t = ctx.inputType(src) ?? ctx.inputType(2 + i);
      if (t) ctx.setOutput(g * n + i, t);
    }
  }
}

/** Runs `update` element by element over each of the n optimised tensors. */
function runOptimizer(ctx: KernelContext, groups: number, update: (r: number, t: number, inputs: number[]) => number[]): Tensor[] {
  const n = (ctx.numInputs - 2) / groups;
  const r = numbers(ctx.input(0))[0];
  const t = numbers(ctx.input(1))[0];
  const outs: Tensor[][] = [];
  for (let i = 0; i < n; i++) {
    const ins = Array.from({ length: groups }, (_, g) => ctx.input(2 + g * n + i));
    const vals = ins.map((x) => numbers(x));
    const size = ins[0].size;
    const results: Float64Array[] = [];
    for (let k = 0; k < size; k++) {
      const res = update(
        r,
        t,
        vals.map((v) => v[k]),
      );
      res.forEach((v, j) => {
        results[j] ??= new Float64Array(size);
        results[j][k] = v;
      });
    }
    outs.push(results.map((v) => fromNumbers(ins[0].dtype, ins[0].dims, v)));
  }
  // Outputs are grouped by kind: all new X, then all of the first state, and so on.
  const kinds = outs[0]?.length ?? 0;
  return Array.from({ length: kinds }, (_, j) => outs.map((o) => o[j])).flat();
}

const adagrad: OpSchema = {
  op: 'Adagrad',
  domain: TRAINING,
  attrs: { decay_factor: 'float', epsilon: 'float', norm_coefficient: 'float' },
  // Inputs R, T, X…, G…, H…; outputs X_new…, H_new….
  infer: (ctx) => inferOptimizer(ctx, 3, 2),
  kernel(ctx) {
    const decay = ctx.node.float('decay_factor', 0);
    const eps = ctx.node.float('epsilon', 1e-6);
    const norm = ctx.node.float('norm_coefficient', 0);
    return runOptimizer(ctx, 3, (r, t, [x, g, h]) => {
      const rate = r / (1 + t * decay);
      const gr = norm * x + g;
      const hNew = h + gr * gr;
      return [x - (rate * gr) / (Math.sqrt(hNew) + eps), hNew];
    });
  },
};

const adam: OpSchema = {
  op: 'Adam',
  domain: TRAINING,
  attrs: { alpha: 'float', beta: 'float', epsilon: 'float', norm_coefficient: 'float', norm_coefficient_post: 'float' },
  // Inputs R, T, X…, G…, V…, H…; outputs X_new…, V_new…, H_new….
  infer: (ctx) => inferOptimizer(ctx, 4, 3),
  kernel(ctx) {
    const alpha = ctx.node.float('alpha', 0.9);
    const beta = ctx.node.float('beta', 0.999);
    const eps = ctx.node.float('epsilon', 1e-6);
    const norm = ctx.node.float('norm_coefficient', 0);
    const post = ctx.node.float('norm_coefficient_post', 0);
    return runOptimizer(ctx, 4, (r, t, [x, g, v, h]) => {
      const gr = norm * x + g;
      const vNew = alpha * v + (1 - alpha) * gr;
      const hNew = beta * h + (1 - beta) * gr * gr;
      // Bias correction once at least one step has been taken.
      const rate = t > 0 ? (r * Math.sqrt(1 - beta ** t)) / (1 - alpha ** t) : r;
      const xNew = x - (rate * vNew) / (Math.sqrt(hNew) + eps);
      return [(1 - post) * xNew, vNew, hNew];
    });
  },
};

const momentum: OpSchema = {
  op: 'Momentum',
  domain: TRAINING,
  attrs: { alpha: 'float', beta: 'float', mode: 'string', norm_coefficient: 'float' },
  // Inputs R, T, X…, G…, V…; outputs X_new…, V_new….
  infer: (ctx) => inferOptimizer(ctx, 3, 2),
  kernel(ctx) {
    const alpha = ctx.node.float('alpha');
    const beta = ctx.node.float('beta');
    const norm = ctx.node.float('norm_coefficient');
    const mode = ctx.node.str('mode');
    if (alpha === undefined || beta === undefined || norm === undefined || mode === undefined) {
      return ctx.fail('Momentum needs alpha, beta, mode and norm_coefficient');
    }
    if (mode !== 'standard' && mode !== 'nesterov') return ctx.fail(`unknown Momentum mode "${mode}"`);
    return runOptimizer(ctx, 3, (r, t, [x, g, v]) => {
      const gr = norm * x + g;
      // The first step (T = 0) takes the gradient unscaled.
      const vNew = alpha * v + (t > 0 ? beta : 1) * gr;
      return [mode === 'standard' ? x - r * vNew : x - r * (gr + alpha * vNew), vNew];
    });
  },
};

/** Gradient: output i is the gradient of y with respect to xs[i], shaped like the i-th input (xs come first). */
const gradient: OpSchema = {
  op: 'Gradient',
  domain: TRAINING,
  attrs: { xs: 'strings', y: 'string', zs: 'strings' },
  infer(ctx) {
    const xs = ctx.node.attr('xs');
    if (xs?.type !== 'strings') return ctx.fail('Gradient needs the xs attribute');
    if (ctx.numOutputs > xs.value.length) ctx.fail(`Gradient has ${ctx.numOutputs} outputs for ${xs.value.length} xs`);
    for (let i = 0; i < ctx.numOutputs; i++) {
      const t = ctx.inputType(i) ?? typeOfNamed(ctx, xs.value[i]);
      if (t) ctx.setOutput(i, t);
    }
  },
};

/** The type of a value named in the node's graph or an enclosing one (Gradient names its xs). */
function typeOfNamed(ctx: InferContext, name: string): ValueType | undefined {
  for (let g: Graph | undefined = ctx.node.graph; g; g = g.parent) {
    for (const v of [...g.inputs, ...g.initializers]) if (v.name === name) return v.type;
    for (const n of g.nodes) for (const v of n.outputs) if (v?.name === name) return v.type;
  }
  return undefined;
}

// ---------------------------------------------------------------- gradients of the losses

/**
 * What scales each element's gradient in NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss:
 * dLoss times the class weight of the element's target (0 where the target is ignore_index),
 * over the summed weights (or the element count) for reduction mean. `coef` is a scalar when
 * every element has the same factor, else shaped [N, 1, D…] to broadcast over the classes;
 * `labels` are the targets with ignored ones replaced by 0, safe to index with.
 */
function lossScale(c: GradContext, dLoss: Value): { coef: Value; labels: Value } {
  const target = c.input(1);
  const t = c.dtype(c.input(0));
  const rank = c.shape(target).length;
  const all = Array.from({ length: rank }, (_, i) => i);
  const ignore = c.node.int('ignore_index');
  let labels = target;
  let weight: Value | undefined;
  let valid: Value | undefined;
  if (ignore !== undefined) {
    valid = c.op('Not', [c.op('Equal', [target, c.scalar(ignore, c.dtype(target))])]);
    labels = c.op('Where', [valid, target, c.scalar(0, c.dtype(target))]);
  }
  const classWeights = c.optionalInput(2);
  if (classWeights) {
    if (c.needs(2)) c.fail('gradients with respect to the class weights are not supported');
    weight = c.op('Gather', [classWeights, labels], { axis: 0 });
    if (valid) weight = c.op('Where', [valid, weight, c.scalar(0, t)]);
  } else if (valid) {
    weight = c.op('Cast', [valid], { to: dtypeCode(t) });
  }
  let coef = dLoss;
  if (c.node.str('reduction', 'mean') === 'mean') {
    const denominator = weight ? c.reduce('ReduceSum', weight, all, false) : elementCount(c, target, all, t);
    coef = c.op('Div', [coef, denominator]);
  }
  if (weight) coef = c.op('Mul', [coef, weight]);
  const perElement = weight !== undefined || c.node.str('reduction', 'mean') === 'none';
  return { coef: perElement ? c.op('Unsqueeze', [coef, c.ints([1])]) : coef, labels };
}

/** NegativeLogLikelihoodLoss: −coef at each element's target class, 0 elsewhere. */
const nllGrad: GradRule = fromOutput0((c, dLoss) => {
  if (!c.needs(0)) return;
  const { coef, labels } = lossScale(c, dLoss);
  const at = c.op('Unsqueeze', [labels, c.ints([1])]);
  const ts = c.shape(c.input(1));
  const atShape = ts.every((d) => typeof d === 'number') ? c.ints([ts[0] as number, 1, ...(ts.slice(1) as number[])]) : c.op('Shape', [at]);
  const updates = c.op('Expand', [c.op('Neg', [coef]), atShape]);
  c.setGrad(0, c.op('ScatterElements', [c.zerosLike(c.input(0)), at, updates], { axis: 1 }));
});

/**
 * SoftmaxCrossEntropyLoss: (softmax(x) − onehot(target))·coef, with the softmax read off the
 * node's log_prob output (added when missing) and the one-hot subtracted in place by
 * GatherElements/ScatterElements rather than built. A gradient arriving at log_prob itself goes
 * through the log-softmax rule.
 */
const softmaxCrossEntropyGrad: GradRule = (c) => {
  if (!c.needs(0)) return;
  const x = c.input(0);
  const logp = c.forwardOutput(1, { kind: 'tensor', dtype: c.dtype(x), shape: c.shape(x) });
  const dLoss = c.grad(0);
  const dLogp = c.grad(1);
  if (dLoss) {
    const { coef, labels } = lossScale(c, dLoss);
    const p = c.op('Exp', [logp]);
    const at = c.op('Unsqueeze', [labels, c.ints([1])]);
    const picked = c.op('GatherElements', [p, at], { axis: 1 });
    const g = c.op('ScatterElements', [p, at, c.op('Sub', [picked, c.scalar(1, c.dtype(x))])], { axis: 1 });
    c.setGrad(0, c.op('Mul', [g, coef]));
  }
  if (dLogp) {
    const total = c.reduce('ReduceSum', dLogp, [1], true);
    c.setGrad(0, c.op('Sub', [dLogp, c.op('Mul', [c.op('Exp', [logp]), total])]));
  }
};

const SCHEMAS: OpSchema[] = [
  randomLikeOp('Bernoulli'),
  randomOp('RandomUniform'),
  randomOp('RandomNormal'),
  randomLikeOp('RandomUniformLike'),
  randomLikeOp('RandomNormalLike'),
  multinomial,
  stringNormalizer,
  tfIdfVectorizer,
  regexFullMatch,
  stringConcat,
  stringSplit,
  negativeLogLikelihoodLoss,
  softmaxCrossEntropyLoss,
  adagrad,
  adam,
  momentum,
  gradient,
];

export const MISC_OPS: OpSchema[] = withGradients(SCHEMAS, {
  NegativeLogLikelihoodLoss: nllGrad,
  SoftmaxCrossEntropyLoss: softmaxCrossEntropyGrad,
});
