/**
 * The adapter tables the driver consults: ADAPTERS, one rewrite per `Op@version` whose
 * definition changed in a way the older node does not already satisfy (the rewrites themselves
 * are in adapters-attrs.ts and adapters-semantics.ts), and the ops that were experimental before
 * opset 10: those with a standard equivalent (EXPERIMENTAL) and those refused (EXPERIMENTAL_REFUSED).
 */
import { fromNumbers } from '../../ops/util.js';
import type { Tensor } from '../tensor.js';
import {
  attrsToInputs,
  axesToInput,
  CONSUMED_INPUTS_AT_6,
  cast6,
  clip11,
  dft20,
  dropout12,
  gridSample20,
  gru3,
  lpPool2,
  pad2,
  pad11,
  reshape5,
  roiAlign16,
  selu6,
  split2,
  split13,
  split18,
  tile6,
  upsample7,
  upsample9,
} from './adapters-attrs.js';
import {
  batchNorm7,
  batchNorm9,
  batchNorm14,
  dropout10,
  groupNorm21,
  legacyBroadcast,
  oneHot11,
  prelu7,
  resize11,
  resize13,
  scan9,
  scatter11,
  softmax13,
  upsample10,
} from './adapters-semantics.js';
import { type Adapter, int, type Step } from './context.js';

// -- ops that were experimental before opset 10 (removed from the spec in ONNX 1.5)

/** y = x · a + b for experimental ops whose parameters are attributes; skips a = 1 and b = 0. */
function affineInto(s: Step, a: number, b: number | Tensor): void {
  const x = s.node.input(0) ?? s.refuse('input is missing');
  const dtype = s.needDtype(x, 'the replacement Mul/Add');
  const y = s.node.output(0);
  let v = x;
  const addB = typeof b === 'number' ? b !== 0 : true;
  if (a !== 1) v = addB ? s.before('Mul', [v, s.scalar('scale', dtype, a)]) : s.after('Mul', [v, s.scalar('scale', dtype, a)], [], y);
  if (addB) s.after('Add', [v, typeof b === 'number' ? s.scalar('bias', dtype, b) : s.init('bias', b)], [], y);
  else if (a === 1) s.after('Identity', [v], [], y);
  s.remove();
}

export const EXPERIMENTAL: ReadonlyMap<string, Adapter> = new Map<string, Adapter>([
  [
    'ImageScaler',
    (s) => {
      const bias = s.node.floats('bias') ?? s.node.ints('bias');
      const dtype = s.needDtype(s.node.input(0), 'the replacement Mul/Add');
      affineInto(s, s.node.float('scale', 1), bias ? fromNumbers(dtype, [bias.length, 1, 1], bias) : 0);
    },
  ],
  ['Scale', (s) => affineInto(s, s.node.float('scale', 1), 0)],
  ['Affine', (s) => affineInto(s, s.node.float('alpha', 1), s.node.float('beta', 0))],
  [
    'ScaledTanh',
    (s) => {
      const alpha = s.node.float('alpha') ?? s.refuse('attribute "alpha" is required');
      const beta = s.node.float('beta') ?? s.refuse('attribute "beta" is required');
      const x = s.node.input(0);
      if (!x) return s.refuse('input is missing');
      const dtype = s.needDtype(x, 'the replacement nodes');
      const t = s.before('Tanh', [s.before('Mul', [x, s.scalar('beta', dtype, beta)])]);
      s.after('Mul', [t, s.scalar('alpha', dtype, alpha)], [], s.node.output(0));
      s.remove();
    },
  ],
  [
    'ParametricSoftplus',
    (s) => {
      const alpha = s.node.float('alpha') ?? s.refuse('attribute "alpha" is required');
      const beta = s.node.float('beta') ?? s.refuse('attribute "beta" is required');
      const x = s.node.input(0);
      if (!x) return s.refuse('input is missing');
      const dtype = s.needDtype(x, 'the replacement nodes');
      const t = s.before('Softplus', [s.before('Mul', [x, s.scalar('beta', dtype, beta)])]);
      s.after('Mul', [t, s.scalar('alpha', dtype, alpha)], [], s.node.output(0));
      s.remove();
    },
  ],
  // Same definition (alpha defaults to 1) as the standard ThresholdedRelu-10.
  ['ThresholdedRelu', () => {}],
  // DynamicSlice(data, starts, ends, axes) is Slice-10 with the same inputs.
  [
    'DynamicSlice',
    (s) => {
      s.node.opType = 'Slice';
    },
  ],
]);

/**
 * Experimental ops with no defined equivalent in the standard set, with the opset that ends
 * them: 10 (removed), or 9 for MeanVarianceNormalization, which then became a standard op with
 * other semantics (statistics over `axes`, not per instance and channel).
 */
export const EXPERIMENTAL_REFUSED: ReadonlyMap<string, number> = new Map([
  ['ATen', 10],
  ['ConstantFill', 10],
  ['Crop', 10],
  ['GRUUnit', 10],
  ['GivenTensorFill', 10],
  ['MeanVarianceNormalization', 9],
]);

/** Rewrites by `Op@version`: the version the node moves to. */
export const ADAPTERS = new Map<string, Adapter>([
  ...CONSUMED_INPUTS_AT_6.filter((op) => op !== 'Selu').map((op): [string, Adapter] => [`${op}@6`, (s) => s.drop('consumed_inputs')]),
  ['Selu@6', selu6],
  ['Pad@2', pad2],
  ['Split@2', split2],
  ['LpPool@2', lpPool2],
  ['GlobalLpPool@2', lpPool2],
  ['GRU@3', gru3],
  [
    'Concat@4',
    (s) => {
      if (s.node.attr('axis') === undefined) s.set('axis', int(1));
    },
  ],
  ['Reshape@5', reshape5],
  ['Cast@6', cast6],
  ['Tile@6', tile6],
  ...['Add', 'Sub', 'Mul', 'Div', 'Pow', 'And', 'Or', 'Xor', 'Equal', 'Greater', 'Less'].map((op): [string, Adapter] => [
    `${op}@7`,
    legacyBroadcast,
  ]),
  ['PRelu@7', prelu7],
  ['Gemm@7', (s) => s.drop('broadcast')],
  ['BatchNormalization@7', batchNorm7],
  ['Dropout@7', (s) => s.drop('is_test')],
  ...['GRU', 'LSTM', 'RNN'].map((op): [string, Adapter] => [`${op}@7`, (s) => s.drop('output_sequence')]),
  ['Upsample@7', upsample7],
  ['BatchNormalization@9', batchNorm9],
  ['Upsample@9', upsample9],
  ['Scan@9', scan9],
  ['Slice@10', attrsToInputs(['starts', 'ends', 'axes'], 1, ['starts', 'ends'])],
  ['TopK@10', (s) => s.node.setInput(1, s.ints('k', [s.take('k', 'int') ?? s.refuse('attribute "k" is required')]))],
  ['Upsample@10', upsample10],
  ['Dropout@10', dropout10],
  ['Resize@11', resize11],
  ['Clip@11', clip11],
  ['Pad@11', pad11],
  ['Scatter@11', scatter11],
  ['OneHot@11', oneHot11],
  ['Dropout@12', dropout12],
  ['Softmax@13', softmax13],
  ['LogSoftmax@13', softmax13],
  ['Hardmax@13', softmax13],
  ['Squeeze@13', axesToInput],
  ['Unsqueeze@13', attrsToInputs(['axes'], 1, ['axes'])],
  ['ReduceSum@13', axesToInput],
  ['Split@13', split13],
  ['Resize@13', resize13],
  ['BatchNormalization@14', batchNorm14],
  ['RoiAlign@16', roiAlign16],
  ...[
    'ReduceL1',
    'ReduceL2',
    'ReduceLogSum',
    'ReduceLogSumExp',
    'ReduceMax',
    'ReduceMean',
    'ReduceMin',
    'ReduceProd',
    'ReduceSumSquare',
  ].map((op): [string, Adapter] => [`${op}@18`, axesToInput]),
  ['Split@18', split18],
  ['DFT@20', dft20],
  ['GridSample@20', gridSample20],
  ['GroupNormalization@21', groupNorm21],
]);
