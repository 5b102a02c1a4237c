/**
 * `demo`: the main job on a built-in default. Today it builds the Fashion-MNIST CNN, saves it as
 * ONNX, loads it back, inspects it, optimizes it (BatchNormalization folds into the convolutions;
 * the result is checked on onnxruntime), and runs the optimized model on onnxruntime and on the
 * reference interpreter to show both agree. Each capability that lands extends this recipe toward
 * the whole path: train → prune / distill → quantize → optimize → export → verify → report.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fashionMnistAvailable, loadFashionMnist } from '../data/fashion-mnist.js';
import { loadModel, saveModel } from '../io/files.js';
import { Tensor } from '../ir/tensor.js';
import { assertValid } from '../ir/verify.js';
import { buildFmnistCnn } from '../models/fmnist.js';
import { defaultRegistry } from '../ops/index.js';
import { nodeBackend } from '../runtime/node.js';
import { referenceBackend } from '../runtime/reference.js';
import { Random } from '../util/random.js';
import { type InspectReport, inspectModel } from './inspect.js';
import { optimizeModel } from './optimize.js';

export interface DemoStep {
  step: string;
  ms: number;
  detail: string;
}

export interface OptimizedSummary {
  model: string;
  fileBytes: number;
  nodesBefore: number;
  nodesAfter: number;
  /** Rewrites by pass, for passes that made any. */
  rewrites: Record<string, number>;
  /** Largest output difference from the unoptimized model on onnxruntime, relative to scale. */
  verifiedRelDiff: number | null;
  inspect: InspectReport;
}

export interface DemoReport {
  model: string;
  fileBytes: number;
  inspect: InspectReport;
  optimized: OptimizedSummary;
  data: string;
  samples: number;
  /** Largest difference between onnxruntime's and the reference interpreter's logits. */
  maxAbsDiff: number;
  /** Share of samples where both runtimes pick the same class. */
  top1Agreement: number;
  steps: DemoStep[];
}

export interface DemoOptions {
  outDir: string;
  seed?: number;
  samples?: number;
  onStep?: (step: DemoStep) => void;
}

export async function runDemo(options: DemoOptions): Promise<DemoReport> {
  const steps: DemoStep[] = [];
  const time = async <T>(step: string, f: () => Promise<T> | T, detail: (r: T) => string): Promise<T> => {
    const t0 = performance.now();
    const r = await f();
    const s = { step, ms: performance.now() - t0, detail: detail(r) };
    steps.push(s);
    options.onStep?.(s);
    return r;
  };
  mkdirSync(options.outDir, { recursive: true });
  const path = join(options.outDir, 'fmnist-cnn.onnx');
  const optimizedPath = join(options.outDir, 'fmnist-cnn.opt.onnx');
  const built = await time(
    'build',
    () => buildFmnistCnn(options.seed ?? 0),
    (m) => `fmnist-cnn, ${m.graph.nodes.length} nodes (untrained)`,
  );
  const saved = await time(
    'save',
    () => saveModel(built, path),
    (s) => `${s.path} (${s.bytes} bytes)`,
  );
  const model = await time(
    'load',
    () => {
      const m = loadModel(path);
      assertValid(m, path, { registry: defaultRegistry() });
      return m;
    },
    () => 'read back and verified',
  );
  const inspect = await time(
    'inspect',
    () => inspectModel(model),
    (r) => `${r.params} params, ${r.macs} MACs per image`,
  );
  const opt = await time(
    'optimize',
    () => optimizeModel(model, { verifyWith: nodeBackend() }),
    (r) => `${r.nodesBefore} → ${r.nodesAfter} nodes, checked on onnxruntime`,
  );
  const savedOpt = saveModel(model, optimizedPath);
  const n = options.samples ?? 16;
  const { images, source } = demoInputs(n, options.seed ?? 0);
  const ort = await time(
    'run onnxruntime',
    async () => {
      const s = await nodeBackend().createSession(model);
      const out = await s.run({ input: images });
      await s.release();
      return out.logits;
    },
    () => `${n} images, optimized model`,
  );
  const ref = await time(
    'run reference',
    async () => {
      const s = await referenceBackend().createSession(model);
      return (await s.run({ input: images })).logits;
    },
    () => `${n} images, optimized model`,
  );
  const a = ort.toFloat32();
  const b = ref.toFloat32();
  let maxAbsDiff = 0;
  for (let i = 0; i < a.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(a[i] - b[i]));
  let agree = 0;
  for (let i = 0; i < n; i++) if (argmax(a, i * 10, 10) === argmax(b, i * 10, 10)) agree++;
  return {
    model: path,
    fileBytes: saved.bytes,
    inspect,
    optimized: {
      model: optimizedPath,
      fileBytes: savedOpt.bytes,
      nodesBefore: opt.nodesBefore,
      nodesAfter: opt.nodesAfter,
      rewrites: Object.fromEntries(opt.passes.filter((p) => p.rewrites > 0).map((p) => [p.name, p.rewrites])),
      verifiedRelDiff: opt.verify.agreement?.worst ?? null,
      inspect: inspectModel(model),
    },
    data: source,
    samples: n,
    maxAbsDiff,
    top1Agreement: agree / n,
    steps,
  };
}

function argmax(v: Float32Array, start: number, len: number): number {
  let best = 0;
  for (let i = 1; i < len; i++) if (v[start + i] > v[start + best]) best = i;
  return best;
}

function demoInputs(n: number, seed: number): { images: Tensor; source: string } {
  if (fashionMnistAvailable()) {
    const { images } = loadFashionMnist('test', n);
    return { images, source: 'Fashion-MNIST test images' };
  }
  const rng = new Random(seed);
  return {
    images: Tensor.from(
      'float32',
      [n, 1, 28, 28],
      Float32Array.from({ length: n * 784 }, () => rng.next()),
    ),
    source: 'random images (Fashion-MNIST not installed)',
  };
}
