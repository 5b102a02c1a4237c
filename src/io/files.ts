/**
 * Model files on disk (Node only): loading with external data kept inside the model's folder,
 * and saving atomically — everything is written to temporary files and renamed into place, so a
 * failure never leaves a half-written model, and the input is never overwritten.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { badInput, firstLine } from '../errors.js';
import { readModel } from '../formats/index.js';
import { checkExternalLocation } from '../formats/onnx/read.js';
import { needsExternalData, type WrittenModel, writeOnnx } from '../formats/onnx/write.js';
import type { Model } from '../ir/graph.js';

/** Reads a whole file, with one clear line for the usual failures. */
export function readFileBytes(path: string, what = 'file'): Uint8Array {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw badInput(`${path}: no such ${what}; check the path`);
  }
  if (st.isDirectory()) throw badInput(`${path}: is a folder, not a ${what}`);
  try {
    return readFileSync(path);
  } catch (e) {
    throw badInput(`${path}: cannot read the ${what} (${firstLine(e)})`);
  }
}

/** Loads a model file (format found from its bytes). External data is read from the model's folder only. */
export function loadModel(path: string): Model {
  const bytes = readFileBytes(path, 'model file');
  const folder = dirname(resolve(path));
  const resolver = new ExternalFiles(folder, path);
  try {
    return readModel(bytes, { source: path, externalData: (loc, off, len, t) => resolver.read(loc, off, len, t) });
  } finally {
    resolver.close();
  }
}

class ExternalFiles {
  private readonly fds = new Map<string, { fd: number; size: number }>();
  private readonly folder: string;
  private readonly model: string;

  constructor(folder: string, model: string) {
    this.folder = folder;
    this.model = model;
  }

  read(location: string, offset: number, length: number | undefined, tensor: string): Uint8Array {
    checkExternalLocation(location, tensor);
    let entry = this.fds.get(location);
    if (!entry) {
      const full = resolve(this.folder, location);
      if (!existsSync(full))
        throw badInput(`tensor "${tensor}": external data file "${location}" is missing next to ${basename(this.model)}`);
      // Follow symlinks and check again that the data stays in the model's folder.
      const real = realpathSync(full);
      const realFolder = realpathSync(this.folder);
      if (real !== realFolder && !real.startsWith(realFolder + sep)) {
        throw badInput(`tensor "${tensor}": external data "${location}" resolves outside the model's folder; refusing to read it`);
      }
      const fd = openSync(real, 'r');
      entry = { fd, size: statSync(real).size };
      this.fds.set(location, entry);
    }
    const len = length ?? entry.size - offset;
    if (offset + len > entry.size) {
      throw badInput(
        `tensor "${tensor}": external data runs past the end of "${location}" (offset ${offset} + ${len} > ${entry.size} bytes)`,
      );
    }
    const buf = Buffer.allocUnsafeSlow(len);
    let done = 0;
    while (done < len) {
      const n = readSync(entry.fd, buf, done, len - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, len);
  }

  close(): void {
    for (const { fd } of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}

export interface SaveOptions {
  /** Move weights to `<file>.data`: always, never, or when the model needs it (over 2 GB). Default 'auto'. */
  externalData?: boolean | 'auto';
  /** Paths that must not be overwritten (the inputs). */
  protect?: string[];
  /** Initializers smaller than this stay inside the .onnx file (default 1024 bytes). */
  externalMinBytes?: number;
}

export interface SavedModel {
  path: string;
  bytes: number;
  externalPath?: string;
  externalBytes?: number;
}

/** Refuses an output path that is one of the inputs. */
export function assertNotInput(out: string, inputs: string[]): void {
  const o = canonical(out);
  for (const i of inputs) {
    if (canonical(i) === o) throw badInput(`${out}: the output would overwrite the input; choose another -o path`);
  }
}

function canonical(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
}

/** Saves a model as ONNX, atomically. */
export function saveModel(model: Model, path: string, options: SaveOptions = {}): SavedModel {
  assertNotInput(path, options.protect ?? []);
  const folder = dirname(resolve(path));
  if (!existsSync(folder)) throw badInput(`${path}: folder ${folder} does not exist`);
  const mode = options.externalData ?? 'auto';
  const external = mode === true || (mode === 'auto' && needsExternalData(model));
  const location = `${basename(path)}.data`;
  if (external) assertNotInput(join(folder, location), options.protect ?? []);
  const written: WrittenModel = writeOnnx(model, external ? { externalData: { location, minBytes: options.externalMinBytes } } : {});
  return writeAtomically(path, written);
}

/** Writes a serialised model and its external data file through temporary files. */
export function writeAtomically(path: string, written: WrittenModel): SavedModel {
  const tag = `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const temps: Array<[string, string]> = [];
  try {
    const result: SavedModel = { path, bytes: written.model.byteLength };
    if (written.external) {
      const dataPath = join(dirname(resolve(path)), written.external.location);
      const tmp = dataPath + tag;
      writeChunks(tmp, written.external.chunks);
      temps.push([tmp, dataPath]);
      result.externalPath = relative(process.cwd(), dataPath) || dataPath;
      result.externalBytes = written.external.byteLength;
    }
    const tmp = resolve(path) + tag;
    writeChunks(tmp, [written.model]);
    temps.push([tmp, resolve(path)]);
    for (const [from, to] of temps) renameSync(from, to);
    return result;
  } catch (e) {
    for (const [tmp] of temps) {
      try {
        unlinkSync(tmp);
      } catch {
        // already renamed or never made
      }
    }
    throw badInput(`${path}: cannot write the model (${firstLine(e)})`, e);
  }
}

/** Writes bytes to a new file through a temporary name (for any output, not just models). */
export function writeFileAtomically(path: string, data: Uint8Array | string): void {
  const tmp = `${resolve(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    writeChunks(tmp, [typeof data === 'string' ? Buffer.from(data) : data]);
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // never made
    }
    throw badInput(`${path}: cannot write (${firstLine(e)})`, e);
  }
}

function writeChunks(path: string, chunks: Uint8Array[]): void {
  const fd = openSync(path, 'wx');
  try {
    for (const c of chunks) {
      let done = 0;
      while (done < c.byteLength) done += writeSync(fd, c, done, c.byteLength - done);
    }
  } finally {
    closeSync(fd);
  }
}
