/**
 * Assembles a TfliteModel while the lowering walks the graph: one subgraph, its tensors and
 * operators, the operator-code table (one entry per builtin) and constant buffers. Buffers are
 * byte views; identical payloads share one buffer, so a weight used twice (or a constant that
 * two ops re-lay-out alike) is stored once.
 */
import {
  Builtin,
  builtinName,
  emptyModel,
  type TensorTypeValue,
  type TfliteModel,
  type TfliteOptions,
  type TfliteQuantization,
  type TfliteSubgraph,
} from '../model.js';

export interface TensorSpec {
  name: string;
  shape: readonly number[];
  type: TensorTypeValue;
  quantization?: TfliteQuantization;
}

/** FNV-1a over (a sample of) the bytes: a cheap key; equality is still checked byte by byte. */
function hashBytes(b: Uint8Array): string {
  let h = 0x811c9dc5;
  const step = Math.max(1, Math.floor(b.byteLength / 4096));
  for (let i = 0; i < b.byteLength; i += step) h = Math.imul(h ^ b[i], 0x01000193);
  return `${b.byteLength}:${h >>> 0}`;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class TfliteBuilder {
  readonly model: TfliteModel;
  readonly sub: TfliteSubgraph;
  private readonly codes = new Map<number, number>();
  private readonly buffersByHash = new Map<string, number[]>();
  private readonly names = new Set<string>();

  constructor(description: string) {
    this.model = emptyModel(description);
    this.sub = { name: 'main', tensors: [], inputs: [], outputs: [], operators: [] };
    this.model.subgraphs.push(this.sub);
  }

  /** A tensor name not used yet, based on `base`. */
  uniqueName(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    return name;
  }

  /** Adds a tensor with no data (an activation). Names are made unique. */
  tensor(spec: TensorSpec): number {
    const name = this.uniqueName(spec.name);
    this.names.add(name);
    this.sub.tensors.push({ name, shape: [...spec.shape], type: spec.type, buffer: 0, quantization: spec.quantization });
    return this.sub.tensors.length - 1;
  }

  /** Adds a constant tensor holding `bytes` (little-endian elements of `spec.type`). */
  constant(spec: TensorSpec, bytes: Uint8Array): number {
    const index = this.tensor(spec);
    this.sub.tensors[index].buffer = this.buffer(bytes);
    return index;
  }

  /** Renames a tensor, moving any other tensor of that name out of the way. */
  rename(index: number, name: string): void {
    const t = this.sub.tensors[index];
    if (t.name === name) return;
    const other = this.sub.tensors.findIndex((x) => x.name === name);
    if (other >= 0) {
      const moved = this.uniqueName(`${name}/inner`);
      this.names.add(moved);
      this.sub.tensors[other].name = moved;
    }
    this.names.delete(t.name);
    t.name = name;
    this.names.add(name);
  }

  buffer(bytes: Uint8Array): number {
    if (bytes.byteLength === 0) return 0;
    const key = hashBytes(bytes);
    const same = this.buffersByHash.get(key) ?? [];
    for (const i of same) if (sameBytes(this.model.buffers[i], bytes)) return i;
    this.model.buffers.push(bytes);
    const index = this.model.buffers.length - 1;
    same.push(index);
    this.buffersByHash.set(key, same);
    return index;
  }

  op(code: number, inputs: number[], outputs: number[], options?: TfliteOptions, version = 1): void {
    let opcodeIndex = this.codes.get(code);
    if (opcodeIndex === undefined) {
      this.model.operatorCodes.push({ builtinCode: code, version });
      opcodeIndex = this.model.operatorCodes.length - 1;
      this.codes.set(code, opcodeIndex);
    } else if (this.model.operatorCodes[opcodeIndex].version < version) {
      this.model.operatorCodes[opcodeIndex].version = version;
    }
    this.sub.operators.push({ opcodeIndex, inputs, outputs, ...(options ? { options } : {}) });
  }

  /** Operators by builtin name, e.g. { CONV_2D: 52, ... }. */
  histogram(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const op of this.sub.operators) {
      const name = builtinName(this.model.operatorCodes[op.opcodeIndex].builtinCode);
      out[name] = (out[name] ?? 0) + 1;
    }
    return out;
  }

  count(code: number): number {
    const index = this.codes.get(code);
    return index === undefined ? 0 : this.sub.operators.filter((o) => o.opcodeIndex === index).length;
  }
}

export { Builtin };
