/**
 * Backend over an onnxruntime JS package. onnxruntime-node and onnxruntime-web expose the same
 * API (onnxruntime-common), so one implementation serves both; the node/web entry points only
 * pass their module in.
 */
import type * as OrtCommon from 'onnxruntime-common';
import { badInput, firstLine } from '../errors.js';
import { writeOnnx } from '../formats/onnx/write.js';
import type { DType, TypedArray } from '../ir/dtype.js';
import type { Model } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import type { Backend, Feeds, Session, SessionOptions } from './backend.js';

export interface OrtModule {
  InferenceSession: typeof OrtCommon.InferenceSession;
  Tensor: typeof OrtCommon.Tensor;
  env: OrtCommon.Env;
}

/** Element types the onnxruntime JS API can pass in and out. */
const ORT_TYPES = new Set<DType>([
  'float32',
  'uint8',
  'int8',
  'uint16',
  'int16',
  'int32',
  'int64',
  'string',
  'bool',
  'float16',
  'float64',
  'uint32',
  'uint64',
  'int4',
  'uint4',
]);

export function ortSupportsType(d: DType): boolean {
  return ORT_TYPES.has(d);
}

export function toOrtTensor(ort: OrtModule, name: string, t: Tensor): OrtCommon.Tensor {
  if (!ORT_TYPES.has(t.dtype)) throw badInput(`input "${name}": onnxruntime's JS API cannot take ${t.dtype} tensors`);
  const dims = [...t.dims];
  if (t.dtype === 'string') return new ort.Tensor('string', t.strings, dims);
  let data: TypedArray = t.data;
  if (t.dtype === 'int4') data = new Int8Array(data.buffer, data.byteOffset, data.length);
  return new ort.Tensor(t.dtype as 'float32', data as Float32Array, dims);
}

export function fromOrtTensor(t: OrtCommon.Tensor): Tensor {
  const dims = t.dims.map(Number);
  if (t.type === 'string') return Tensor.fromStrings(dims, t.data as string[]);
  const data = t.data as TypedArray;
  if (t.type === 'int4' || t.type === 'uint4') {
    return Tensor.fromBytes(t.type, dims, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return Tensor.from(t.type as DType, dims, data);
}

class OrtSession implements Session {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  private readonly ort: OrtModule;
  private readonly session: OrtCommon.InferenceSession;

  constructor(ort: OrtModule, session: OrtCommon.InferenceSession) {
    this.ort = ort;
    this.session = session;
    this.inputNames = session.inputNames;
    this.outputNames = session.outputNames;
  }

  async run(feeds: Feeds, outputNames?: readonly string[]): Promise<Record<string, Tensor>> {
    const ortFeeds: Record<string, OrtCommon.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = toOrtTensor(this.ort, name, t);
    for (const name of this.inputNames) {
      if (!(name in ortFeeds)) throw badInput(`no value given for model input "${name}"`);
    }
    let results: OrtCommon.InferenceSession.OnnxValueMapType;
    try {
      results = outputNames ? await this.session.run(ortFeeds, [...outputNames]) : await this.session.run(ortFeeds);
    } catch (e) {
      throw badInput(`onnxruntime failed to run the model: ${firstLine(e)}`, e);
    }
    const out: Record<string, Tensor> = {};
    for (const [name, value] of Object.entries(results)) {
      out[name] = fromOrtTensor(value as OrtCommon.Tensor);
      (value as OrtCommon.Tensor).dispose?.();
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

export interface OrtBackendHooks {
  /** Turns a model into something InferenceSession.create takes (bytes, or a path for >2 GB models). */
  serialise?(model: Model): Promise<{ source: Uint8Array | string; cleanup?: () => void }>;
}

export function makeOrtBackend(name: string, ort: OrtModule, hooks: OrtBackendHooks = {}): Backend {
  ort.env.logLevel = 'fatal';
  return {
    name,
    async createSession(model: Model | Uint8Array, options: SessionOptions = {}): Promise<Session> {
      let source: Uint8Array | string;
      let cleanup: (() => void) | undefined;
      if (model instanceof Uint8Array) {
        source = model;
      } else if (hooks.serialise) {
        ({ source, cleanup } = await hooks.serialise(model));
      } else {
        source = writeOnnx(model).model;
      }
      const opts: OrtCommon.InferenceSession.SessionOptions = {
        graphOptimizationLevel: options.optimization ?? 'all',
        // Errors come back as exceptions that we report in one line; onnxruntime's own log would repeat them.
        logSeverityLevel: 4,
      };
      if (options.threads !== undefined) {
        opts.intraOpNumThreads = options.threads;
        opts.interOpNumThreads = 1;
      }
      if (options.optimizedModelPath) opts.optimizedModelFilePath = options.optimizedModelPath;
      if (options.memoryPattern === false) opts.enableMemPattern = false;
      if (options.spinning === false) opts.extra = { session: { intra_op: { allow_spinning: '0' } } };
      try {
        const session =
          typeof source === 'string' ? await ort.InferenceSession.create(source, opts) : await ort.InferenceSession.create(source, opts);
        return new OrtSession(ort, session);
      } catch (e) {
        throw badInput(`onnxruntime cannot load the model: ${firstLine(e)}`, e);
      } finally {
        cleanup?.();
      }
    },
  };
}
