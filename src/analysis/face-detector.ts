import { BlazeFace, BLAZEFACE_MODELS, type RawDetection } from './blazeface.js';
import { weightedNms, type ScoredBox } from './boxes.js';
import type { Window } from './image.js';

/**
 * Multi-scale BlazeFace over one frame. BlazeFace's back model finds faces from about 12 to 100 px
 * of its 256 px input, the front model from about 40 to 128 px of its 128 px input (measured by
 * `npm run bench`). So each frame gets:
 *  - the front model on the whole frame, letterboxed: close-ups;
 *  - the back model on the whole frame, letterboxed: mid-size faces;
 *  - the back model on overlapping 256 px tiles at analysis resolution: small and far faces.
 * Tile detections that touch an inner tile edge are dropped (the overlapping neighbour sees the whole
 * face), and everything is merged by weighted NMS in frame pixels.
 *
 * Those passes only propose. Each candidate is then verified by the front model on a window
 * VERIFY_CONTEXT times its size around it, so the face fills the model's input: measured on the dev
 * corpus, real faces (30 px and up) verify at 0.88–0.93 while street texture that fooled the first
 * pass at up to 0.67 verifies at 0.54 or less. The verified box and score replace the proposal's.
 */
export interface FaceDetectorOptions {
  /** Minimum verified face confidence, 0–1. */
  minScore: number;
  /** Minimum first-pass score for a candidate to be verified. */
  proposalScore: number;
}

/** Verification looks at a window this many times the candidate's size, centred on it. */
export const VERIFY_CONTEXT = 1.6;

/** The smallest face, in model-input pixels, the back model finds reliably (measured by `npm run bench`). */
export const MODEL_MIN_FACE = 12;

/** IoU above which two detections are the same face (MediaPipe's setting). */
const NMS_IOU = 0.3;
/** Tiles overlap by this share of their side so a face cut by one tile is whole in the next. */
const TILE_OVERLAP = 0.25;

export function tileWindows(width: number, height: number, side: number): Window[] {
  // Tiles pay off only when the whole-frame view shrinks the frame noticeably.
  if (Math.max(width, height) <= side * 1.25) return [];
  const stepsAlong = (length: number) => {
    if (length <= side) return [Math.round((length - side) / 2)];
    const stride = side * (1 - TILE_OVERLAP);
    const n = Math.ceil((length - side) / stride) + 1;
    const actual = (length - side) / (n - 1);
    return Array.from({ length: n }, (_, i) => Math.round(i * actual));
  };
  const windows: Window[] = [];
  for (const y of stepsAlong(height)) for (const x of stepsAlong(width)) windows.push({ x, y, size: side });
  return windows;
}

/** The square window that letterboxes the whole frame. */
export function wholeFrameWindow(width: number, height: number): Window {
  const size = Math.max(width, height);
  return { x: (width - size) / 2, y: (height - size) / 2, size };
}

function touchesInnerEdge(d: ScoredBox, win: Window, width: number, height: number): boolean {
  const margin = 2;
  const left = win.x > 0 && d.x <= win.x + margin;
  const top = win.y > 0 && d.y <= win.y + margin;
  const right = win.x + win.size < width && d.x + d.w >= win.x + win.size - margin;
  const bottom = win.y + win.size < height && d.y + d.h >= win.y + win.size - margin;
  return left || top || right || bottom;
}

export class FaceDetector {
  private constructor(
    private readonly back: BlazeFace,
    private readonly front: BlazeFace,
    private readonly options: FaceDetectorOptions,
  ) {}

  static async create(options: FaceDetectorOptions): Promise<FaceDetector> {
    const [back, front] = await Promise.all([BlazeFace.load(BLAZEFACE_MODELS.back), BlazeFace.load(BLAZEFACE_MODELS.front)]);
    return new FaceDetector(back, front, options);
  }

  /** Faces in frame pixels, strongest first. */
  async detect(rgb: Uint8Array, width: number, height: number, tiles: boolean): Promise<ScoredBox[]> {
    const { minScore, proposalScore } = this.options;
    const whole = wholeFrameWindow(width, height);
    const all: RawDetection[] = [];
    all.push(...(await this.front.detect(rgb, width, height, whole, proposalScore)));
    all.push(...(await this.back.detect(rgb, width, height, whole, proposalScore)));
    for (const win of tiles ? tileWindows(width, height, this.back.model.side) : []) {
      const found = await this.back.detect(rgb, width, height, win, proposalScore);
      for (const d of found) if (!touchesInnerEdge(d, win, width, height)) all.push(d);
    }
    const verified: ScoredBox[] = [];
    for (const candidate of weightedNms(all, NMS_IOU)) {
      const face = await this.verify(rgb, width, height, candidate);
      if (face && face.score >= minScore) verified.push(face);
    }
    return weightedNms(verified, NMS_IOU).sort((a, b) => b.score - a.score);
  }

  /** The front model's best face centred inside the candidate, seen up close. */
  async verify(rgb: Uint8Array, width: number, height: number, candidate: ScoredBox): Promise<ScoredBox | undefined> {
    const size = VERIFY_CONTEXT * Math.max(candidate.w, candidate.h);
    const cx = candidate.x + candidate.w / 2;
    const cy = candidate.y + candidate.h / 2;
    const found = await this.front.detect(rgb, width, height, { x: cx - size / 2, y: cy - size / 2, size }, 0.05);
    let best: ScoredBox | undefined;
    for (const d of found) {
      const dx = d.x + d.w / 2;
      const dy = d.y + d.h / 2;
      const inside = Math.abs(dx - cx) < candidate.w / 2 && Math.abs(dy - cy) < candidate.h / 2;
      if (inside && (!best || d.score > best.score)) best = { x: d.x, y: d.y, w: d.w, h: d.h, score: d.score };
    }
    return best;
  }
}
