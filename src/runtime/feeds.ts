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

/** Concrete dims of an input: symbols and unknown dims take 1. */
export function concreteDims(v: Value): number[] {
  const t = v.type;
  if (t?.kind !== 'tensor' || !t.shape) {
    throw badInput(`input "${v.name}" has no known shape; give one with --input-shape ${v.name}:1x3x224x224`);
  }
  return t.shape.map((d) => (typeof d === 'number' ? d : 1));
}

export function randomFeeds(model: Model, seed = 0): Feeds {
  const rng = new Random(seed);
  const feeds: Feeds = {};
  for (const v of requiredInputs(model)) {
    const t = v.type;
    if (t?.kind !== 'tensor' || !t.dtype) throw badInput(`input "${v.name}" is ${formatType(t)}; only tensors can be made at random`);
    const dims = concreteDims(v);
    const n = dims.reduce((a, b) => a * b, 1);
    if (n > MAX_RANDOM_ELEMENTS) {
      throw badInput(`input "${v.name}" would hold ${n} elements (${formatType(t)} with symbols as 1); fix its shape with --input-shape`);
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
