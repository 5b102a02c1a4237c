/** The onnxruntime-node backend (Node only). Models over 2 GB go through a temporary folder with external data. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { needsExternalData, writeOnnx } from '../formats/onnx/write.js';
import { writeAtomically } from '../io/files.js';
import type { Model } from '../ir/graph.js';
import type { Backend } from './backend.js';
import { makeOrtBackend, type OrtModule } from './ort.js';

let instance: Backend | undefined;

/** The shared onnxruntime-node backend. */
export function nodeBackend(): Backend {
  instance ??= makeOrtBackend('onnxruntime-node', ort as unknown as OrtModule, {
    async serialise(model: Model) {
      if (!needsExternalData(model)) return { source: writeOnnx(model).model };
      const dir = mkdtempSync(join(tmpdir(), 'mobilize-'));
      const path = join(dir, 'model.onnx');
      writeAtomically(path, writeOnnx(model, { externalData: { location: 'model.onnx.data' } }));
      return { source: path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
    },
  });
  return instance;
}
