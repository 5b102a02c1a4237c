/** rnn operators. */
import type { OpSchema } from './schema.js';

export const RNN_OPS: OpSchema[] = [];
