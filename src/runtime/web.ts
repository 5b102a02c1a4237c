/** The onnxruntime-web backend (browser; WASM). */
import * as ort from 'onnxruntime-web';
import type { Backend } from './backend.js';
import { makeOrtBackend, type OrtModule } from './ort.js';

let instance: Backend | undefined;

export function webBackend(): Backend {
  instance ??= makeOrtBackend('onnxruntime-web', ort as unknown as OrtModule);
  return instance;
}
