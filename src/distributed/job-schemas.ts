import { isAbsolute, normalize } from 'node:path';
import { z } from 'zod';
import { FACE_DETECTORS, ROI_KINDS } from '../analysis/analyze.js';
import { X265_PRESETS } from '../encode/argv.js';
import { codecFor, CODECS } from '../encode/codec.js';
import { parseEncoderParams } from '../encode/encoder-params.js';
import { RoiError } from '../media/errors.js';
import { planSchema } from '../plan/plan.js';
import type { AnalyzeJobData, AssembleJobData, ChunkJobData, JobData } from './jobs.js';

/**
 * What a worker accepts from Redis: one strict schema per job kind. Every field is a typed value
 * (numbers, enums, absolute paths); unknown fields are refused, so nothing a worker does not build
 * itself reaches ffmpeg. Paths are further checked against the worker's --root folders (roots.ts).
 */

const finite = z.number().finite();
const seconds = finite.min(0);
const count = z.number().int().min(0);
const id = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - only');

/** Absolute, already normalised (no `..`), and free of control characters (a newline would end a concat line). */
const absolutePath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => ![...p].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f), 'no control characters')
  .refine((p) => isAbsolute(p) && normalize(p) === p, 'an absolute, normalised path');

/**
 * Encoder parameters that name a file (x265's and x264's): on a worker they would read or write a
 * path no --root check sees, so distributed encodes refuse them (a single-machine encode takes them).
 */
const FILE_PARAMS = new Set(['csv', 'analysis-save', 'analysis-load', 'analysis-reuse-file', 'scaling-list', 'lambda-file', 'dolby-vision-rpu', 'dhdr10-info', 'qpfile', 'zonefile', 'recon', 'stats', 'dump-yuv', 'tcfile-in', 'tcfile-out', 'cqmfile', 'input', 'output']);

/** Why these expert parameters cannot travel to a worker, or undefined. */
export function workerParamProblem(params: Record<string, string>): string | undefined {
  for (const [key, value] of Object.entries(params)) {
    const k = key.toLowerCase().replace(/_/g, '-').replace(/^no-/, '');
    if (FILE_PARAMS.has(k)) return `${key} names a file, which a worker would read or write outside its --root folders; drop it for a distributed encode`;
    if (/[:/\\]|^\./.test(value) || [...value].some((c) => c.charCodeAt(0) < 0x20)) return `the value of ${key} looks like a path or holds a separator; distributed encodes take plain values only`;
  }
  return undefined;
}

const encoderParamsSchema = z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), z.string().max(256)).superRefine((params, ctx) => {
  const why = workerParamProblem(params);
  if (why) ctx.addIssue({ code: 'custom', message: why });
});

const streamStart = z.strictObject({ videoStartSeconds: seconds, formatStartSeconds: seconds });

const analyzeOptions = z
  .strictObject({
    roi: z.array(z.enum(ROI_KINDS)).min(1),
    sampleFps: finite,
    minScore: finite,
    minFaceSize: z.number().int(),
    faceQpOffset: finite,
    backgroundQpOffset: finite,
    keyframeMaxQpOffset: finite.optional(),
    sceneThreshold: finite,
    faceDetector: z.enum(FACE_DETECTORS),
    saliencyModel: absolutePath.optional(),
    saliencyNormalization: z.enum(['imagenet', 'unit', 'signed']),
    saliencyQpOffset: finite,
  })
  // JSON drops undefined keys; the analysis takes them as present and undefined.
  .transform((o) => ({ ...o, keyframeMaxQpOffset: o.keyframeMaxQpOffset, saliencyModel: o.saliencyModel }));

export const analyzeJobSchema = z.strictObject({
  kind: z.literal('analyze'),
  encodeId: id,
  input: absolutePath,
  options: analyzeOptions,
}) satisfies z.ZodType<AnalyzeJobData, unknown>;

export const chunkJobSchema = z
  .strictObject({
    kind: z.literal('chunk'),
    encodeId: id,
    index: count,
    count: z.number().int().min(1),
    input: absolutePath,
    output: absolutePath,
    startFrame: count,
    endFrame: z.number().int().min(1),
    startSeconds: seconds,
    endSeconds: seconds,
    bounds: z.strictObject({ beforeSeconds: seconds.optional(), firstSeconds: seconds, lastSeconds: seconds, afterSeconds: seconds.optional() }),
    streamStart,
    frameTimes: z.array(seconds),
    plan: planSchema.optional(),
    timeBase: z.string().regex(/^[1-9]\d{0,9}\/[1-9]\d{0,9}$/, 'a time base such as 1/12800'),
    crf: finite.min(0).max(51),
    preset: z.enum(X265_PRESETS),
    strength: finite.min(0).max(4),
    codec: z.enum(CODECS).optional(),
    encoderParams: encoderParamsSchema.optional(),
    size: z.strictObject({ width: z.number().int().min(16).max(16384).multipleOf(2), height: z.number().int().min(16).max(16384).multipleOf(2) }).optional(),
    rate: z.strictObject({ pass: z.union([z.literal(1), z.literal(2)]), bitrate: z.number().int().min(1000).max(10e9), stats: absolutePath }).optional(),
  })
  .refine((c) => c.index < c.count && c.endFrame > c.startFrame && c.frameTimes.length === c.endFrame - c.startFrame, 'inconsistent chunk range')
  .superRefine((c, ctx) => {
    // The submitter's own check again (owned keys, ones that drop the ROI), on the worker's side.
    try {
      if (c.encoderParams) parseEncoderParams(codecFor(c.codec ?? 'x265'), c.encoderParams);
    } catch (error) {
      ctx.addIssue({ code: 'custom', path: ['encoderParams'], message: error instanceof Error ? error.message : String(error) });
    }
  }) satisfies z.ZodType<ChunkJobData, unknown>;

export const assembleJobSchema = z.strictObject({
  kind: z.literal('assemble'),
  encodeId: id,
  input: absolutePath,
  output: absolutePath,
  container: z.enum(['mp4', 'mov', 'mkv']),
  chunks: z.array(z.strictObject({ path: absolutePath, durationSeconds: seconds })).min(1),
  videoStartSeconds: seconds,
  tracks: z.array(z.strictObject({ index: count, type: z.enum(['audio', 'subtitle']), codec: z.string().regex(/^\w{1,64}$/), action: z.enum(['copy', 'alac', 'mov_text', 'srt', 'aac', 'libopus']), bitrate: z.number().int().min(1000).max(10_000_000).optional() })),
  videoOnly: z.boolean(),
  frameCount: z.number().int().min(1),
  codec: z.enum(CODECS).optional(),
}) satisfies z.ZodType<AssembleJobData, unknown>;

const schemas = { analyze: analyzeJobSchema, chunk: chunkJobSchema, assemble: assembleJobSchema } as const;

/** Parses a job's data as the kind its name says; a job that does not fit is refused with where and why. */
export function parseJobData(name: string, data: unknown): JobData {
  const schema = (schemas as Record<string, z.ZodType<JobData> | undefined>)[name];
  if (!schema) throw new RoiError('JOB_REFUSED', `refused a job of unknown kind '${name.slice(0, 40)}'`);
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') || 'data';
    throw new RoiError('JOB_REFUSED', `refused a malformed ${name} job (${where}: ${issue.message})`);
  }
  return parsed.data;
}
