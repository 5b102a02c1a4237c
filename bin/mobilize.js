#!/usr/bin/env node
// Runs the compiled CLI. `npm install` builds it (the `prepare` script); `npm run build` rebuilds it.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/bin.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('mobilize: not built yet; run `npm install` (or `npm run build`) in the mobilize folder\n');
  process.exit(2);
}
await import(entry.href);
