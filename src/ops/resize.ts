/** resize operators. */
import type { OpSchema } from './schema.js';

export const RESIZE_OPS: OpSchema[] = [];
