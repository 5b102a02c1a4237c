/** control operators. */
import type { OpSchema } from './schema.js';

export const CONTROL_OPS: OpSchema[] = [];
