import { join } from 'node:path';
import type { ScoredBox } from './boxes.js';
import type { Window } from './image.js';
import { windowToTensor } from './image.js';
import { loadSession, MODELS_DIR, ort } from './onnx.js';

/**
 * BlazeFace (MediaPipe) through onnxruntime-node. The model takes an NHWC float image in [-1, 1] and
 * returns 896 anchors: a 16×16 grid with 2 anchors per cell, then an 8×8 grid with 6. Each anchor has
 * a logit and 16 regressors (box centre offset and size, then 6 keypoints) in input pixels.
 */
export interface BlazeFaceModel {
  name: 'blazeface-back' | 'blazeface-front';
  file: string;
  side: number;
}

export const BLAZEFACE_MODELS: Record<'back' | 'front', BlazeFaceModel> = {
  back: { name: 'blazeface-back', file: 'face_detection_back_256x256_barracuda.onnx', side: 256 },
  front: { name: 'blazeface-front', file: 'face_detection_front_128x128_barracuda.onnx', side: 128 },
};

/** Anchor centres in [0, 1], in the model's output order. */
export function blazeFaceAnchors(): Float32Array {
  const layout: [grid: number, perCell: number][] = [[16, 2], [8, 6]];
  const anchors = new Float32Array(896 * 2);
  let i = 0;
  for (const [grid, perCell] of layout) {
    for (let y = 0; y < grid; y++) {
      for (let x = 0; x < grid; x++) {
        for (let k = 0; k < perCell; k++) {
          anchors[i++] = (x + 0.5) / grid;
          anchors[i++] = (y + 0.5) / grid;
        }
      }
    }
  }
  return anchors;
}

const ANCHORS = blazeFaceAnchors();

/** A raw detection in window pixels of the model input, before NMS. */
export interface RawDetection extends ScoredBox {
  /** Six keypoints (eyes, nose, mouth, ears) as x,y pairs. */
  keypoints: number[];
}

/** Decodes the model outputs into boxes above `minScore`, in model-input pixels. */
export function decodeBlazeFace(scores: Float32Array, regressors: Float32Array, side: number, minScore: number): RawDetection[] {
  const out: RawDetection[] = [];
  // sigmoid(logit) >= minScore  <=>  logit >= log(p / (1 - p))
  const minLogit = Math.log(minScore / (1 - minScore));
  for (let a = 0; a < 896; a++) {
    const logit = scores[a]!;
    if (!(logit >= minLogit)) continue;
    const score = 1 / (1 + Math.exp(-Math.max(-100, Math.min(100, logit))));
    const r = a * 16;
    const ax = ANCHORS[a * 2]! * side;
    const ay = ANCHORS[a * 2 + 1]! * side;
    const cx = regressors[r]! + ax;
    const cy = regressors[r + 1]! + ay;
    const w = regressors[r + 2]!;
    const h = regressors[r + 3]!;
    if (!(w > 0 && h > 0)) continue;
    const keypoints: number[] = [];
    for (let k = 0; k < 6; k++) keypoints.push(regressors[r + 4 + k * 2]! + ax, regressors[r + 5 + k * 2]! + ay);
    out.push({ x: cx - w / 2, y: cy - h / 2, w, h, score, keypoints });
  }
  return out;
}

export class BlazeFace {
  private readonly input: Float32Array;
  private readonly scores = new Float32Array(896);
  private readonly regressors = new Float32Array(896 * 16);

  private constructor(
    readonly model: BlazeFaceModel,
    private readonly session: ort.InferenceSession,
  ) {
    this.input = new Float32Array(model.side * model.side * 3);
  }

  static async load(model: BlazeFaceModel = BLAZEFACE_MODELS.back): Promise<BlazeFace> {
    return new BlazeFace(model, await loadSession(join(MODELS_DIR, model.file)));
  }

  /** Runs the model on one square window of an RGB frame; boxes come back in frame pixels. */
  async detect(rgb: Uint8Array, width: number, height: number, win: Window, minScore: number): Promise<RawDetection[]> {
    const side = this.model.side;
    windowToTensor(rgb, width, height, win, side, this.input);
    const feeds = { [this.session.inputNames[0]!]: new ort.Tensor('float32', this.input, [1, side, side, 3]) };
    const result = await this.session.run(feeds);
    const [s16, s8, r16, r8] = this.session.outputNames.map((n) => result[n]!.data as Float32Array);
    this.scores.set(s16!, 0);
    this.scores.set(s8!, 512);
    this.regressors.set(r16!, 0);
    this.regressors.set(r8!, 512 * 16);
    const scale = win.size / side;
    return decodeBlazeFace(this.scores, this.regressors, side, minScore).map((d) => ({
      x: win.x + d.x * scale,
      y: win.y + d.y * scale,
      w: d.w * scale,
      h: d.h * scale,
      score: d.score,
      keypoints: d.keypoints.map((v, i) => (i % 2 === 0 ? win.x : win.y) + v * scale),
    }));
  }
}
