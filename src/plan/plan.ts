import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { RoiError } from '../media/errors.js';
import { PLAN_VERSION } from './plan-file.js';

/**
 * The plan: the contract between analysis and encode. A JSON document users can read, edit and feed
 * back with `--plan`. Coordinates are source (coded) pixels; frame ranges are [startFrame, endFrame).
 * Segments cover every frame from 0 to input.frameCount without gaps; within a segment, regions are
 * listed most important first, because where regions overlap the first one wins.
 */
export { PLAN_VERSION, planToJson } from './plan-file.js';

const int = z.number().int();
const nonNegInt = int.min(0);
const box = {
  x: z.number().min(0),
  y: z.number().min(0),
  w: z.number().positive(),
  h: z.number().positive(),
};

export const regionKinds = ['face', 'saliency', 'background'] as const;

export const planRegionSchema = z.object({
  ...box,
  /** QP offset in QP steps, −51…51: negative spends more bits, positive fewer. */
  qpOffset: z.number().min(-51).max(51),
  kind: z.enum(regionKinds),
  /** Mean importance (0–1) of the blocks this region alone covers; informational. */
  importance: z.number().min(0).max(1).optional(),
  /** Track id of the face or object the region follows; informational. */
  track: nonNegInt.optional(),
});

const seconds = z.number().nonnegative();

/** Where an analysis spent its time, and how much looking it did. */
export const analysisStatsSchema = z.object({
  /** Wall seconds of the whole analysis, probe included. */
  seconds,
  /**
   * Seconds per stage: probe, setup (model loading), decodeWait (waiting for decoded frames: the
   * decode time not hidden behind detection), detect, saliency, track, plan.
   */
  stages: z.object({ probe: seconds, setup: seconds, decodeWait: seconds, detect: seconds, saliency: seconds, track: seconds, plan: seconds }),
  samples: nonNegInt,
  /** Samples that got a full multi-scale scan, and samples where known faces were only followed (no look at all when none was known). */
  fullScans: nonNegInt,
  followPasses: nonNegInt,
  /** Followed faces whose box was carried forward without a model run, because their patch had not changed. */
  carriedFaces: nonNegInt.optional(),
  /** The most decoded frames ever waiting for the detector. */
  maxQueued: nonNegInt,
  /** Frames decoded: every frame, or for intra-only video only the samples and stretches searched for cuts. */
  decodedFrames: nonNegInt.optional(),
});

export const planSchema = z.object({
  version: z.literal(PLAN_VERSION),
  generator: z.object({ name: z.string(), version: z.string() }).optional(),
  input: z.object({
    path: z.string(),
    width: int.positive(),
    height: int.positive(),
    rotation: z.union([z.literal(0), z.literal(90), z.literal(180), z.literal(270)]).optional(),
    frameRate: z.number().positive(),
    frameCount: int.positive(),
    durationSeconds: z.number().nonnegative(),
  }),
  settings: z.record(z.string(), z.unknown()),
  detections: z.array(z.object({
    frame: nonNegInt,
    time: z.number(),
    /** `track`: the face (or salient object) this detection belongs to across samples, if tracked. */
    faces: z.array(z.object({ ...box, score: z.number().min(0).max(1), track: nonNegInt.optional() })),
    /** Salient regions found in this sample (with --roi saliency); score is the mean saliency 0–1. */
    salient: z.array(z.object({ ...box, score: z.number().min(0).max(1), track: nonNegInt.optional() })).optional(),
  })),
  cuts: z.array(nonNegInt).optional(),
  segments: z.array(z.object({
    startFrame: nonNegInt,
    endFrame: nonNegInt,
    regions: z.array(planRegionSchema),
  })).min(1),
  zones: z.array(z.object({
    startFrame: nonNegInt,
    endFrame: nonNegInt,
    /** Multiplies the bitrate x265 aims for in this frame range (x265 --zones b=). */
    bitrateFactor: z.number().positive().max(10),
  })),
  /**
   * On the frames x265 codes as keyframes (intra pictures: frame 0, each cut, every 250 frames after
   * one), region offsets above this are lowered to it, before --strength scales them: every following
   * frame predicts from a keyframe's background. Plans without it apply their offsets on every frame.
   */
  keyframeMaxQpOffset: z.number().min(-51).max(51).optional(),
  /** How the analysis spent its time (informational; plans without it are valid). */
  analysis: analysisStatsSchema.optional(),
});

export type Plan = z.infer<typeof planSchema>;
export type PlanRegion = z.infer<typeof planRegionSchema>;
export type PlanSegment = Plan['segments'][number];
export type PlanZone = Plan['zones'][number];
export type AnalysisStats = z.infer<typeof analysisStatsSchema>;
export type RegionKind = (typeof regionKinds)[number];

function fail(source: string, message: string): never {
  throw new RoiError('INVALID_PLAN', `invalid plan${source ? ` ${source}` : ''}: ${message}`);
}

/** Checks shape and meaning: segment coverage, frame ranges and regions inside the frame. */
export function validatePlan(value: unknown, source = ''): Plan {
  const parsed = planSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') : 'document';
    fail(source, `${where}: ${issue.message}`);
  }
  const plan = parsed.data;
  const { width, height, frameCount } = plan.input;
  let expected = 0;
  plan.segments.forEach((s, i) => {
    if (s.startFrame !== expected) fail(source, `segments[${i}] starts at frame ${s.startFrame}, expected ${expected} (segments must cover every frame without gaps or overlaps)`);
    if (s.endFrame <= s.startFrame) fail(source, `segments[${i}] is empty (endFrame ${s.endFrame} <= startFrame ${s.startFrame})`);
    expected = s.endFrame;
    s.regions.forEach((r, j) => {
      if (r.x + r.w > width + 1e-6 || r.y + r.h > height + 1e-6) {
        fail(source, `segments[${i}].regions[${j}] (${r.x},${r.y} ${r.w}x${r.h}) lies outside the ${width}x${height} frame`);
      }
    });
  });
  if (expected !== frameCount) fail(source, `segments end at frame ${expected} but the input has ${frameCount} frames`);
  plan.zones.forEach((z, i) => {
    if (z.endFrame <= z.startFrame || z.endFrame > frameCount) fail(source, `zones[${i}] must satisfy startFrame < endFrame <= ${frameCount}`);
    const prev = plan.zones[i - 1];
    if (prev && z.startFrame < prev.endFrame) fail(source, `zones[${i}] overlaps zones[${i - 1}]; zones must be sorted and disjoint`);
  });
  return plan;
}

export async function readPlan(path: string): Promise<Plan> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new RoiError('PLAN_NOT_FOUND', `plan not found: ${path}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new RoiError('INVALID_PLAN', `invalid plan ${path}: not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  return validatePlan(json, path);
}
