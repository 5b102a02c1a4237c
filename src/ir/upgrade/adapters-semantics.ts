/**
 * Adapters for ops whose meaning changed, which rewrite the node or the graph around it: numpy
 * broadcasting replacing the old `broadcast`/`axis` (opset 7), BatchNormalization's modes,
 * Dropout's bool mask, Softmax no longer flattening to 2-D (13), Upsample and Scatter replaced by
 * Resize and ScatterElements, Resize's coordinate and rounding modes, OneHot's negative indices,
 * Scan's batch axis, and GroupNormalization's per-channel parameters (21). Facts follow the ONNX
 * operator changelog (docs/Changelog.md of onnx/onnx).
 */
import { fromNumbers } from '../../ops/util.js';
import { dtypeCode, isFloat, isSigned } from '../dtype.js';
import type { Node, Value } from '../graph.js';
import { Tensor } from '../tensor.js';
import { type Adapter, int, ints, str } from './context.js';

/**
 * Binary ops before 7 broadcast B onto A only with `broadcast=1`, aligning B's dims with A's
 * starting at `axis` (suffix alignment when `axis` is absent). Numpy broadcasting aligns from the
 * end, so B gets trailing 1-dims when `axis` leaves room after it.
 */
export const legacyBroadcast: Adapter = (s) => {
  const broadcast = s.take('broadcast', 'int') ?? 0;
  const axisAttr = s.take('axis', 'int');
  if (broadcast !== 1 || axisAttr === undefined) return;
  const a = s.node.input(0);
  const b = s.node.input(1);
  if (!a || !b) return;
  const what = `the old broadcast with axis=${axisAttr}`;
  const ra = s.needRank(a, what);
  const rb = s.needRank(b, what);
  const axis = axisAttr < 0 ? axisAttr + ra : axisAttr;
  const trailing = ra - axis - rb;
  if (axis < 0 || trailing < 0) s.refuse(`axis ${axisAttr} does not fit a rank-${rb} operand inside a rank-${ra} one`);
  if (trailing > 0) s.replaceInput(1, s.appendOnes(b, rb, trailing));
};

/**
 * PRelu before 7: a 1-D slope of size C is per channel (axis 1, as Caffe2 and PyTorch export it);
 * from 7 the slope broadcasts numpy-style, aligned from the end, so it becomes [C, 1, …, 1].
 */
export const prelu7: Adapter = (s) => {
  const x = s.node.input(0);
  const slope = s.node.input(1);
  if (!x || !slope) return;
  const sd = s.shape(slope) ?? s.refuse(`the per-channel slope needs the shape of "${slope.name}", which is unknown`);
  if (sd.length !== 1 || sd[0] === 1) return;
  const xd = s.shape(x) ?? s.refuse(`the per-channel slope needs the rank of "${x.name}", which is unknown`);
  if (xd.length <= 2) return;
  // A slope sized like X's last axis (and not like its channels) was already numpy-aligned.
  if (typeof xd[1] === 'number' && typeof sd[0] === 'number' && xd[1] !== sd[0] && xd[xd.length - 1] === sd[0]) return;
  s.replaceInput(1, s.appendOnes(slope, 1, xd.length - 2));
};

/**
 * BatchNormalization 6 → 7: `is_test` goes (the number of outputs now tells training from
 * inference); `spatial` changes meaning (at 7, spatial=0 takes per-activation statistics, while
 * at 6 the statistics are always per channel).
 */
export const batchNorm7: Adapter = (s) => {
  const isTest = s.take('is_test', 'int') ?? 0;
  const spatial = s.take('spatial', 'int') ?? 1;
  if (isTest !== 0) {
    // In test mode the training outputs were not filled; from 7 on, asking for them means training.
    for (let i = 1; i <= 4; i++) if (s.outputRead(i)) s.refuse(`is_test=1, yet training output "${s.node.outputs[i]?.name}" is read`);
    for (let i = 4; i >= 1; i--) s.dropOutput(i);
  }
  const training = s.node.outputs.slice(1).some((o) => o);
  if (training && spatial === 0) s.refuse('training-mode BatchNormalization with spatial=0 has no equivalent');
};

/** BatchNormalization 7 → 9: `spatial` is gone; spatial=0 (per-activation statistics) is written out. */
export const batchNorm9: Adapter = (s) => {
  const spatial = s.take('spatial', 'int') ?? 1;
  if (spatial === 1) return;
  if (s.node.outputs.slice(1).some((o) => o)) s.refuse('training-mode BatchNormalization with spatial=0 has no equivalent');
  const [x, scale, bias, mean, variance] = s.node.inputs;
  if (!x || !scale || !bias || !mean || !variance) return s.refuse('an input is missing');
  const eps = s.node.float('epsilon', 1e-5);
  const dtype = s.needDtype(x, 'spatial=0');
  // Y = (X − mean) / √(var + ε) · scale + B, parameters [C, D1, …] broadcast against [N, C, D1, …].
  const centered = s.before('Sub', [x, mean]);
  const std = s.before('Sqrt', [s.before('Add', [variance, s.scalar('epsilon', dtype, eps)])]);
  const scaled = s.before('Mul', [s.before('Div', [centered, std]), scale]);
  const y = s.node.output(0);
  s.after('Add', [scaled, bias], [], y);
  s.remove();
};

/** BatchNormalization 9 → 14: training mode is the `training_mode` attribute; saved_mean/var outputs are gone. */
export const batchNorm14: Adapter = (s) => {
  if (!s.node.outputs.slice(1).some((o) => o)) return;
  s.dropOutput(4);
  s.dropOutput(3);
  s.set('training_mode', int(1));
};

/** Dropout 7 → 10: the mask is bool; a reader of the old (input-typed) mask gets a Cast. */
export const dropout10: Adapter = (s) => {
  if (!s.outputRead(1)) return;
  const dtype = s.needDtype(s.node.input(0), 'casting the mask back to the input type');
  const { old, fresh } = s.detachOutput(1);
  s.after('Cast', [fresh], [['to', int(dtypeCode(dtype))]], old);
};

/** Softmax, LogSoftmax, Hardmax 11 → 13: the op no longer flattens the input to 2-D at `axis`. */
export const softmax13: Adapter = (s) => {
  const x = s.node.input(0);
  if (!x) return;
  const axis = s.node.int('axis', 1);
  const rank = s.rank(x);
  if (rank !== undefined && rank > 0) {
    const a = axis < 0 ? axis + rank : axis;
    // Normalizing the flattened tail is normalizing the last axis when it is the only one.
    const tailSize = s.shape(x)?.slice(a + 1);
    if (a === rank - 1 || (a >= 0 && a < rank && tailSize?.every((d) => d === 1))) {
      s.set('axis', int(a));
      return;
    }
  }
  // Flatten at `axis`, normalize each row, give the result the input's shape back.
  const shape = s.before('Shape', [x]);
  s.node.setInput(0, s.before('Flatten', [x], [['axis', int(axis)]]));
  s.set('axis', int(1));
  const { old, fresh } = s.detachOutput(0);
  s.after('Reshape', [fresh, shape], [], old);
};

/** Resize nodes that were Upsample, whose scales are ≥ 1 by definition. */
const fromUpsample = new WeakSet<Node>();

/** Upsample 9 → 10: deprecated in favour of Resize-10, which has the same inputs and semantics. */
export const upsample10: Adapter = (s) => {
  s.node.opType = 'Resize';
  fromUpsample.add(s.node);
};

/**
 * Resize 10 → 11: a `roi` input is added, and the old behaviour is spelled out: coordinates map
 * asymmetrically (x_in = x_out / scale) and nearest rounds down when upsampling and up when
 * downsampling (as Upsample and Resize-10 did; Resize-11's default would be half_pixel with
 * round_prefer_floor). Axes scaled both ways get one Resize per direction.
 */
export const resize11: Adapter = (s) => {
  const raw = s.node.str('mode', 'nearest');
  const mode = raw === 'bilinear' || raw === 'trilinear' ? 'linear' : raw;
  if (mode !== 'nearest' && mode !== 'linear') s.refuse(`mode "${raw}" is not one of Resize-10's modes`);
  s.set('mode', str(mode));
  const [x, scales] = s.node.inputs;
  if (!x || !scales) return s.refuse('inputs X and scales are required');
  const roi = s.init('roi', Tensor.from('float32', [0], []));
  s.node.truncateInputs(1);
  s.node.addInput(roi);
  s.node.addInput(scales);
  s.set('coordinate_transformation_mode', str('asymmetric'));
  if (mode === 'linear') return;
  const values = s.constant(scales)?.toNumbers();
  if (fromUpsample.has(s.node) || values?.every((v) => v >= 1)) return s.set('nearest_mode', str('floor'));
  if (values?.every((v) => v <= 1)) return s.set('nearest_mode', str('ceil'));
  // Upsample the growing axes (rounding down), then shrink the others (rounding up).
  let up: Value;
  let down: Value;
  if (values) {
    up = s.init(
      'scales_up',
      Tensor.from(
        'float32',
        [values.length],
        values.map((v) => Math.max(v, 1)),
      ),
    );
    down = s.init(
      'scales_down',
      Tensor.from(
        'float32',
        [values.length],
        values.map((v) => Math.min(v, 1)),
      ),
    );
  } else {
    const one = s.scalar('one', s.dtype(scales) ?? 'float32', 1);
    up = s.before('Max', [scales, one]);
    down = s.before('Min', [scales, one]);
  }
  s.replaceInput(2, up);
  s.set('nearest_mode', str('floor'));
  const { old, fresh } = s.detachOutput(0);
  s.after(
    'Resize',
    [fresh, roi, down],
    [
      ['mode', str('nearest')],
      ['coordinate_transformation_mode', str('asymmetric')],
      ['nearest_mode', str('ceil')],
    ],
    old,
  );
};

/**
 * Resize 11 → 13: coordinate_transformation_mode "tf_half_pixel_for_nn" is gone. Its coordinate is
 * the half_pixel one plus ½, so its floor is half_pixel's round_prefer_ceil and its
 * round_prefer_floor is half_pixel's ceil.
 */
export const resize13: Adapter = (s) => {
  if (s.node.str('coordinate_transformation_mode') !== 'tf_half_pixel_for_nn') return;
  const mode = s.node.str('mode', 'nearest');
  const nearest = s.node.str('nearest_mode', 'round_prefer_floor');
  const equivalents: Record<string, string> = { floor: 'round_prefer_ceil', round_prefer_floor: 'ceil' };
  const mapped =
    (mode === 'nearest' ? equivalents[nearest] : undefined) ??
    s.refuse(`coordinate_transformation_mode "tf_half_pixel_for_nn" with mode "${mode}", nearest_mode "${nearest}" has no equivalent`);
  s.set('coordinate_transformation_mode', str('half_pixel'));
  s.set('nearest_mode', str(mapped));
};

/** Scatter 9 → 11: deprecated in favour of ScatterElements-11, with the same inputs and semantics. */
export const scatter11: Adapter = (s) => {
  s.node.opType = 'ScatterElements';
};

/**
 * OneHot 9 → 11: negative indices now count from the end; before, they (like any index outside
 * [0, depth)) gave an all-off row. Negative indices are moved far out of range to keep that.
 */
export const oneHot11: Adapter = (s) => {
  const idx = s.node.input(0);
  if (!idx) return;
  const c = s.constant(idx);
  if (c?.toNumbers().every((v) => v >= 0)) return;
  const dtype = s.needDtype(idx, 'keeping negative indices out of range');
  if (dtype === 'bool' || (!isFloat(dtype) && !isSigned(dtype))) return;
  const asInt = dtype === 'int64' ? idx : s.before('Cast', [idx], [['to', int(dtypeCode('int64'))]]);
  const negative = s.before('Less', [asInt, s.scalar('zero', 'int64', 0)]);
  s.node.setInput(0, s.before('Where', [negative, s.scalar('out_of_range', 'int64', -(2 ** 62)), asInt]));
};

/**
 * Scan 8 → 9: the batch axis (and sequence_lens) is gone. A batch of one converts: inputs lose
 * axis 0 and outputs get it back.
 */
export const scan9: Adapter = (s) => {
  if (s.node.input(0)) s.refuse('sequence_lens has no equivalent in Scan-9');
  const inputs = s.node.inputs.slice(1);
  for (const v of inputs) {
    const d = v ? s.shape(v)?.[0] : undefined;
    if (v && d !== 1) s.refuse(`input "${v.name}" has batch size ${d ?? 'unknown'}; only a batch of 1 converts to Scan-9`);
  }
  const directions = s.take('directions', 'ints');
  if (directions) s.set('scan_input_directions', ints(directions));
  const squeezed = inputs.map((v) => (v ? s.before('Squeeze', [v], [['axes', ints([0])]]) : null));
  s.node.truncateInputs(0);
  for (const v of squeezed) s.node.addInput(v);
  s.node.outputs.forEach((o, i) => {
    if (!o) return;
    const { old, fresh } = s.detachOutput(i);
    s.after('Unsqueeze', [fresh], [['axes', ints([0])]], old);
  });
};

/** GroupNormalization 18 → 21: scale and bias are per channel instead of per group. */
export const groupNorm21: Adapter = (s) => {
  const [x, scale, bias] = s.node.inputs;
  if (!x || !scale || !bias) return s.refuse('inputs X, scale and bias are required');
  const groups = s.node.int('num_groups') ?? s.refuse('attribute "num_groups" is required');
  const channels = s.shape(x)?.[1];
  let perGroupShape: Value | undefined;
  const expand = (v: Value, which: string): Value => {
    const t = s.constant(v);
    if (t && typeof channels === 'number') {
      if (t.size !== groups || channels % groups !== 0)
        s.refuse(`${which} has ${t.size} values for ${groups} groups of ${channels} channels`);
      const per = channels / groups;
      const values = t.toNumbers();
      return s.init(
        `${which}_per_channel`,
        fromNumbers(
          t.dtype,
          [channels],
          Array.from({ length: channels }, (_, c) => values[Math.floor(c / per)]),
        ),
      );
    }
    // [G] → [G, 1] → [G, C/G] → [C], with C read from X's shape at run time.
    if (!perGroupShape) {
      const c = s.before(
        'Shape',
        [x],
        [
          ['start', int(1)],
          ['end', int(2)],
        ],
      );
      const cpg = s.before('Div', [c, s.ints('groups', [groups])]);
      perGroupShape = s.before('Concat', [s.ints('groups_dim', [groups]), cpg], [['axis', int(0)]]);
    }
    const column = s.before('Reshape', [v, s.ints(`${which}_column`, [groups, 1])]);
    const grid = s.before('Expand', [column, perGroupShape]);
    return s.before('Reshape', [grid, s.ints(`${which}_flat`, [-1])]);
  };
  s.replaceInput(1, expand(scale, 'scale'));
  s.replaceInput(2, expand(bias, 'bias'));
};
