/**
 * Many quantized versions of one float model, calibrated once. Sensitivity analysis quantizes
 * one layer at a time, fallback and mixed precision try sets of layers kept float: each is the
 * static plan (plan.ts) with other nodes excluded, rewritten (qdq.ts) with ranges looked up by
 * tensor name in one cache. Calibration runs the float model, so a tensor's range does not
 * depend on what else is quantized; a plan that watches a tensor no earlier plan did (a MaxPool
 * output whose input now stays float, say) calibrates just those tensors, once.
 *
 * A layer is a Conv, ConvTranspose, Gemm or MatMul the full plan quantizes, named by its node
 * name; unnamed ones get a name (`nameLayers`) so that `--exclude` can refer to them.
 */
import type { Dataset } from '../data/dataset.js';
import { readOnnx } from '../formats/onnx/read.js';
import { writeOnnx } from '../formats/onnx/write.js';
import { isOnnxDomain, type Model, type Node, type Value } from '../ir/graph.js';
import { defaultRegistry } from '../ops/index.js';
import { inferShapes } from '../ops/infer.js';
import { constantValue } from '../passes/match.js';
import type { Backend } from '../runtime/backend.js';
import { calibrate } from './calibrate.js';
import type { CalibrationMethod } from './observers.js';
import type { QuantDType } from './params.js';
import { observedValues, type PlanOptions, planQuantization } from './plan.js';
import { applyPlan, type QdqStats } from './qdq.js';

export interface LayerInfo {
  /** Node name (what `--exclude` takes). */
  name: string;
  op: string;
  /** Output tensor name. */
  output: string;
  /** Elements of the constant weight (0 for a MatMul of two activations). */
  weightElements: number;
  /** Output channels (length of a bias). */
  channels: number;
  depthwise: boolean;
  /**
   * The nodes that make the layer: the compute node and its epilogue — the chain of non-compute
   * ops after it that read nothing but its output and constants (HardSwish → Mul → Add, a ReLU,
   * a Reshape). Kept float together, so a layer in float hands a float tensor to the next one.
   */
  nodes: string[];
}

export interface VariantOptions {
  activation: QuantDType;
  symmetricActivations?: boolean;
  perChannel?: boolean;
  /** What stays float in every variant (the user's --exclude). */
  exclude?: readonly string[];
  method?: CalibrationMethod;
  percentile?: number;
  calib: Dataset;
  calibSize?: number;
  batchSize?: number;
  threads?: number;
  backend: Backend;
}

const COMPUTE = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);

/** Gives every unnamed node of the main graph a unique name (`<op>_<output>`), so layers can be named. */
export function nameLayers(model: Model): void {
  const g = model.graph;
  const taken = new Set(g.nodes.map((n) => n.name).filter((n) => n));
  for (const n of g.nodes) {
    if (n.name) continue;
    const base = `${n.opType}_${n.outputs.find((o) => o)?.name ?? 'out'}`;
    let name = base;
    for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
    taken.add(name);
    n.name = name;
  }
}

function copyModel(m: Model): Model {
  const c = readOnnx(writeOnnx(m).model);
  inferShapes(c, { registry: defaultRegistry() });
  return c;
}

/** The compute node and the single-reader chain of constant-parameter ops after it. */
function epilogue(n: Node): Node[] {
  const out: Node[] = [n];
  let v = n.outputs[0];
  while (v && v.uses.length === 1 && !v.isGraphOutput) {
    const c = v.uses[0].node;
    if (COMPUTE.has(c.opType) || !isOnnxDomain(c.domain) || c.subgraphs().length > 0) break;
    if (c.outputs.filter((o) => o).length !== 1) break;
    if (!c.inputs.every((x) => !x || x === v || constantValue(x))) break;
    out.push(c);
    v = c.outputs[0];
  }
  return out;
}

function layerInfo(n: Node): LayerInfo {
  const w = constantValue(n.input(1));
  const group = n.int('group', 1);
  let channels = 0;
  if (w) {
    if (n.opType === 'Conv') channels = w.dims[0];
    else if (n.opType === 'ConvTranspose') channels = w.dims[1] * group;
    else if (n.opType === 'Gemm') channels = n.int('transB', 0) ? w.dims[0] : w.dims[1];
    else channels = w.dims[w.rank - 1];
  }
  return {
    name: n.name,
    op: n.opType,
    output: n.output().name,
    weightElements: w?.size ?? 0,
    channels,
    depthwise: n.opType === 'Conv' && group > 1 && !!w && w.dims[1] === 1,
    nodes: epilogue(n).map((x) => x.name),
  };
}

export class Variants {
  /** The float model every variant starts from (prepared, layers named). Not modified. */
  readonly float: Model;
  /** The layers the full plan quantizes, in graph order. */
  readonly layers: LayerInfo[];
  private readonly ranges = new Map<string, [number, number]>();
  private readonly options: VariantOptions;
  /** Wall time spent calibrating, in total. */
  calibrationMs = 0;

  private constructor(float: Model, options: VariantOptions, layers: LayerInfo[]) {
    this.float = float;
    this.options = options;
    this.layers = layers;
  }

  /** Plans the full model and calibrates what it watches. `float` must be prepared; it is kept as given. */
  static async create(float: Model, options: VariantOptions): Promise<Variants> {
    const plan = planQuantization(float.graph.nodes, planOptions(options, options.exclude ?? []));
    const layers = plan.nodes.filter((qn) => COMPUTE.has(qn.node.opType)).map((qn) => layerInfo(qn.node));
    const v = new Variants(float, options, layers);
    await v.ensureRanges(observedValues(plan).map((x) => x.name));
    return v;
  }

  /** Names of every node of the float model except the given ones (to quantize those alone). */
  allNodesExcept(keep: ReadonlySet<string>): string[] {
    return this.float.graph.nodes.map((n) => n.name).filter((n) => n && !keep.has(n));
  }

  /** The nodes of the named layers (compute nodes with their epilogues). */
  nodesOf(layers: Iterable<string>): string[] {
    const byName = new Map(this.layers.map((l) => [l.name, l]));
    const out: string[] = [];
    for (const name of layers) out.push(...(byName.get(name)?.nodes ?? [name]));
    return out;
  }

  /**
   * A QDQ model with the given layers (compute node and epilogue) kept float on top of the
   * user's exclusions. `only` quantizes that one layer and nothing else: its input, weight, bias,
   * output and epilogue.
   */
  async build(select: { float?: Iterable<string>; only?: string } = {}): Promise<{ model: Model; stats: QdqStats }> {
    const exclude = [...(this.options.exclude ?? [])];
    if (select.only !== undefined) exclude.push(...this.allNodesExcept(new Set(this.nodesOf([select.only]))));
    if (select.float) exclude.push(...this.nodesOf(select.float));
    const model = copyModel(this.float);
    const plan = planQuantization(model.graph.nodes, planOptions(this.options, exclude));
    const watched = observedValues(plan);
    await this.ensureRanges(watched.map((v) => v.name));
    const ranges = new Map<Value, [number, number]>();
    for (const v of watched) ranges.set(v, this.ranges.get(v.name) as [number, number]);
    const stats = applyPlan(model, plan, ranges);
    return { model, stats };
  }

  private async ensureRanges(names: string[]): Promise<void> {
    const missing = [...new Set(names)].filter((n) => !this.ranges.has(n));
    if (missing.length === 0) return;
    const byName = new Map<string, Value>();
    for (const v of this.float.graph.inputs) byName.set(v.name, v);
    for (const n of this.float.graph.nodes) for (const o of n.outputs) if (o) byName.set(o.name, o);
    const values = missing.map((n) => {
      const v = byName.get(n);
      if (!v) throw new Error(`variants: tensor ${n} is not in the float model`);
      return v;
    });
    const o = this.options;
    const cal = await calibrate(this.float, values, o.calib, {
      method: o.method ?? 'minmax',
      observer: { dtype: o.activation, symmetric: o.symmetricActivations ?? false, percentile: o.percentile },
      backend: o.backend,
      calibSize: o.calibSize,
      batchSize: o.batchSize,
      threads: o.threads,
    });
    this.calibrationMs += cal.ms;
    for (const [v, r] of cal.ranges) this.ranges.set(v.name, r);
  }
}

function planOptions(o: VariantOptions, exclude: readonly string[]): PlanOptions {
  return {
    activation: o.activation,
    symmetricActivations: o.symmetricActivations ?? false,
    perChannel: o.perChannel ?? true,
    exclude,
  };
}
