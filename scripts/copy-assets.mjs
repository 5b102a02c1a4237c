// Copies the generated protobuf code (plain JS + declarations) next to the compiled TypeScript.
import { copyFileSync, mkdirSync } from 'node:fs';

mkdirSync('dist/formats/onnx/proto', { recursive: true });
for (const f of ['onnx.js', 'onnx.d.ts']) copyFileSync(`src/formats/onnx/proto/${f}`, `dist/formats/onnx/proto/${f}`);
