/**
 * What the browser tests share: an esbuild bundle served from localhost with the files it needs
 * (nothing is fetched from the internet), and Debian's headless Chromium driven by playwright-core.
 * Without Chromium a test fails and says how to install it, rather than skipping.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { build, type StdinOptions } from 'esbuild';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.html': 'text/html',
};

function contentType(path: string): string {
  return TYPES[path.slice(path.lastIndexOf('.'))] ?? 'application/octet-stream';
}

export interface PageServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Serves `/` (a page loading the bundle), `/bundle.js`, every file of each folder in `folders`
 * under its URL prefix (`/wasm/x.wasm` → `<folder>/x.wasm`), and the single `files`.
 */
export async function servePage(options: {
  entry: { file: string } | { stdin: StdinOptions };
  title: string;
  folders?: Record<string, string>;
  files?: Record<string, string>;
}): Promise<PageServer> {
  const bundle = await build({
    ...('file' in options.entry ? { entryPoints: [options.entry.file] } : { stdin: options.entry.stdin }),
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  const js = bundle.outputFiles[0].contents;
  const page = `<!doctype html><meta charset="utf-8"><title>${options.title}</title><script type="module" src="/bundle.js"></script>`;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    let body: Uint8Array | string | undefined;
    if (path === '/') body = page;
    else if (path === '/bundle.js') body = js;
    else if (options.files?.[path]) body = readFileSync(options.files[path]);
    else {
      for (const [prefix, folder] of Object.entries(options.folders ?? {})) {
        if (path.startsWith(prefix) && existsSync(join(folder, basename(path)))) body = readFileSync(join(folder, basename(path)));
      }
    }
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': path === '/' ? 'text/html' : contentType(path) }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Opens a page in headless Chromium that may only reach the test's server; closes everything after `use`. */
export async function withPage<T>(url: string, use: (page: Page, errors: string[]) => Promise<T>): Promise<T> {
  assert.ok(
    existsSync(CHROMIUM),
    `Chromium is not installed at ${CHROMIUM}; the browser test needs it: run scripts/setup.sh --test (or apt-get install chromium)`,
  );
  const profile = mkdtempSync(join(tmpdir(), 'mobilize-chromium-'));
  let context: BrowserContext | undefined;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.route(/^(?!http:\/\/127\.0\.0\.1:)/, (route) => route.abort());
    await page.goto(url);
    return await use(page, errors);
  } finally {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
