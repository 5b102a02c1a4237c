/** misc operators. */
import type { OpSchema } from './schema.js';

export const MISC_OPS: OpSchema[] = [];
