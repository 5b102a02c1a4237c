// Regenerates src/formats/tflite/generated/ from src/formats/tflite/schema.fbs with flatc
// (Debian package flatbuffers-compiler), then gives the relative imports the `.js` endings that
// Node's ESM resolution (and our tsconfig's NodeNext) require. Run with `npm run gen:tflite`.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const out = 'src/formats/tflite/generated';
rmSync(out, { recursive: true, force: true });
execFileSync('flatc', ['--ts', '--gen-object-api', '-o', out, 'src/formats/tflite/schema.fbs'], { stdio: 'inherit' });
renameSync(join(out, 'schema_generated.ts'), join(out, 'index.ts'));

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.ts')) {
      const text = readFileSync(path, 'utf8').replace(/from '(\.{1,2}\/[^']+)'/g, "from '$1.js'");
      writeFileSync(path, text);
    }
  }
}
walk(out);
