import type { Plan, PlanSegment } from '../plan/plan.js';

/**
 * Keyframe relief: the plan's `keyframeMaxQpOffset` applied on the frames x265 will code as
 * keyframes. Whatever a keyframe's background loses, every frame predicted from it loses again (a
 * still background is coded once, on the keyframe, and skipped after), while the bits a positive
 * offset saves there are few. Measured (x265 medium, CRF 22–34, BD-rates against uniform): with face
 * −4 / background +4, lowering positive offsets to 0 on keyframes cut the full-frame cost from +8.5% to
 * +5.2% on the fast pan and from +30.9% to +27.2% on the talking head, for 1.8 and 0.9 points less
 * face saving; with today's face −2 it is most of the default's gain (README, "Defaults, and how they
 * were chosen").
 */

/** x265's keyint at every preset (roi-encoder does not change it): a keyframe at least every 250 frames. */
export const X265_KEYINT = 250;

/**
 * Frames x265 codes as keyframes in an encode of `frameCount` frames: the first, each cut (x265's
 * own scene-cut detection puts an intra picture there), and every keyint frames after each of those.
 * x265 can still place one elsewhere (a cut it sees and the analysis did not); a frame predicted
 * wrongly keeps the plan's offsets or gets the cap, one frame either way.
 */
export function encoderKeyframes(frameCount: number, cuts: readonly number[] = [], keyint = X265_KEYINT): number[] {
  const starts = [0, ...new Set(cuts.filter((c) => c > 0 && c < frameCount))].sort((a, b) => a - b);
  const frames: number[] = [];
  starts.forEach((start, i) => {
    const end = starts[i + 1] ?? frameCount;
    for (let f = start; f < end; f += keyint) frames.push(f);
  });
  return frames;
}

/**
 * The plan's segments with each keyframe as a one-frame segment of its own whose offsets are at most
 * `plan.keyframeMaxQpOffset`; the plan itself when it has no cap. Pure: the encode's filtergraph is
 * built from what this returns.
 */
export function relieveKeyframes(plan: Plan): Plan {
  const cap = plan.keyframeMaxQpOffset;
  if (cap === undefined) return plan;
  const keyframes = encoderKeyframes(plan.input.frameCount, plan.cuts);
  const segments: PlanSegment[] = [];
  let k = 0;
  for (const seg of plan.segments) {
    let start = seg.startFrame;
    // A segment with nothing above the cap stays whole (an unchanged keyframe needs no segment of its own).
    const capped = seg.regions.some((r) => r.qpOffset > cap);
    for (; k < keyframes.length && keyframes[k]! < seg.endFrame; k++) {
      const f = keyframes[k]!;
      if (f < start || !capped) continue;
      if (f > start) segments.push({ ...seg, startFrame: start, endFrame: f });
      segments.push({ ...seg, startFrame: f, endFrame: f + 1, regions: seg.regions.map((r) => (r.qpOffset > cap ? { ...r, qpOffset: cap } : r)) });
      start = f + 1;
    }
    if (start < seg.endFrame) segments.push({ ...seg, startFrame: start, endFrame: seg.endFrame });
  }
  return { ...plan, segments };
}
