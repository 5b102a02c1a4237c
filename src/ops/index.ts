/**
 * The operator table: every op family's schemas in one registry. Families are plain arrays so
 * that importing this module has no side effects until the registry is first asked for.
 */
import { CONTROL_OPS } from './control.js';
import { DATA_OPS } from './data.js';
import { ELEMENTWISE_OPS } from './elementwise.js';
import { LINALG_OPS } from './linalg.js';
import { MISC_OPS } from './misc.js';
import { NN_OPS } from './nn.js';
import { QUANT_OPS } from './quant.js';
import { REDUCE_OPS } from './reduce.js';
import { OpRegistry } from './registry.js';
import { RESIZE_OPS } from './resize.js';
import { RNN_OPS } from './rnn.js';
import type { OpSchema } from './schema.js';
import { SHAPE_OPS } from './shape.js';
import { SIGNAL_OPS } from './signal.js';

export const OP_FAMILIES: ReadonlyArray<readonly OpSchema[]> = [
  ELEMENTWISE_OPS,
  SHAPE_OPS,
  DATA_OPS,
  NN_OPS,
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
