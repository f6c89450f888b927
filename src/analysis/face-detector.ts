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
 */
export interface FaceDetectorOptions {
  /** Minimum face confidence, 0–1. */
  minScore: number;
}

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
    const { minScore } = this.options;
    const whole = wholeFrameWindow(width, height);
    const all: RawDetection[] = [];
    all.push(...(await this.front.detect(rgb, width, height, whole, minScore)));
    all.push(...(await this.back.detect(rgb, width, height, whole, minScore)));
    for (const win of tiles ? tileWindows(width, height, this.back.model.side) : []) {
      const found = await this.back.detect(rgb, width, height, win, minScore);
      for (const d of found) if (!touchesInnerEdge(d, win, width, height)) all.push(d);
    }
    return weightedNms(all, NMS_IOU).sort((a, b) => b.score - a.score);
  }
}
