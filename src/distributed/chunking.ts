import type { Plan } from '../plan/plan.js';
import { lowerBound } from '../media/sorted.js';

/**
 * Pure functions that split one encode into chunks: where the chunks end, and the part of the one
 * plan each chunk gets. Frame ranges are [startFrame, endFrame), as in the plan.
 */
export interface ChunkRange {
  index: number;
  startFrame: number;
  endFrame: number;
  /** Source times (seconds from the first frame) of the chunk's first frame and of the frame after it. */
  startSeconds: number;
  endSeconds: number;
  /** True when the chunk ends at one of the plan's scene cuts. */
  endsAtCut: boolean;
}

/** Default target chunk length, seconds. */
export const DEFAULT_CHUNK_SECONDS = 30;

/**
 * Chunk boundaries: each chunk ends at the scene cut nearest to `chunkSeconds` after its start, if
 * one lies between half and one and a half times `chunkSeconds`; otherwise at the frame nearest to
 * `chunkSeconds`. A remainder of at most 1.5 × `chunkSeconds` becomes the last chunk, so no chunk is
 * a sliver.
 */
export function chunkRanges(frameTimes: ArrayLike<number>, durationSeconds: number, cuts: readonly number[], chunkSeconds: number): ChunkRange[] {
  const n = frameTimes.length;
  if (n === 0) return [];
  const timeOf = (f: number) => (f >= n ? durationSeconds : frameTimes[f]!);
  const sortedCuts = [...new Set(cuts)].filter((c) => c > 0 && c < n).sort((a, b) => a - b);
  const ranges: ChunkRange[] = [];
  let start = 0;
  while (start < n) {
    const t0 = timeOf(start);
    let end = n;
    let endsAtCut = false;
    if (durationSeconds - t0 > 1.5 * chunkSeconds) {
      const target = t0 + chunkSeconds;
      let best: number | undefined;
      for (const c of sortedCuts) {
        if (c <= start) continue;
        const t = timeOf(c);
        if (t < t0 + chunkSeconds / 2) continue;
        if (t > t0 + 1.5 * chunkSeconds) break;
        if (best === undefined || Math.abs(t - target) < Math.abs(timeOf(best) - target)) best = c;
      }
      if (best !== undefined) {
        end = best;
        endsAtCut = true;
      } else {
        const after = lowerBound(frameTimes, target, start + 1, n);
        end = after > start + 1 && after < n && target - timeOf(after - 1) < timeOf(after) - target ? after - 1 : after;
        end = Math.max(start + 1, Math.min(n, end));
      }
    }
    ranges.push({ index: ranges.length, startFrame: start, endFrame: end, startSeconds: t0, endSeconds: timeOf(end), endsAtCut });
    start = end;
  }
  return ranges;
}

/**
 * The part of the one plan that covers frames [start, end), renumbered from 0: segments and zones
 * clipped to the range, cuts and detections inside it. A face keeps exactly the regions and offsets
 * it has in the whole plan.
 */
export function slicePlan(plan: Plan, start: number, end: number, frameTimes: ArrayLike<number>): Plan {
  const t0 = frameTimes[start] ?? 0;
  const tEnd = end < frameTimes.length ? frameTimes[end]! : plan.input.durationSeconds;
  const clip = <T extends { startFrame: number; endFrame: number }>(items: T[]): T[] =>
    items
      .filter((s) => s.endFrame > start && s.startFrame < end)
      .map((s) => ({ ...s, startFrame: Math.max(s.startFrame, start) - start, endFrame: Math.min(s.endFrame, end) - start }));
  return {
    ...plan,
    input: { ...plan.input, frameCount: end - start, durationSeconds: Math.round((tEnd - t0) * 1e6) / 1e6 },
    detections: plan.detections.filter((d) => d.frame >= start && d.frame < end).map((d) => ({ ...d, frame: d.frame - start, time: Math.round((d.time - t0) * 1e6) / 1e6 })),
    ...(plan.cuts ? { cuts: plan.cuts.filter((c) => c > start && c < end).map((c) => c - start) } : {}),
    segments: clip(plan.segments),
    zones: clip(plan.zones),
  };
}

/** Frame times of a chunk, from its first frame. */
export function chunkFrameTimes(frameTimes: ArrayLike<number>, start: number, end: number): number[] {
  const t0 = frameTimes[start]!;
  return Array.from({ length: end - start }, (_, i) => frameTimes[start + i]! - t0);
}
