/** data operators. */
import type { OpSchema } from './schema.js';

export const DATA_OPS: OpSchema[] = [];
