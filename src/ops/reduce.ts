/** reduce operators. */
import type { OpSchema } from './schema.js';

export const REDUCE_OPS: OpSchema[] = [];
