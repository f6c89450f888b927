import { iou, type Box, type ScoredBox } from './boxes.js';

/**
 * Follows faces across sampled frames and fills in every frame between samples.
 *
 * Association is greedy on a distance that mixes overlap and centre distance (fast faces move
 * further between samples than their own size, so IoU alone would lose them). Short misses are
 * bridged; scene cuts end every track. Between samples, boxes are interpolated and grown in the
 * direction of motion, so a face that moves fast stays covered on every frame, not just on samples.
 */
export interface Sample {
  frame: number;
  faces: ScoredBox[];
}

export interface TrackPoint extends ScoredBox {
  frame: number;
}

export interface Track {
  id: number;
  points: TrackPoint[];
}

export interface TrackerOptions {
  /** Consecutive samples a track may miss before it ends. */
  maxMissedSamples: number;
  /** A track needs this many detections to count (rejects one-off false positives)… */
  minHits: number;
  /** …unless a single detection is at least this confident. */
  singleHitScore: number;
}

/**
 * Centre distance from the predicted position, in units of the larger box's size, under which a
 * detection may join a track. A track with one point has no velocity yet, so its prediction is
 * weaker and it may jump further (a face crossing the frame in a second moves more than its own
 * width between samples).
 */
const MAX_JUMP = 1.5;
const MAX_JUMP_NEW = 3;

function centre(b: Box): [number, number] {
  return [b.x + b.w / 2, b.y + b.h / 2];
}

function matchCost(last: Box, predicted: Box, det: Box, maxJump: number): number {
  const overlap = Math.max(iou(predicted, det), iou(last, det));
  const [px, py] = centre(predicted);
  const [lx, ly] = centre(last);
  const [dx, dy] = centre(det);
  const size = Math.max(predicted.w, predicted.h, det.w, det.h);
  // Motion that turns between samples (a bobbing head) can land nearer the last position than the prediction.
  const jump = Math.min(Math.hypot(px - dx, py - dy), Math.hypot(lx - dx, ly - dy)) / size;
  const sizeRatio = Math.max(predicted.w, det.w) / Math.max(1, Math.min(predicted.w, det.w));
  if (jump > maxJump || sizeRatio > 2) return Infinity;
  return jump - overlap;
}

interface ActiveTrack extends Track {
  missed: number;
  /** Per-frame velocity of the box origin, from the last two points. */
  vx: number;
  vy: number;
}

/** Builds tracks from samples (sorted by frame). `cuts` are frames where a new shot starts. */
export function trackFaces(samples: Sample[], cuts: number[], options: TrackerOptions): Track[] {
  const done: Track[] = [];
  let active: ActiveTrack[] = [];
  let nextId = 1;
  let prevFrame = -1;
  const cutSet = [...cuts].sort((a, b) => a - b);
  for (const sample of samples) {
    if (cutSet.some((c) => c > prevFrame && c <= sample.frame)) {
      done.push(...active);
      active = [];
    }
    prevFrame = sample.frame;
    const pairs: { t: ActiveTrack; d: ScoredBox; cost: number }[] = [];
    for (const t of active) {
      const last = t.points[t.points.length - 1]!;
      const dt = sample.frame - last.frame;
      const predicted = { x: last.x + t.vx * dt, y: last.y + t.vy * dt, w: last.w, h: last.h };
      for (const d of sample.faces) {
        const cost = matchCost(last, predicted, d, t.points.length > 1 ? MAX_JUMP : MAX_JUMP_NEW);
        if (Number.isFinite(cost)) pairs.push({ t, d, cost });
      }
    }
    pairs.sort((a, b) => a.cost - b.cost);
    const usedT = new Set<ActiveTrack>();
    const usedD = new Set<ScoredBox>();
    for (const { t, d } of pairs) {
      if (usedT.has(t) || usedD.has(d)) continue;
      usedT.add(t);
      usedD.add(d);
      const last = t.points[t.points.length - 1]!;
      const dt = sample.frame - last.frame;
      t.vx = (d.x + d.w / 2 - (last.x + last.w / 2)) / dt;
      t.vy = (d.y + d.h / 2 - (last.y + last.h / 2)) / dt;
      t.points.push({ ...d, frame: sample.frame });
      t.missed = 0;
    }
    const still: ActiveTrack[] = [];
    for (const t of active) {
      if (!usedT.has(t)) t.missed++;
      if (t.missed > options.maxMissedSamples) done.push(t);
      else still.push(t);
    }
    active = still;
    for (const d of sample.faces) {
      if (!usedD.has(d)) active.push({ id: nextId++, points: [{ ...d, frame: sample.frame }], missed: 0, vx: 0, vy: 0 });
    }
  }
  done.push(...active);
  return done
    .filter((t) => t.points.length >= options.minHits || t.points.some((p) => p.score >= options.singleHitScore))
    .sort((a, b) => a.points[0]!.frame - b.points[0]!.frame || a.id - b.id)
    .map((t, i) => ({ id: i + 1, points: t.points }));
}

/**
 * Labels each sample's boxes with the id of the track that took them (plus `idOffset`), so the plan
 * records which detection is which face from sample to sample. Boxes no track kept (one-off weak
 * detections) stay unlabelled.
 */
export function labelWithTracks<T extends ScoredBox>(samples: { frame: number; boxes: T[] }[], tracks: Track[], idOffset = 0): (T & { track?: number })[][] {
  const key = (frame: number, b: Box) => `${frame}:${b.x}:${b.y}:${b.w}:${b.h}`;
  const ids = new Map<string, number>();
  for (const t of tracks) for (const p of t.points) ids.set(key(p.frame, p), t.id + idOffset);
  return samples.map((s) => s.boxes.map((b) => {
    const id = ids.get(key(s.frame, b));
    return id === undefined ? b : { ...b, track: id };
  }));
}

export interface FrameFace extends ScoredBox {
  track: number;
}

export interface InterpolationOptions {
  frameCount: number;
  /** Frames between samples. */
  step: number;
  cuts: number[];
  width: number;
  height: number;
}

/**
 * Boxes for every frame of every track: linear between detections, extrapolated with the track's
 * velocity up to one sample step beyond its ends (a face is usually there before it is first
 * detected), never across a scene cut. Each box is grown on its leading side by the distance it
 * moves in half a sample step, plus a little on all sides for moving faces, because real motion
 * between samples is not linear.
 */
export function interpolateTracks(tracks: Track[], options: InterpolationOptions): FrameFace[][] {
  const frames: FrameFace[][] = Array.from({ length: options.frameCount }, () => []);
  const cuts = [...options.cuts].sort((a, b) => a - b);
  const shotStart = (f: number) => cuts.filter((c) => c <= f).pop() ?? 0;
  const shotEnd = (f: number) => cuts.find((c) => c > f) ?? options.frameCount;
  for (const track of tracks) {
    const pts = track.points;
    const first = pts[0]!;
    const last = pts[pts.length - 1]!;
    const v = (a: TrackPoint, b: TrackPoint) => ({
      vx: (b.x + b.w / 2 - (a.x + a.w / 2)) / Math.max(1, b.frame - a.frame),
      vy: (b.y + b.h / 2 - (a.y + a.h / 2)) / Math.max(1, b.frame - a.frame),
    });
    const startV = pts.length > 1 ? v(first, pts[1]!) : { vx: 0, vy: 0 };
    const endV = pts.length > 1 ? v(pts[pts.length - 2]!, last) : { vx: 0, vy: 0 };
    const from = Math.max(shotStart(first.frame), first.frame - options.step + 1, 0);
    const to = Math.min(shotEnd(last.frame), last.frame + options.step, options.frameCount);
    let seg = 0;
    for (let f = from; f < to; f++) {
      while (seg < pts.length - 2 && pts[seg + 1]!.frame <= f) seg++;
      let box: ScoredBox;
      let vel: { vx: number; vy: number };
      // Beyond a track's ends the direction of motion is a guess: grow on every side by the distance covered.
      let beyond = 0;
      if (f <= first.frame) {
        const dt = f - first.frame;
        box = { ...first, x: first.x + startV.vx * dt, y: first.y + startV.vy * dt };
        vel = startV;
        beyond = Math.hypot(startV.vx, startV.vy) * -dt;
      } else if (f >= last.frame) {
        const dt = f - last.frame;
        box = { ...last, x: last.x + endV.vx * dt, y: last.y + endV.vy * dt };
        vel = endV;
        beyond = Math.hypot(endV.vx, endV.vy) * dt;
      } else {
        const a = pts[seg]!;
        const b = pts[seg + 1]!;
        const t = (f - a.frame) / (b.frame - a.frame);
        const lerp = (p: number, q: number) => p + (q - p) * t;
        box = { x: lerp(a.x, b.x), y: lerp(a.y, b.y), w: lerp(a.w, b.w), h: lerp(a.h, b.h), score: Math.min(a.score, b.score) };
        vel = v(a, b);
      }
      const lead = options.step / 2;
      const gx = Math.abs(vel.vx) * lead;
      const gy = Math.abs(vel.vy) * lead;
      const slack = beyond + Math.min(box.w, box.h) * Math.min(0.25, (Math.hypot(vel.vx, vel.vy) * options.step) / Math.max(1, box.w));
      const grown = {
        x: box.x - slack - (vel.vx < 0 ? gx : 0),
        y: box.y - slack - (vel.vy < 0 ? gy : 0),
        w: box.w + 2 * slack + gx,
        h: box.h + 2 * slack + gy,
      };
      const x0 = Math.max(0, grown.x);
      const y0 = Math.max(0, grown.y);
      const x1 = Math.min(options.width, grown.x + grown.w);
      const y1 = Math.min(options.height, grown.y + grown.h);
      if (x1 - x0 < 1 || y1 - y0 < 1) continue;
      frames[f]!.push({ x: x0, y: y0, w: x1 - x0, h: y1 - y0, score: box.score, track: track.id });
    }
  }
  return frames;
}
