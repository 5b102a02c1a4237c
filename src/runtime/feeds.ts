/**
 * Inputs for running a model: checking user-given tensors against the model's declared inputs,
 * and making seeded random ones.
 */
import { badInput } from '../errors.js';
import { isFloat, isInteger } from '../ir/dtype.js';
import type { Model, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { formatType } from '../ir/types.js';
import { Random } from '../util/random.js';
import type { Feeds } from './backend.js';

/** Random inputs are capped so a wrong shape cannot exhaust memory. */
const MAX_RANDOM_ELEMENTS = 2 ** 27;

/** Graph inputs a caller must feed (initializers with defaults excluded). */
export function requiredInputs(model: Model): Value[] {
  return model.graph.inputs.filter((v) => !v.initializer);
}

/** A symbolic or unknown dim in the first position (a batch) becomes 1; anywhere else this. */
export const DEFAULT_FREE_DIM = 32;

/**
 * Concrete dims of an input: a symbol or unknown dim becomes 1 as the leading (batch) dim and
 * 32 elsewhere — large enough that convolutions, pools and sequence ops do real work, small
 * enough to run fast. One symbol gets one value across all inputs (`bound`).
 */
export function concreteDims(v: Value, bound: Map<string, number> = new Map()): number[] {
  const t = v.type;
  if (t?.kind !== 'tensor' || !t.shape) {
    throw badInput(`input "${v.name}" has no known shape; give one with --input-shape ${v.name}:1x3x224x224`);
  }
  return t.shape.map((d, i) => {
    if (typeof d === 'number') return d;
    const value = i === 0 ? 1 : DEFAULT_FREE_DIM;
    if (d === null) return value;
    if (!bound.has(d)) bound.set(d, value);
    return bound.get(d) as number;
  });
}

export function randomFeeds(model: Model, seed = 0): Feeds {
  const rng = new Random(seed);
  const feeds: Feeds = {};
  const bound = new Map<string, number>();
  for (const v of requiredInputs(model)) {
    const t = v.type;
    if (t?.kind !== 'tensor' || !t.dtype) throw badInput(`input "${v.name}" is ${formatType(t)}; only tensors can be made at random`);
    const dims = concreteDims(v, bound);
    const n = dims.reduce((a, b) => a * b, 1);
    if (n > MAX_RANDOM_ELEMENTS) {
      throw badInput(
        `input "${v.name}" would hold ${n} elements (${formatType(t)} with free dims as 1 or ${DEFAULT_FREE_DIM}); fix its shape with --input-shape`,
      );
    }
    const dtype = t.dtype;
    let values: number[];
    if (isFloat(dtype)) values = Array.from({ length: n }, () => rng.next());
    else if (dtype === 'bool') values = Array.from({ length: n }, () => rng.int(0, 2));
    else if (isInteger(dtype)) values = Array.from({ length: n }, () => rng.int(0, 10));
    else throw badInput(`input "${v.name}" is ${dtype}; random values of that type are not supported, give it with --input`);
    feeds[v.name] = dtype === 'float32' ? Tensor.from(dtype, dims, Float32Array.from(values)) : Tensor.from(dtype, dims, values);
  }
  return feeds;
}

/** Checks given tensors against the model's inputs: every input given, names known, dtypes and fixed dims equal. */
export function checkFeeds(model: Model, feeds: Feeds): void {
  const inputs = requiredInputs(model);
  const known = new Set(model.graph.inputs.map((v) => v.name));
  for (const name of Object.keys(feeds)) {
    if (!known.has(name)) throw badInput(`the model has no input "${name}"; its inputs are: ${inputs.map((v) => v.name).join(', ')}`);
  }
  for (const v of inputs) {
    const t = feeds[v.name];
    if (!t) throw badInput(`no value given for input "${v.name}" (${formatType(v.type)}); pass --input ${v.name}=file.npy or --random`);
    const vt = v.type;
    if (vt?.kind !== 'tensor') continue;
    if (vt.dtype && vt.dtype !== t.dtype) throw badInput(`input "${v.name}" must be ${vt.dtype}, got ${t.dtype}`);
    if (vt.shape) {
      const ok = vt.shape.length === t.rank && vt.shape.every((d, i) => typeof d !== 'number' || d === t.dims[i]);
      if (!ok) throw badInput(`input "${v.name}" must have shape ${formatType(vt)}, got [${t.dims.join(',')}]`);
    }
  }
}
