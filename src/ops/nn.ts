/** nn operators. */
import type { OpSchema } from './schema.js';

export const NN_OPS: OpSchema[] = [];
