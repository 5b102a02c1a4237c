/**
 * The operator table: every op family's schemas in one registry. Families are plain arrays so
 * that importing this module has no side effects until the registry is first asked for.
 */
import { CONTROL_OPS } from './control.js';
import { CONV_OPS } from './conv.js';
import { DROPOUT_OPS } from './dropout.js';
import { ELEMENTWISE_OPS } from './elementwise.js';
import { GATHER_SCATTER_OPS } from './gather-scatter.js';
import { LAYOUT_OPS } from './layout-ops.js';
import { LINALG_OPS } from './linalg.js';
import { MISC_OPS } from './misc.js';
import { NORM_OPS } from './norm.js';
import { POOL_OPS } from './pool.js';
import { QUANT_OPS } from './quant.js';
import { REDUCE_OPS } from './reduce.js';
import { OpRegistry } from './registry.js';
import { RESIZE_OPS } from './resize.js';
import { RNN_OPS } from './rnn.js';
import type { OpSchema } from './schema.js';
import { SELECT_OPS } from './select.js';
import { SHAPE_OPS } from './shape.js';
import { SIGNAL_OPS } from './signal.js';
import { SOFTMAX_OPS } from './softmax.js';

export const OP_FAMILIES: ReadonlyArray<readonly OpSchema[]> = [
  ELEMENTWISE_OPS,
  SHAPE_OPS,
  LAYOUT_OPS,
  GATHER_SCATTER_OPS,
  SELECT_OPS,
  CONV_OPS,
  POOL_OPS,
  NORM_OPS,
  DROPOUT_OPS,
  SOFTMAX_OPS,
  RESIZE_OPS,
  LINALG_OPS,
  REDUCE_OPS,
  QUANT_OPS,
  CONTROL_OPS,
  RNN_OPS,
  SIGNAL_OPS,
  MISC_OPS,
];

let registry: OpRegistry | undefined;

export function defaultRegistry(): OpRegistry {
  registry ??= new OpRegistry(OP_FAMILIES.flat());
  return registry;
}

export { OpRegistry } from './registry.js';
export type { InferContext, KernelContext, OpSchema } from './schema.js';
