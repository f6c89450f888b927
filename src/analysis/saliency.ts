import { basename, join } from 'node:path';
import { RoiError } from '../media/errors.js';
import { loadSession, MODELS_DIR, ort } from './onnx.js';

/**
 * Saliency maps through onnxruntime-node, on the same session machinery as the face detector.
 *
 * The built-in model (models/saliency-ft.onnx, built by scripts/build-saliency-model.ts) is not a
 * learned model: it is frequency-tuned saliency (Achanta et al. 2009) — each pixel's CIE Lab colour
 * distance, after a 5×5 blur, from a reference colour — where the reference is the nearest of 12
 * mean colours of patches along the frame's edges (a background prior) rather than the frame's mean;
 * plus motion energy (Lab distance from the previous sample, less its frame mean), times a mild centre
 * prior, divided by the peak (with a floor, so a frame without contrast stays dark). It takes the
 * frame and the previous sample, NCHW sRGB 0–1, at any size; this runtime feeds 160 px on the long side.
 *
 * A user model (`modelPath`) is U²-Net style: one NCHW float input [1,3,H,W] and a one-channel map
 * as its first output, [1,1,h,w] or [1,h,w]. Its map is read as 0–1 confidence (a sigmoid output, as
 * U²-Net's d0); unbounded outputs are divided by their peak.
 */
export interface SaliencyMap {
  width: number;
  height: number;
  /** 0..1, row-major. */
  values: Float32Array;
}

export type SaliencyNormalization =
  | { mean: [number, number, number]; std: [number, number, number]; scale: 1 | 255 }
  | 'imagenet'
  | 'unit'
  | 'signed';

export interface SaliencyModelOptions {
  /** Path of a user model; default: the built-in models/saliency-ft.onnx. */
  modelPath?: string;
  /**
   * Input normalisation for user models: pixel values in 0–1 (scale 1) or 0–255 (scale 255), then
   * (v - mean) / std per channel. 'imagenet' (the default, as U²-Net): ImageNet mean/std on 0–1;
   * 'unit': 0–1; 'signed': -1–1. The built-in model ignores this.
   */
  normalization?: SaliencyNormalization;
}

export const BUILTIN_SALIENCY_FILE = 'saliency-ft.onnx';
/** Long side of the built-in model's input: at 1080p one map pixel spans 12 source pixels, finer than a 16×16 block. */
export const BUILTIN_SALIENCY_SIDE = 160;
/** Long side of a user model's input when its height and width are dynamic (U²-Net trains at 320). */
export const USER_SALIENCY_SIDE = 320;

const NORMALIZATIONS = {
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], scale: 1 },
  unit: { mean: [0, 0, 0], std: [1, 1, 1], scale: 1 },
  signed: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], scale: 1 },
} as const;

interface Norm {
  mean: readonly number[];
  std: readonly number[];
  scale: number;
}

function resolveNormalization(n: SaliencyNormalization | undefined): Norm {
  if (n === undefined) return NORMALIZATIONS.imagenet;
  if (typeof n === 'string') {
    const found = (NORMALIZATIONS as Record<string, Norm>)[n];
    if (!found) throw new RoiError('INVALID_OPTION', `unknown saliency normalisation '${String(n)}' (expected imagenet, unit, signed or {mean, std, scale})`);
    return found;
  }
  const ok = (a: unknown) => Array.isArray(a) && a.length === 3 && a.every((v) => typeof v === 'number' && Number.isFinite(v));
  if (!ok(n.mean) || !ok(n.std) || n.std.some((v) => v === 0) || (n.scale !== 1 && n.scale !== 255)) {
    throw new RoiError('INVALID_OPTION', 'saliency normalisation needs mean and std of three finite numbers (std non-zero) and scale 1 or 255');
  }
  return n;
}

const shapeText = (shape: readonly (number | string)[]) => (shape.length === 0 ? 'unknown shape' : `[${shape.join(',')}]`);
const fixed = (d: number | string | undefined): d is number => typeof d === 'number' && d > 0;

/** Analysis size for a frame whose long side becomes `side` (each side at least 8, multiples of `multiple`). */
export function fitSize(width: number, height: number, side: number, multiple = 1): { width: number; height: number } {
  const s = side / Math.max(width, height);
  const round = (v: number) => Math.max(Math.max(8, multiple), Math.round((v * s) / multiple) * multiple);
  return { width: round(width), height: round(height) };
}

interface Tap {
  start: number;
  weights: Float32Array;
}

/** Resampling taps along one axis: box (area) averaging when shrinking, bilinear when enlarging. */
function taps(src: number, dst: number): Tap[] {
  const scale = src / dst;
  const out: Tap[] = [];
  for (let o = 0; o < dst; o++) {
    if (scale > 1) {
      const a = o * scale;
      const b = a + scale;
      const start = Math.floor(a);
      const end = Math.min(src, Math.ceil(b));
      const w = new Float32Array(end - start);
      for (let i = start; i < end; i++) w[i - start] = (Math.min(b, i + 1) - Math.max(a, i)) / scale;
      out.push({ start, weights: w });
    } else {
      const f = Math.max(0, Math.min(src - 1, (o + 0.5) * scale - 0.5));
      const i0 = Math.floor(f);
      const t = f - i0;
      out.push(i0 + 1 < src ? { start: i0, weights: Float32Array.of(1 - t, t) } : { start: i0, weights: Float32Array.of(1) });
    }
  }
  return out;
}

/**
 * Resizes a packed RGB24 frame into an NCHW float tensor [1,3,outH,outW]: each value is
 * (pixel / (255 / norm.scale) - mean[c]) / std[c].
 */
export function rgbToNchw(rgb: Uint8Array, width: number, height: number, outW: number, outH: number, norm: Norm, out = new Float32Array(3 * outW * outH)): Float32Array {
  if (rgb.length < width * height * 3) throw new RoiError('INVALID_INPUT', `frame buffer holds ${rgb.length} bytes, ${width}x${height} RGB24 needs ${width * height * 3}`);
  const xt = taps(width, outW);
  const yt = taps(height, outH);
  // Horizontal pass into rows of interleaved RGB floats, then vertical pass into planes.
  const rows = new Float32Array(height * outW * 3);
  for (let y = 0; y < height; y++) {
    const line = y * width * 3;
    for (let ox = 0; ox < outW; ox++) {
      const t = xt[ox]!;
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < t.weights.length; k++) {
        const i = line + (t.start + k) * 3;
        const w = t.weights[k]!;
        r += rgb[i]! * w;
        g += rgb[i + 1]! * w;
        b += rgb[i + 2]! * w;
      }
      const o = (y * outW + ox) * 3;
      rows[o] = r;
      rows[o + 1] = g;
      rows[o + 2] = b;
    }
  }
  const plane = outW * outH;
  const gain = norm.scale / 255;
  const mul = [0, 1, 2].map((c) => gain / norm.std[c]!);
  const add = [0, 1, 2].map((c) => -norm.mean[c]! / norm.std[c]!);
  for (let oy = 0; oy < outH; oy++) {
    const t = yt[oy]!;
    for (let ox = 0; ox < outW; ox++) {
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < t.weights.length; k++) {
        const i = ((t.start + k) * outW + ox) * 3;
        const w = t.weights[k]!;
        r += rows[i]! * w;
        g += rows[i + 1]! * w;
        b += rows[i + 2]! * w;
      }
      const o = oy * outW + ox;
      out[o] = r * mul[0]! + add[0]!;
      out[plane + o] = g * mul[1]! + add[1]!;
      out[2 * plane + o] = b * mul[2]! + add[2]!;
    }
  }
  return out;
}

type Kind = { builtin: true } | { builtin: false; norm: Norm; inputW?: number; inputH?: number };

export class SaliencyModel {
  private previous: { data: Float32Array; width: number; height: number } | undefined;

  private constructor(
    readonly name: string,
    private readonly session: ort.InferenceSession,
    private readonly kind: Kind,
  ) {}

  static async create(options: SaliencyModelOptions = {}): Promise<SaliencyModel> {
    if (options.modelPath === undefined) {
      const session = await loadSession(join(MODELS_DIR, BUILTIN_SALIENCY_FILE));
      return new SaliencyModel('builtin-ft', session, { builtin: true });
    }
    const norm = resolveNormalization(options.normalization);
    const file = options.modelPath;
    const session = await loadSession(file);
    const fail = (what: string) => new RoiError('MODEL_INVALID', `saliency model ${file}: ${what}`);

    if (session.inputNames.length !== 1) throw fail(`expected one NCHW float input [1,3,H,W], got ${session.inputNames.length} inputs (${session.inputNames.join(', ')})`);
    const input = session.inputMetadata[0]!;
    if (!input.isTensor) throw fail(`expected NCHW float input [1,3,H,W], got a non-tensor input '${input.name}'`);
    const inShape = input.shape;
    const batchOk = inShape[0] === 1 || typeof inShape[0] === 'string' || inShape[0] === -1;
    if (input.type !== 'float32' || inShape.length !== 4 || !batchOk || inShape[1] !== 3) {
      throw fail(`expected NCHW float input [1,3,H,W], got ${input.type} ${shapeText(inShape)}`);
    }
    const output = session.outputMetadata[0];
    if (!output || !output.isTensor) throw fail('expected a one-channel float map output [1,1,H,W] or [1,H,W], got no tensor output');
    const outShape = output.shape;
    if (output.type !== 'float32' || !outputShapeOk(outShape)) {
      throw fail(`expected a one-channel float map output [1,1,H,W] or [1,H,W], got ${output.type} ${shapeText(outShape)}`);
    }
    const inH = inShape[2];
    const inW = inShape[3];
    const kind: Kind = { builtin: false, norm, ...(fixed(inW) ? { inputW: inW } : {}), ...(fixed(inH) ? { inputH: inH } : {}) };
    return new SaliencyModel(basename(file), session, kind);
  }

  /** Forgets the previous frame (call at scene cuts): the next map has no motion term. */
  reset(): void {
    this.previous = undefined;
  }

  /** rgb: packed RGB24 frame in display orientation. The map is low-resolution, values 0..1. */
  async map(rgb: Uint8Array, width: number, height: number): Promise<SaliencyMap> {
    if (this.kind.builtin) {
      const size = fitSize(width, height, BUILTIN_SALIENCY_SIDE);
      const current = rgbToNchw(rgb, width, height, size.width, size.height, NORMALIZATIONS.unit);
      const prev = this.previous && this.previous.width === size.width && this.previous.height === size.height ? this.previous.data : current;
      // Set before awaiting, so maps requested back to back still chain in call order.
      this.previous = { data: current, ...size };
      const dims = [1, 3, size.height, size.width];
      const [imageName, previousName] = this.session.inputNames;
      const result = await this.session.run({
        [imageName!]: new ort.Tensor('float32', current, dims),
        [previousName!]: new ort.Tensor('float32', prev, dims),
      });
      const out = result[this.session.outputNames[0]!]!;
      return { ...size, values: Float32Array.from(out.data as Float32Array) };
    }
    const k = this.kind;
    const size = userInputSize(k, width, height);
    const input = rgbToNchw(rgb, width, height, size.width, size.height, k.norm);
    const result = await this.session.run({ [this.session.inputNames[0]!]: new ort.Tensor('float32', input, [1, 3, size.height, size.width]) });
    const out = result[this.session.outputNames[0]!]!;
    const dims = out.dims.map(Number);
    if (out.type !== 'float32' || !outputShapeOk(dims)) {
      throw new RoiError('MODEL_INVALID', `saliency model ${this.name}: expected a one-channel float map output [1,1,H,W] or [1,H,W], got ${out.type} ${shapeText(dims)}`);
    }
    const h = dims[dims.length - 2]!;
    const w = dims[dims.length - 1]!;
    const raw = out.data as Float32Array;
    let peak = 0;
    for (const v of raw) if (v > peak) peak = v;
    // Sigmoid outputs keep their own confidence; unbounded ones are scaled to their peak.
    const div = Math.max(1, peak);
    const values = new Float32Array(w * h);
    for (let i = 0; i < values.length; i++) {
      const v = raw[i]! / div;
      values[i] = v > 0 ? Math.min(1, v) : 0;
    }
    return { width: w, height: h, values };
  }
}

/** A user model's input size: its fixed H and W; a dynamic side follows the frame's aspect, in multiples of 32. */
function userInputSize(k: { inputW?: number; inputH?: number }, width: number, height: number): { width: number; height: number } {
  if (k.inputW !== undefined && k.inputH !== undefined) return { width: k.inputW, height: k.inputH };
  if (k.inputW !== undefined) return { width: k.inputW, height: Math.max(32, Math.round((k.inputW * height) / width / 32) * 32) };
  if (k.inputH !== undefined) return { width: Math.max(32, Math.round((k.inputH * width) / height / 32) * 32), height: k.inputH };
  return fitSize(width, height, USER_SALIENCY_SIDE, 32);
}

function outputShapeOk(shape: readonly (number | string)[]): boolean {
  const one = (d: number | string | undefined) => d === 1 || typeof d === 'string' || d === -1;
  if (shape.length === 4) return one(shape[0]) && shape[1] === 1;
  if (shape.length === 3) return one(shape[0]);
  return false;
}

export interface SalientBox {
  x: number;
  y: number;
  w: number;
  h: number;
  /** Mean map value over the region's pixels, 0..1. */
  score: number;
}

export interface SalientBoxOptions {
  /** Upper bound on the summed box area, as a share of the frame (default 0.15). */
  maxAreaShare?: number;
  /** Regions whose box is smaller than this share of the frame are dropped as noise (default 0.002). */
  minAreaShare?: number;
  /** At most this many regions (default 4). */
  maxRegions?: number;
}

export const SALIENT_BOX_DEFAULTS = { maxAreaShare: 0.15, minAreaShare: 0.002, maxRegions: 4 } as const;
/** Map values below this never form a region, however dark the rest of the map is. */
const MIN_THRESHOLD = 0.3;

interface Component {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  mass: number;
  count: number;
}

/** 8-connected components of map pixels at or above `t`. */
function components(map: SaliencyMap, t: number, labels: Int32Array, stack: Int32Array): Component[] {
  const { width: w, height: h, values } = map;
  labels.fill(-1);
  const out: Component[] = [];
  for (let start = 0; start < w * h; start++) {
    if (labels[start] !== -1 || !(values[start]! >= t)) continue;
    const c: Component = { x0: w, y0: h, x1: -1, y1: -1, mass: 0, count: 0 };
    const id = out.length;
    let sp = 0;
    stack[sp++] = start;
    labels[start] = id;
    while (sp > 0) {
      const p = stack[--sp]!;
      const px = p % w;
      const py = (p - px) / w;
      c.x0 = Math.min(c.x0, px);
      c.x1 = Math.max(c.x1, px);
      c.y0 = Math.min(c.y0, py);
      c.y1 = Math.max(c.y1, py);
      c.mass += values[p]!;
      c.count++;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = py + dy;
        if (ny < 0 || ny >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = px + dx;
          if (nx < 0 || nx >= w) continue;
          const q = ny * w + nx;
          if (labels[q] === -1 && values[q]! >= t) {
            labels[q] = id;
            stack[sp++] = q;
          }
        }
      }
    }
    out.push(c);
  }
  return out;
}

/**
 * Salient boxes from a map, in the frame's pixel coordinates. Regions are connected components
 * above a threshold, taken by saliency mass while their summed box area fits `maxAreaShare`; the
 * threshold is chosen among a ladder from max(2 × map mean, 0.3) up to 0.95 (Achanta's adaptive
 * threshold, then stricter) as the one whose kept regions hold the most saliency. A map that lights
 * up everything therefore yields a few bounded peaks or nothing, never the whole frame.
 */
export function salientBoxes(map: SaliencyMap, frameWidth: number, frameHeight: number, options: SalientBoxOptions = {}): SalientBox[] {
  const maxShare = options.maxAreaShare ?? SALIENT_BOX_DEFAULTS.maxAreaShare;
  const minShare = options.minAreaShare ?? SALIENT_BOX_DEFAULTS.minAreaShare;
  const maxRegions = options.maxRegions ?? SALIENT_BOX_DEFAULTS.maxRegions;
  const { width: w, height: h, values } = map;
  const n = w * h;
  if (n === 0 || maxShare <= 0 || maxRegions <= 0 || values.length < n) return [];
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i]!;
  const t0 = Math.min(0.95, Math.max(MIN_THRESHOLD, (2 * sum) / n));
  const labels = new Int32Array(n);
  const stack = new Int32Array(n);
  const budget = maxShare * n;
  const smallest = minShare * n;

  let best: { mass: number; kept: Component[] } = { mass: 0, kept: [] };
  const steps = 12;
  for (let s = 0; s <= steps; s++) {
    const t = t0 + ((0.95 - t0) * s) / steps;
    const comps = components(map, t, labels, stack).sort((a, b) => b.mass - a.mass);
    const kept: Component[] = [];
    let area = 0;
    let mass = 0;
    for (const c of comps) {
      if (kept.length >= maxRegions) break;
      const boxArea = (c.x1 - c.x0 + 1) * (c.y1 - c.y0 + 1);
      if (boxArea < smallest || area + boxArea > budget) continue;
      kept.push(c);
      area += boxArea;
      mass += c.mass;
    }
    if (mass > best.mass) best = { mass, kept };
  }
  const sx = frameWidth / w;
  const sy = frameHeight / h;
  return best.kept.map((c) => ({
    x: c.x0 * sx,
    y: c.y0 * sy,
    w: (c.x1 - c.x0 + 1) * sx,
    h: (c.y1 - c.y0 + 1) * sy,
    score: c.mass / c.count,
  }));
}
