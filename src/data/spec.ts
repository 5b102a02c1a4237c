/**
 * Dataset specs as the commands take them (`--data`, `--calib`): `fashion-mnist[:train|:test]`,
 * an `.npy` file of inputs, an `.npz` of inputs and labels, or an image folder (flat, or one
 * sub-folder per class). The model's input decides what an image becomes (size, channels,
 * layout) and what the data must match.
 */
import { existsSync, statSync } from 'node:fs';
import { badInput } from '../errors.js';
import { readFileBytes } from '../io/files.js';
import type { Value } from '../ir/graph.js';
import { formatType } from '../ir/types.js';
import { ArrayDataset } from './arrays.js';
import type { Dataset } from './dataset.js';
import { FashionMnist } from './fashion-mnist.js';
import { ImageFolder } from './images.js';
import { isNpy, parseNpy } from './npy.js';
import { isNpz, parseNpz } from './npz.js';
import type { Preprocess } from './preprocess.js';

export interface DatasetOptions extends Preprocess {
  /** Split taken when the spec names none (`fashion-mnist`): train for calibration and training, test for evaluation. */
  defaultSplit?: 'train' | 'test';
  /** The model input the data feeds: sizes images, and is checked against the data. */
  input?: Value;
}

/** Opens a dataset; the result is checked against `options.input` when given. */
export function openDataset(spec: string, options: DatasetOptions = {}): Dataset {
  const ds = open(spec, options);
  if (ds.size === 0) throw badInput(`${spec}: the dataset is empty`);
  if (options.input) checkFits(ds, options.input);
  return ds;
}

function open(spec: string, options: DatasetOptions): Dataset {
  const m = /^fashion-mnist(?::(train|test))?$/.exec(spec);
  if (m) return new FashionMnist((m[1] as 'train' | 'test' | undefined) ?? options.defaultSplit ?? 'test', options);
  if (!existsSync(spec)) {
    throw badInput(`${spec}: no such dataset; give fashion-mnist[:train|:test], an .npy or .npz file, or an image folder`);
  }
  if (statSync(spec).isDirectory()) return new ImageFolder(spec, imageOptions(spec, options));
  const bytes = readFileBytes(spec, 'dataset file');
  if (isNpy(bytes)) return new ArrayDataset(spec, parseNpy(bytes, spec));
  if (isNpz(bytes)) return ArrayDataset.fromArrays(spec, parseNpz(bytes, spec));
  throw badInput(`${spec}: not a dataset mobilize reads (expected .npy, .npz or an image folder)`);
}

/** Image size and channels from the model input's dims (NCHW, or NHWC with `layout: nhwc`). */
function imageOptions(dir: string, options: DatasetOptions) {
  const t = options.input?.type;
  const shape = t?.kind === 'tensor' ? t.shape : undefined;
  if (shape?.length !== 4) {
    throw badInput(`${dir}: an image folder needs a model input of rank 4 (N×C×H×W) to size the images; fix it with --input-shape`);
  }
  const [c, h, w] = options.layout === 'nhwc' ? [shape[3], shape[1], shape[2]] : [shape[1], shape[2], shape[3]];
  if (typeof h !== 'number' || typeof w !== 'number') {
    throw badInput(`${dir}: the model's input ${formatType(t)} has no fixed image size; give one with --input-shape`);
  }
  if (c !== 1 && c !== 3) throw badInput(`${dir}: the model's input has ${String(c)} channels; images give 1 or 3`);
  return { ...options, height: h, width: w, channelCount: c as 1 | 3 };
}

/** Refuses data whose samples do not match a model input (dims beyond the batch, and dtype). */
export function checkFits(ds: Dataset, input: Value): void {
  const t = input.type;
  if (t?.kind !== 'tensor') return;
  if (t.dtype && t.dtype !== ds.dtype) {
    throw badInput(`${ds.name} holds ${ds.dtype} data but the model's input "${input.name}" is ${formatType(t)}`);
  }
  if (!t.shape) return;
  const want = t.shape.slice(1);
  const ok = want.length === ds.sampleDims.length && want.every((d, i) => typeof d !== 'number' || d === ds.sampleDims[i]);
  if (!ok) {
    throw badInput(
      `${ds.name} holds samples of shape [${ds.sampleDims.join(',')}] but the model's input "${input.name}" is ${formatType(t)}`,
    );
  }
}
