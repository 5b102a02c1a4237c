/**
 * Datasets held as arrays: an .npy of inputs (N × sample dims), or an .npz whose arrays are the
 * inputs and, optionally, the labels.
 */
import { badInput } from '../errors.js';
import { isInteger } from '../ir/dtype.js';
import { Tensor } from '../ir/tensor.js';
import { takeElements } from '../ops/util.js';
import type { Batch, Dataset } from './dataset.js';

const INPUT_NAMES = ['input', 'inputs', 'x', 'images', 'data'];
const LABEL_NAMES = ['label', 'labels', 'y', 'target', 'targets'];

export class ArrayDataset implements Dataset {
  readonly name: string;
  readonly size: number;
  readonly sampleDims: readonly number[];
  readonly hasLabels: boolean;
  readonly classes?: number;
  private readonly inputs: Tensor;
  private readonly labels: Tensor | undefined;

  constructor(name: string, inputs: Tensor, labels?: Tensor) {
    if (inputs.rank < 1) throw badInput(`${name}: the input array is a scalar; expected N × sample dims`);
    if (labels) {
      if (labels.rank !== 1 || labels.dims[0] !== inputs.dims[0]) {
        throw badInput(`${name}: ${labels.dims.join('×')} labels do not match ${inputs.dims[0]} inputs`);
      }
      if (!isInteger(labels.dtype)) throw badInput(`${name}: labels must be integers, got ${labels.dtype}`);
    }
    this.name = name;
    this.inputs = inputs;
    this.labels = labels;
    this.size = inputs.dims[0];
    this.sampleDims = inputs.dims.slice(1);
    this.hasLabels = !!labels;
    if (labels) this.classes = Math.max(0, ...labels.toNumbers()) + 1;
  }

  get dtype(): Tensor['dtype'] {
    return this.inputs.dtype;
  }

  async batch(indices: ArrayLike<number>): Promise<Batch> {
    const per = this.sampleDims.reduce((a, b) => a * b, 1);
    const src = new Int32Array(indices.length * per);
    for (let i = 0; i < indices.length; i++) for (let k = 0; k < per; k++) src[i * per + k] = indices[i] * per + k;
    const input = takeElements(this.inputs, [indices.length, ...this.sampleDims], src);
    if (!this.labels) return { input };
    const values = this.labels.toNumbers();
    return {
      input,
      label: Tensor.from(
        'int64',
        [indices.length],
        Array.from(indices, (i) => values[i]),
      ),
    };
  }

  /** From named arrays (an .npz): picks the input and label arrays by their usual names. */
  static fromArrays(name: string, arrays: Map<string, Tensor>): ArrayDataset {
    const pick = (names: string[]): Tensor | undefined => {
      for (const n of names) if (arrays.has(n)) return arrays.get(n);
      return undefined;
    };
    const labels = pick(LABEL_NAMES);
    let inputs = pick(INPUT_NAMES);
    if (!inputs) {
      const others = [...arrays.entries()].filter(([, t]) => t !== labels);
      if (others.length !== 1) {
        throw badInput(
          `${name}: cannot tell which array is the input; name it one of ${INPUT_NAMES.join(', ')} (arrays: ${[...arrays.keys()].join(', ')})`,
        );
      }
      inputs = others[0][1];
    }
    return new ArrayDataset(name, inputs, labels);
  }
}
