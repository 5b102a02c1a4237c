/** quant operators. */
import type { OpSchema } from './schema.js';

export const QUANT_OPS: OpSchema[] = [];
