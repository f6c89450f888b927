import { iou, weightedNms, type Box, type ScoredBox } from './boxes.js';
import { facePatch, largestCellChange, meanAbsDiff, sceneDistance, type Window } from './image.js';

/**
 * The one detection pipeline every face model plugs into. A model supplies two operations:
 *  - propose: a full multi-scale look at the frame (the whole frame, and tiles where small faces
 *    need them): many candidates, some of them texture;
 *  - verify: each candidate seen up close, so the face fills the model's input: the best face
 *    centred inside it, with a confidence that separates faces from texture.
 * On top of them, FaceScanner decides per sample how much looking is needed: a full scan (propose
 * then verify) at the start, after a scene change, when a followed face is lost, after `scanEvery`
 * samples when the picture changed and after `quietScanEvery` in any case; between those, a follow
 * pass that only re-finds each known face in a window around where its motion predicts it (one
 * verify call per face), and carries a face that has not moved forward without any call.
 */
export interface FaceFrame {
  rgb: Uint8Array;
  width: number;
  height: number;
}

export interface FaceModel {
  /** First-pass candidates of a full look at the frame, in frame pixels, merged by NMS. */
  propose(frame: FaceFrame): Promise<ScoredBox[]>;
  /** For each candidate, the best face centred inside it seen close up, or undefined. */
  verify(frame: FaceFrame, candidates: Box[]): Promise<(ScoredBox | undefined)[]>;
}

/** IoU above which two detections are the same face (MediaPipe's setting). */
export const NMS_IOU = 0.3;

/** Full scan of one frame: every proposal verified; faces at or above `minScore`, strongest first. */
export async function detectFaces(model: FaceModel, frame: FaceFrame, minScore: number): Promise<ScoredBox[]> {
  const verified = await model.verify(frame, await model.propose(frame));
  return weightedNms(verified.filter((d): d is ScoredBox => d !== undefined && d.score >= minScore), NMS_IOU).sort((a, b) => b.score - a.score);
}

/** The square window that letterboxes the whole frame. */
export function wholeFrameWindow(width: number, height: number): Window {
  const size = Math.max(width, height);
  return { x: (width - size) / 2, y: (height - size) / 2, size };
}

/** Overlapping square tiles of `side` px covering the frame; `overlap` is the share of a side shared with a neighbour. */
export function tileWindows(width: number, height: number, side: number, overlap: number): Window[] {
  const stepsAlong = (length: number) => {
    if (length <= side) return [Math.round((length - side) / 2)];
    const n = Math.ceil((length - side) / (side * (1 - overlap))) + 1;
    const stride = (length - side) / (n - 1);
    return Array.from({ length: n }, (_, i) => Math.round(i * stride));
  };
  const windows: Window[] = [];
  for (const y of stepsAlong(height)) for (const x of stepsAlong(width)) windows.push({ x, y, size: side });
  return windows;
}

/** A tile detection cut by an inner tile edge: the overlapping neighbour sees that face whole. */
export function touchesInnerEdge(d: Box, win: Window, width: number, height: number): boolean {
  const margin = 2;
  const left = win.x > 0 && d.x <= win.x + margin;
  const top = win.y > 0 && d.y <= win.y + margin;
  const right = win.x + win.size < width && d.x + d.w >= win.x + win.size - margin;
  const bottom = win.y + win.size < height && d.y + d.h >= win.y + win.size - margin;
  return left || top || right || bottom;
}

export interface ScanPolicy {
  /**
   * Samples from one full scan to the next while the picture changes away from the known faces
   * (analysis sets it to a second's worth).
   */
  scanEvery: number;
  /** Samples from one full scan to the next at most while it does not (analysis: two seconds' worth). */
  quietScanEvery: number;
  /**
   * Change of one 32×18 thumbnail cell (0–255) since the last full scan, away from the known faces,
   * from which the picture counts as changed (something may have appeared): the next scan comes
   * after scanEvery samples rather than quietScanEvery.
   */
  pictureChange: number;
  /**
   * Mean absolute difference (0–255) between a followed face's grey patch (image.ts facePatch) now
   * and when it was last verified, below which the face has not moved: its box is carried forward
   * without running the model. A full scan verifies every face again.
   */
  stillFace: number;
  /**
   * Distance (image.ts sceneDistance: mean absolute difference 0–255 of grey thumbnails, camera
   * motion allowed for) between consecutive samples above which the scene has changed (a cut, a
   * flash): that sample gets a full scan.
   */
  sceneChange: number;
}

export interface ScanCounts {
  /** Samples that got a full scan. */
  fullScans: number;
  /** Samples that got only a follow pass. */
  followPasses: number;
  /** Faces carried forward unchanged because they had not moved (no model run for them). */
  carried: number;
}

interface Followed extends ScoredBox {
  /** The sample where the face was last verified, and its grey patch there. */
  frame: number;
  patch: Float32Array;
  /** Velocity of the box centre, pixels per frame. */
  vx: number;
  vy: number;
}

const centre = (b: Box) => [b.x + b.w / 2, b.y + b.h / 2] as const;

/**
 * Where to look for a followed face: its box moved by its velocity, widened by half the predicted
 * displacement (motion between samples is not linear) and a little on every side, at most to twice
 * its size so the face still fills enough of the verifying model's input.
 */
export function followWindow(face: Followed, frame: number): Box {
  const dt = frame - face.frame;
  const [cx, cy] = centre(face);
  const px = cx + face.vx * dt;
  const py = cy + face.vy * dt;
  const size = Math.max(face.w, face.h);
  const slack = Math.min(size / 2, 0.05 * size + 0.5 * Math.hypot(face.vx, face.vy) * dt);
  const w = face.w + 2 * slack;
  const h = face.h + 2 * slack;
  return { x: px - w / 2, y: py - h / 2, w, h };
}

/** A re-found face must be the same face: similar size, and near where it was or was predicted. */
function plausible(found: Box, face: Followed, window: Box): boolean {
  const ratio = Math.max(found.w, face.w) / Math.max(1, Math.min(found.w, face.w));
  const [fx, fy] = centre(found);
  const [wx, wy] = centre(window);
  return ratio <= 1.6 && Math.abs(fx - wx) <= window.w / 2 && Math.abs(fy - wy) <= window.h / 2;
}

/**
 * Adaptive detection over the samples of one video, in order. Keeps the faces of the last sample
 * with their velocities (its own light tracking; the plan's tracker runs afterwards on everything).
 * A follow pass re-finds each with one verify call; anything it cannot re-find, a scene change or
 * the scan interval triggers a full scan of the same frame, so a lost face costs a scan, never a
 * miss. Faces that a follow pass re-found are not verified again by that scan: only new ones are.
 */
export class FaceScanner {
  readonly counts: ScanCounts = { fullScans: 0, followPasses: 0, carried: 0 };
  private followed: Followed[] = [];
  private sinceScan = Infinity;
  private thumb: Float32Array | undefined;
  /** The thumbnail of the last full scan, to tell whether anything changed since. */
  private scanThumb: Float32Array | undefined;

  constructor(
    private readonly model: FaceModel,
    private readonly minScore: number,
    private readonly policy: ScanPolicy,
  ) {}

  /** Faces in frame pixels, strongest first. Samples must come in frame order. */
  async detect(frame: FaceFrame & { index: number; thumb: Float32Array }): Promise<ScoredBox[]> {
    const { thumb } = frame;
    const sceneChanged = !this.thumb || sceneDistance(thumb, this.thumb) > this.policy.sceneChange;
    this.thumb = thumb;
    this.sinceScan++;
    // A full scan is due after scanEvery samples if the picture changed away from the known faces
    // since the last one (something may have come in), after quietScanEvery samples in any case.
    const due = sceneChanged || this.sinceScan >= this.policy.quietScanEvery || (this.sinceScan >= this.policy.scanEvery && this.pictureChanged(frame));

    const refound: Followed[] = [];
    let lost = false;
    if (this.followed.length > 0 && !sceneChanged) {
      // A face whose patch has not changed since it was verified is where it was: no model run.
      // On a full scan every face is verified again, so a carried box lasts one scan interval at most.
      const patches = this.followed.map((f) => (due ? undefined : facePatch(frame, f)));
      const moving = this.followed.filter((f, i) => !(patches[i] && meanAbsDiff(patches[i], f.patch) <= this.policy.stillFace));
      const windows = moving.map((f) => followWindow(f, frame.index));
      const found = moving.length > 0 ? await this.model.verify(frame, windows) : [];
      this.followed.forEach((face) => {
        const m = moving.indexOf(face);
        if (m < 0) {
          this.counts.carried++;
          refound.push(face);
          return;
        }
        const d = found[m];
        // Two followed faces that converge on one face (people crossing) keep one box: the other is lost.
        const ok = d !== undefined && d.score >= this.minScore && plausible(d, face, windows[m]!) && !refound.some((r) => iou(r, d) > NMS_IOU);
        if (ok) refound.push(withVelocity(d, face, frame.index, facePatch(frame, d)));
        else lost = true;
      });
    }

    // With no face known, the samples between scans need no look at all.
    const scan = due || lost;
    let faces: Followed[] = refound;
    if (scan) {
      this.counts.fullScans++;
      this.sinceScan = 0;
      this.scanThumb = thumb;
      // Candidates on a face the follow pass already confirmed need no second look.
      const candidates = (await this.model.propose(frame)).filter((c) => !refound.some((r) => iou(r, c) > NMS_IOU || inside(centre(c), r)));
      const verified = (await this.model.verify(frame, candidates)).filter((d): d is ScoredBox => d !== undefined && d.score >= this.minScore);
      const fresh = weightedNms(verified, NMS_IOU)
        .filter((d) => !refound.some((r) => iou(r, d) > NMS_IOU))
        .map((d): Followed => {
          // A face the scan re-found after the follow pass lost it (it moved faster than predicted)
          // gets its velocity from where it was, so the next follow pass looks in the right place.
          const previous = sceneChanged ? undefined : nearestFollowed(d, this.followed, frame.index);
          const patch = facePatch(frame, d);
          return previous ? withVelocity(d, previous, frame.index, patch) : { ...d, frame: frame.index, vx: 0, vy: 0, patch };
        });
      faces = [...refound, ...fresh];
    } else {
      this.counts.followPasses++;
    }
    this.followed = faces;
    return faces.map(({ x, y, w, h, score }) => ({ x, y, w, h, score })).sort((a, b) => b.score - a.score);
  }

  /** Whether some thumbnail cell away from the followed faces changed by more than pictureChange since the last full scan. */
  private pictureChanged(frame: FaceFrame & { thumb: Float32Array }): boolean {
    if (!this.scanThumb) return true;
    // A face's surroundings (hair, shoulders, hands) move with it: a face size around it is left out.
    const around = this.followed.map((f) => ({ x: f.x - f.w, y: f.y - f.h, w: 3 * f.w, h: 3 * f.h }));
    return largestCellChange(frame.thumb, this.scanThumb, frame.width, frame.height, around) > this.policy.pictureChange;
  }
}

/**
 * The followed face a new detection most likely is: similar size, centre within MAX_JUMP of its
 * size from where the face's motion predicts it (the tracker's rule for young tracks).
 */
function nearestFollowed(d: Box, followed: Followed[], frame: number): Followed | undefined {
  let best: Followed | undefined;
  let bestJump = MAX_JUMP;
  const [dx, dy] = centre(d);
  for (const f of followed) {
    const ratio = Math.max(d.w, f.w) / Math.max(1, Math.min(d.w, f.w));
    const dt = frame - f.frame;
    const [fx, fy] = centre(f);
    const jump = Math.hypot(fx + f.vx * dt - dx, fy + f.vy * dt - dy) / Math.max(d.w, f.w);
    if (ratio <= 1.6 && jump <= bestJump) {
      best = f;
      bestJump = jump;
    }
  }
  return best;
}

/** Centre distance, in face sizes, within which a scan's detection continues a followed face. */
const MAX_JUMP = 3;

function inside([x, y]: readonly [number, number], b: Box): boolean {
  return x >= b.x && x <= b.x + b.w && y >= b.y && y <= b.y + b.h;
}

function withVelocity(d: ScoredBox, previous: Followed, frame: number, patch: Float32Array): Followed {
  const dt = Math.max(1, frame - previous.frame);
  const [cx, cy] = centre(d);
  const [px, py] = centre(previous);
  return { x: d.x, y: d.y, w: d.w, h: d.h, score: d.score, frame, vx: (cx - px) / dt, vy: (cy - py) / dt, patch };
}
