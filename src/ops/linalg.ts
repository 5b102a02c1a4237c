/** linalg operators. */
import type { OpSchema } from './schema.js';

export const LINALG_OPS: OpSchema[] = [];
