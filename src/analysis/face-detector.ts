import { BlazeFace, BLAZEFACE_MODELS, type RawDetection } from './blazeface.js';
import { weightedNms, type Box, type ScoredBox } from './boxes.js';
import { detectFaces, NMS_IOU, tileWindows, touchesInnerEdge, wholeFrameWindow, type FaceFrame, type FaceModel } from './face-scan.js';

/**
 * BlazeFace as a FaceModel for the shared scan/follow pipeline (face-scan.ts). BlazeFace's back
 * model finds faces from about 12 to 100 px of its 256 px input, the front model from about 40 to
 * 128 px of its 128 px input (measured by `npm run bench`). So a full look at a frame is:
 *  - the front model on the whole frame, letterboxed: close-ups;
 *  - the back model on the whole frame, letterboxed: mid-size faces;
 *  - with `tiles`, the back model on overlapping 256 px tiles at analysis resolution: small and far
 *    faces. Tile detections that touch an inner tile edge are dropped (the overlapping neighbour
 *    sees the whole face).
 *
 * Those passes only propose. Verification runs the front model on a window VERIFY_CONTEXT times a
 * candidate's size around it, so the face fills the model's input: measured on the dev corpus, real
 * faces (30 px and up) verify at 0.88–0.93 while street texture that fooled the first pass at up to
 * 0.67 verifies at 0.54 or less. The verified box and score replace the proposal's. The follow pass
 * of the pipeline is the same verification on a window around a face's predicted position.
 */
export interface FaceDetectorOptions {
  /** Minimum verified face confidence, 0–1. */
  minScore: number;
  /** Minimum first-pass score for a candidate to be verified. */
  proposalScore: number;
  /** Also scan 256 px tiles at analysis resolution, for faces too small for the whole-frame passes. */
  tiles: boolean;
}

/** Verification looks at a window this many times the candidate's size, centred on it. */
export const VERIFY_CONTEXT = 1.6;

/** The smallest face, in model-input pixels, the back model finds reliably (measured by `npm run bench`). */
export const MODEL_MIN_FACE = 12;

/** Tiles overlap by this share of their side so a face cut by one tile is whole in the next. */
const TILE_OVERLAP = 0.25;

/** Tiles pay off only when the whole-frame view shrinks the frame noticeably. */
export function blazeFaceTiles(width: number, height: number): ReturnType<typeof tileWindows> {
  const side = BLAZEFACE_MODELS.back.side;
  return Math.max(width, height) <= side * 1.25 ? [] : tileWindows(width, height, side, TILE_OVERLAP);
}

export class FaceDetector implements FaceModel {
  private constructor(
    private readonly back: BlazeFace,
    private readonly front: BlazeFace,
    private readonly options: FaceDetectorOptions,
  ) {}

  static async create(options: FaceDetectorOptions): Promise<FaceDetector> {
    const [back, front] = await Promise.all([BlazeFace.load(BLAZEFACE_MODELS.back), BlazeFace.load(BLAZEFACE_MODELS.front)]);
    return new FaceDetector(back, front, options);
  }

  /** A full scan of one frame, every candidate verified: faces in frame pixels, strongest first. */
  detect(rgb: Uint8Array, width: number, height: number): Promise<ScoredBox[]> {
    return detectFaces(this, { rgb, width, height }, this.options.minScore);
  }

  async propose({ rgb, width, height }: FaceFrame): Promise<ScoredBox[]> {
    const { proposalScore } = this.options;
    const whole = wholeFrameWindow(width, height);
    const all: RawDetection[] = [];
    all.push(...(await this.front.detect(rgb, width, height, whole, proposalScore)));
    all.push(...(await this.back.detect(rgb, width, height, whole, proposalScore)));
    for (const win of this.options.tiles ? blazeFaceTiles(width, height) : []) {
      const found = await this.back.detect(rgb, width, height, win, proposalScore);
      for (const d of found) if (!touchesInnerEdge(d, win, width, height)) all.push(d);
    }
    return weightedNms(all, NMS_IOU);
  }

  /** The front model's best face centred inside each candidate, seen up close. */
  async verify({ rgb, width, height }: FaceFrame, candidates: Box[]): Promise<(ScoredBox | undefined)[]> {
    const out: (ScoredBox | undefined)[] = [];
    for (const candidate of candidates) {
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
      out.push(best);
    }
    return out;
  }
}
