/**
 * Adapters for ops whose attributes changed: attributes that became inputs (Slice 10, Clip 11,
 * Pad 11, Split 13, the Reduce* axes, …), attributes renamed, retyped or given new defaults
 * (Pad 2's pads, Cast 6's `to`, LpPool 2's `p`, Selu 6, GridSample 20's modes), and the legacy
 * `consumed_inputs` dropped at opset 6. The node keeps its op and its meaning; only its
 * signature moves. Facts follow the ONNX operator changelog (docs/Changelog.md of onnx/onnx).
 */
import { isFloat } from '../dtype.js';
import { Tensor } from '../tensor.js';
import { type Adapter, float, floats, int, ints, str } from './context.js';

/** Attributes that became inputs: `names` (in input order from `first`) move to int64 inputs. */
export function attrsToInputs(names: string[], first: number, required: string[] = []): Adapter {
  return (s) => {
    const values = names.map((n) => s.take(n, 'ints'));
    names.forEach((n, i) => {
      if (values[i] === undefined && required.includes(n)) s.refuse(`attribute "${n}" is required`);
    });
    values.forEach((v, i) => {
      s.node.setInput(first + i, v === undefined ? null : s.ints(names[i], v));
    });
    s.trimInputs();
  };
}

/** The optional `axes` attribute became an optional input (Squeeze 13, ReduceSum 13, the other Reduce* 18). */
export const axesToInput = attrsToInputs(['axes'], 1);

/** Ops that dropped the legacy `consumed_inputs` attribute at opset 6. */
export const CONSUMED_INPUTS_AT_6 = [
  'Abs',
  'Add',
  'BatchNormalization',
  'Ceil',
  'Clip',
  'Div',
  'Dropout',
  'Elu',
  'Exp',
  'Floor',
  'HardSigmoid',
  'InstanceNormalization',
  'LeakyRelu',
  'Log',
  'Max',
  'Mean',
  'Min',
  'Mul',
  'Neg',
  'PRelu',
  'Reciprocal',
  'Relu',
  'Selu',
  'Sigmoid',
  'Sqrt',
  'Sub',
  'Sum',
  'Tanh',
];

/** Dropout 10 → 12: `ratio` is an input. */
export const dropout12: Adapter = (s) => {
  const ratio = s.take('ratio', 'float');
  if (ratio === undefined) return;
  const dtype = s.dtype(s.node.input(0));
  s.node.setInput(1, s.scalar('ratio', dtype && isFloat(dtype) ? dtype : 'float32', ratio));
};

/** Clip 6 → 11: `min`/`max` are scalar inputs of the input's type. */
export const clip11: Adapter = (s) => {
  const min = s.take('min', 'float');
  const max = s.take('max', 'float');
  if (min === undefined && max === undefined) return;
  const dtype = s.needDtype(s.node.input(0), 'making min/max inputs');
  s.node.setInput(1, min === undefined ? null : s.scalar('min', dtype, min));
  s.node.setInput(2, max === undefined ? null : s.scalar('max', dtype, max));
  s.trimInputs();
};

/** Pad 1 → 2: `paddings` is renamed `pads` (refused where Pad-1's text and example disagree on the order). */
export const pad2: Adapter = (s) => {
  const p = s.take('paddings', 'ints');
  if (!p) return s.refuse('attribute "paddings" is required');
  const r = p.length / 2;
  // Pad-1's attribute text orders paddings [x1_begin, x2_begin, …, x1_end, …]; its example pairs them per axis.
  const paired = [...Array.from({ length: r }, (_, i) => p[2 * i]), ...Array.from({ length: r }, (_, i) => p[2 * i + 1])];
  if (paired.some((v, i) => v !== p[i])) {
    s.refuse(`Pad-1 documents two orders for paddings [${p.join(', ')}] and they give different results`);
  }
  s.set('pads', ints(p));
};

/** Pad 2 → 11: `pads` and `value` are inputs. */
export const pad11: Adapter = (s) => {
  const pads = s.take('pads', 'ints') ?? s.refuse('attribute "pads" is required');
  const value = s.take('value', 'float') ?? 0;
  s.node.setInput(1, s.ints('pads', pads));
  if (s.node.str('mode', 'constant') === 'constant' && value !== 0) {
    s.node.setInput(2, s.scalar('value', s.needDtype(s.node.input(0), `padding with ${value}`), value));
  }
};

/** Split 1 → 2: lengths come from the `split` attribute only (not a second input); Split-1 had no default axis. */
export const split2: Adapter = (s) => {
  const second = s.node.input(1);
  if (second) {
    const c = s.constant(second) ?? s.refuse('the split lengths come from a computed input, which Split-2 cannot take');
    s.set('split', ints(c.toNumbers()));
    s.truncateInputs(1);
  }
  if (s.node.int('axis') === undefined) s.refuse('Split-1 without an axis has no defined meaning');
};

/** Split 12 → 13: `split` is an input. */
export const split13 = attrsToInputs(['split'], 1);

/** Split 13 → 18: without `split`, the number of parts must be given as `num_outputs`. */
export const split18: Adapter = (s) => {
  if (!s.node.input(1)) s.set('num_outputs', int(s.node.outputs.length));
};

/** Reshape 4 → 5: `shape` is an input. */
export const reshape5: Adapter = (s) => {
  s.drop('consumed_inputs');
  const shape = s.take('shape', 'ints') ?? s.refuse('attribute "shape" is required');
  s.node.setInput(1, s.ints('shape', shape));
};

/** TensorProto.DataType names, for Cast-1's string `to`. */
const DATA_TYPE_CODES: Readonly<Record<string, number>> = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
};

/** Cast 1 → 6: `to` is a DataType code instead of its name. */
export const cast6: Adapter = (s) => {
  const a = s.node.attr('to');
  if (a?.type !== 'string') return;
  const code = DATA_TYPE_CODES[a.value.toUpperCase()] ?? s.refuse(`"to" names an unknown data type "${a.value}"`);
  s.set('to', int(code));
};

/** Tile 1 → 6: (tiles, axis) scalars become one `repeats` vector. */
export const tile6: Adapter = (s) => {
  const [x, tiles, axis] = s.node.inputs;
  if (!x || !tiles || !axis) return s.refuse('Tile-1 takes input, tiles and axis');
  const t = s.constant(tiles);
  const a = s.constant(axis);
  if (!t || !a) return s.refuse('tiles and axis must be constants to make the repeats vector');
  const rank = s.needRank(x, 'the repeats vector');
  const ax = a.scalarValue() < 0 ? a.scalarValue() + rank : a.scalarValue();
  if (ax < 0 || ax >= rank) s.refuse(`axis ${a.scalarValue()} is out of range for rank ${rank}`);
  const repeats = new Array<number>(rank).fill(1);
  repeats[ax] = t.scalarValue();
  s.truncateInputs(1);
  s.node.addInput(s.ints('repeats', repeats));
};

/** LpPool / GlobalLpPool 1 → 2: `p` is an int. */
export const lpPool2: Adapter = (s) => {
  const a = s.node.attr('p');
  if (a?.type === 'float') {
    if (!Number.isInteger(a.value)) s.refuse(`p = ${a.value} is not a whole number, which LpPool-2 needs`);
    s.set('p', int(a.value));
  }
  if (s.node.opType === 'LpPool' && !s.node.ints('kernel_shape')) s.refuse('attribute "kernel_shape" is required from LpPool-2 on');
};

/** Selu 1 → 6: the defaults of alpha and gamma gained digits; old nodes keep the old values. */
export const selu6: Adapter = (s) => {
  s.drop('consumed_inputs');
  if (s.node.attr('alpha') === undefined) s.set('alpha', float(1.673200011253357));
  if (s.node.attr('gamma') === undefined) s.set('gamma', float(1.0506999492645264));
};

/** Upsample 1 → 7: height_scale/width_scale of the NCHW input become `scales`. */
export const upsample7: Adapter = (s) => {
  const h = s.take('height_scale', 'float');
  const w = s.take('width_scale', 'float');
  if (h === undefined || w === undefined) return s.refuse('height_scale and width_scale are required');
  s.set('scales', floats([1, 1, h, w]));
  if (s.node.str('mode') === 'bilinear') s.set('mode', str('linear'));
};

/** Upsample 7 → 9: `scales` is an input. */
export const upsample9: Adapter = (s) => {
  const scales = s.take('scales', 'floats') ?? s.refuse('attribute "scales" is required');
  s.node.setInput(1, s.init('scales', Tensor.from('float32', [scales.length], scales)));
};

/** GRU 1 → 3: GRU-1 spelt the forward direction "foward". */
export const gru3: Adapter = (s) => {
  if (s.node.str('direction') === 'foward') s.set('direction', str('forward'));
};

/** RoiAlign 10 → 16: the new coordinate_transformation_mode defaults to half_pixel; version 10 did not shift. */
export const roiAlign16: Adapter = (s) => {
  if (s.node.attr('coordinate_transformation_mode') === undefined) s.set('coordinate_transformation_mode', str('output_half_pixel'));
};

/** DFT 17 → 20: `axis` (default 1) is an input (default −2). */
export const dft20: Adapter = (s) => {
  const axis = s.take('axis', 'int') ?? 1;
  if (!s.node.input(1)) s.node.setInput(1, null);
  s.node.setInput(2, s.init('axis', Tensor.from('int64', [], [axis])));
};

/** GridSample 16 → 20: modes "bilinear"/"bicubic" are named "linear"/"cubic". */
export const gridSample20: Adapter = (s) => {
  const mode = s.node.str('mode');
  if (mode === 'bilinear') s.set('mode', str('linear'));
  if (mode === 'bicubic') s.set('mode', str('cubic'));
};
