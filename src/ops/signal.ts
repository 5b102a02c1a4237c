/** signal operators. */
import type { OpSchema } from './schema.js';

export const SIGNAL_OPS: OpSchema[] = [];
