/** Reading any supported model format from bytes (browser-safe: no file system here). */
import { badInput } from '../errors.js';
import type { Model } from '../ir/graph.js';
import { detectFormat, type ModelFormat } from './detect.js';
import { type ReadOptions, readOnnx } from './onnx/read.js';
import { importTflite } from './tflite/import.js';
import { readTflite } from './tflite/read.js';

export { detectFormat, type ModelFormat } from './detect.js';
export { type ExternalDataResolver, type ReadOptions, readOnnx, readTensorProto } from './onnx/read.js';
export { needsExternalData, tensorBytes, type WriteOptions, type WrittenModel, writeOnnx, writeTensorProto } from './onnx/write.js';

const FORMAT_NAMES: Record<ModelFormat, string> = {
  onnx: 'ONNX',
  tflite: 'TensorFlow Lite',
  ncnn: 'NCNN',
  coreml: 'Core ML',
};

/** Reads a model in whatever supported format its bytes are in. */
export function readModel(bytes: Uint8Array, options: ReadOptions = {}): Model {
  const source = options.source ?? 'model';
  if (bytes.length === 0) throw badInput(`${source}: the file is empty`);
  const format = detectFormat(bytes);
  if (format === 'onnx') return readOnnx(bytes, options);
  if (format === 'tflite') return importTflite(readTflite(bytes, { source }), { source });
  if (format === undefined) {
    throw badInput(
      `${source}: not a model file mobilize recognises (expected ONNX or TFLite); the file may be truncated or of another kind`,
    );
  }
  throw badInput(`${source}: ${FORMAT_NAMES[format]} models cannot be read yet; convert it to ONNX first`);
}

export function formatName(format: ModelFormat): string {
  return FORMAT_NAMES[format];
}
