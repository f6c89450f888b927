import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { preloadModels } from '../analysis/analyze.js';
import { slicePlan } from '../distributed/chunking.js';
import { RoiError, throwIfAborted } from '../media/errors.js';
import { requireEncoder, resolveBinaries, type Binaries } from '../media/binaries.js';
import { checkOutputPath, withScratchDir } from '../media/output-file.js';
import { run } from '../media/process.js';
import { probeVideo, videoStreamBytes } from '../media/probe.js';
import type { Plan } from '../plan/plan.js';
import { ProgressMeter, type ProgressListener } from '../media/progress.js';
import { crfForValue } from '../report/matching.js';
import { KEPT_FACE_BYTES, KeptFaces, measureFaces, measureKeptFaces, type FaceQuality } from '../report/metrics.js';
import { expectNumber, expectOneOf, invalid } from '../media/validate.js';
import { buildEncodeArgs, containerFor, ENCODE_DEFAULTS, planTracks, X265_PRESETS } from '../encode/argv.js';
import { requireEvenSize, resolveEncodeOptions, resolvePlan } from '../encode/encode.js';
import { encoderBitDepth, encoderParams } from '../encode/codec.js';
import { bitDepthOf } from '../media/hdr.js';
import { encodeWith, type EncodeOptions, type EncodeResult } from '../runners/dispatch.js';
import { buildRoiFilterGraph, zonesParam } from '../encode/filtergraph.js';
import { scaledSize, scaleFilter, scalePlan, type PictureSize } from '../encode/scale.js';
import { scaledSourceCopy } from '../encode/scaled-source.js';

/*
 * The face-quality target: `matchCrf` ("faces at least as good as a uniform x265 encode at this CRF,
 * smallest file") and `targetFacePsnr` (dB). Built on encode() and measureFaces() (measureQuality's
 * face figures, computed around the faces only):
 *
 * 1. Samples: a few short face-rich stretches chosen from the plan are cut losslessly (raw frames)
 *    into one file, each with a short warm-up before it that is encoded but not measured (a stretch
 *    cut out of its video starts with an intra frame; in the whole encode those frames are predicted).
 * 2. Search on the samples: the uniform encode at the reference CRF (matchCrf) gives the face PSNR to
 *    reach, side by side with one ROI encode at the prior guess; within ONE_TRY_DB of it, the prior
 *    slope finishes the search. Otherwise further ROI encodes at candidate CRFs are interpolated in CRF
 *    (face PSNR is close to linear in CRF; the report's bitrate-matching search, crfForValue), at most
 *    MAX_SAMPLE_TRIES of them.
 * 3. The final encode at the chosen (fractional) CRF, then its faces measured on the whole output,
 *    against the source's face regions kept from the final encode's own decode (KeptFaces), so that
 *    only the output is decoded to measure it. If they miss the target by more than
 *    TARGET_TOLERANCE_DB, one corrected encode.
 */

/** Measured face PSNR may fall this far below the target before one corrected encode is made (see README). */
export const TARGET_TOLERANCE_DB = 0.3;
/** ROI sample encodes at most (the uniform reference sample comes on top, for matchCrf). */
export const MAX_SAMPLE_TRIES = 3;
/** A sample try this close to the target ends the search: interpolation does the rest. */
const SAMPLE_CLOSE_DB = 0.15;
/**
 * matchCrf's first round has one ROI try, at the prior guess; if its faces land within this of the
 * reference's, the CRF is moved the rest of the way along the prior slope and the search ends. The
 * slope measured on the dev clips' samples lies within ±0.08 dB per CRF of the prior, so a 0.5 dB
 * move along it errs by at most ~0.07 dB; a second try costs a sample encode and its measurement.
 */
const ONE_TRY_DB = 0.5;
/**
 * First guesses. ROI at CRF N + 0.85 × (the face offset's size in QP) × strength keeps faces about as
 * good as uniform at N (adaptive quantisation gives some of the offset back): with faces at −4 QP the
 * search chose N+3.4, N+2.9 and N+3.9 on the talking head, dev composite and fast pan; at today's −2
 * (guess N+1.7) N+1.4, N+1.7 and N+2.2 (camera 1080p N+1.6), one sample try each. Face PSNR
 * falls ~0.55 dB per CRF step (0.48–0.63 on the talking head, 0.58 on the dev composite, x265 medium).
 */
const PRIOR_CRF_SHIFT_PER_FACE_QP = 0.85;
const PRIOR_SLOPE_DB_PER_CRF = -0.55;
/** targetFacePsnr's first round: two ROI tries this far either side of CRF 28. */
const FIRST_SPREAD_TARGET = 4;
/** A try moves at most this far from the nearest one. */
const MAX_CRF_STEP = 6;
/** Samples: measured stretches of ~1 s, each after a ~0.4 s warm-up, ~12% of the video in all (at least one stretch), at most 4. */
const SAMPLE_SECONDS = 1;
const WARMUP_SECONDS = 0.4;
const SAMPLE_SHARE = 0.12;
const MAX_STRETCHES = 4;
/** The sample file holds raw frames up to this size (scratch disk), FFV1 above. */
const RAW_SAMPLE_BYTES = 2 ** 31;

export interface FaceTargetOptions {
  /**
   * Faces at least as good (face PSNR) as a uniform x265 encode at this CRF (0–51) with the same
   * preset would give them, the rest of the frame following the plan, in the smallest file the search
   * finds. The CRF is chosen by the search; `crf` must be left out.
   */
  matchCrf?: number;
  /** Face PSNR to reach, dB (10–100), instead of a CRF to match. */
  targetFacePsnr?: number;
  /**
   * Also encode the uniform reference on the whole video and measure it (matchCrf only), so that the
   * reference's face quality and size are measured rather than estimated on samples. Costs about one
   * more encode and measurement.
   */
  verifyReference?: boolean;
}

/** One encode the search made. */
export interface TargetTry {
  crf: number;
  /** 'samples': the sample stretches; 'whole': the whole video (the final encode, and a correction). */
  on: 'samples' | 'whole';
  mode: 'roi' | 'uniform';
  facePsnr: number;
  faceSsim: number;
  /** Video stream bytes. */
  bytes: number;
}

/** What the target asked for and what the encode reached. */
export interface TargetOutcome {
  kind: 'matchCrf' | 'targetFacePsnr';
  /** False when the video has no faces: the encode then ran at `crf` without a search (see `notice`). */
  applied: boolean;
  notice?: string;
  /** matchCrf: the uniform reference's CRF. */
  referenceCrf?: number;
  /** The face PSNR aimed at, dB: the reference's (matchCrf) or the one given. */
  targetFacePsnr: number;
  /** The CRF of the output (fractional). */
  crf: number;
  /** The output's faces, measured on the whole output (NaN when not applied). */
  facePsnr: number;
  faceSsim: number;
  /**
   * The uniform reference's faces and video bytes (matchCrf). `measuredOn` 'samples': face figures
   * from its sample encode, and its whole-video face PSNR and bytes estimated from the samples'
   * ROI-to-uniform differences carried to the measured output; 'whole' (verifyReference): measured.
   */
  reference?: { crf: number; facePsnr: number; faceSsim: number; bytes: number; measuredOn: 'samples' | 'whole'; samples: { facePsnr: number; faceSsim: number; bytes: number } };
  /** The output's faces predicted on the samples at the chosen CRF (interpolated between tries). */
  predicted: { facePsnr: number; faceSsim: number; sizeRatio?: number };
  /** Output video bytes over the reference's (matchCrf); measured on both only with verifyReference. */
  sizeRatio?: number;
  sizeRatioMeasuredOn?: 'samples' | 'whole';
  /** Output face PSNR minus the target, dB (whole output; against the estimated reference without verifyReference). */
  difference: number;
  tolerance: number;
  /** Whether the output is within `tolerance` below the target, or above it. */
  met: boolean;
  /** True if a second final encode corrected the first one's miss. */
  corrected: boolean;
  /**
   * True when the whole-output measurement took the source's face regions from the final encode's own
   * decode; false when it decoded the source again (a source not 8-bit 4:2:0, or face regions over
   * KEPT_FACE_BYTES). The figures are the same either way.
   */
  sourceDecodedOnce: boolean;
  /** ROI sample encodes made (the uniform reference sample not counted), and every encode in order. */
  sampleTries: number;
  tries: TargetTry[];
  /** The stretches measured ([start, end) source frames, after `warmStart`), and their share of the video's frames (warm-ups included). */
  samples: { stretches: Stretch[]; frames: number; share: number };
  /** Wall seconds: sample search (cutting, encodes, measures), final encode(s), whole-output measurement(s). */
  seconds: { analysis: number; search: number; encode: number; measure: number; total: number };
}

export interface ResolvedTarget {
  kind: 'matchCrf' | 'targetFacePsnr';
  value: number;
  verifyReference: boolean;
}

/** Validates the target options (sharp-style), or returns undefined when there is no target. */
export function resolveFaceTarget(options: EncodeOptions & FaceTargetOptions): ResolvedTarget | undefined {
  const { matchCrf, targetFacePsnr } = options;
  if (matchCrf === undefined && targetFacePsnr === undefined) {
    if (options.verifyReference) throw invalid('no verifyReference without matchCrf', 'verifyReference', options.verifyReference);
    return undefined;
  }
  if (matchCrf !== undefined && targetFacePsnr !== undefined) throw invalid('one face-quality target, not a CRF to match and a face PSNR both', 'targetFacePsnr', targetFacePsnr);
  const kind = matchCrf !== undefined ? 'matchCrf' : 'targetFacePsnr';
  const value = kind === 'matchCrf' ? expectNumber('matchCrf', matchCrf, 0, 51) : expectNumber('targetFacePsnr', targetFacePsnr, 10, 100);
  if (options.verifyReference && kind !== 'matchCrf') throw invalid('no verifyReference with a face PSNR target (there is no reference)', 'verifyReference', options.verifyReference);
  if (options.crf !== undefined) throw invalid('no crf with a face-quality target, which chooses the CRF', 'crf', options.crf);
  const roi = options.roi ?? 'faces';
  if (typeof roi !== 'string' || !roi.split(',').map((s) => s.trim()).includes('faces')) throw invalid("'faces' or 'faces,saliency' with a face-quality target (it measures faces)", 'roi', roi);
  if (options.redis !== undefined) throw invalid('no redis with a face-quality target (the search runs on one machine)', 'redis', options.redis);
  return { kind, value, verifyReference: Boolean(options.verifyReference) };
}

/** A sample stretch: frames [warmStart, start) are encoded but not measured, [start, end) are measured. */
export interface Stretch {
  warmStart: number;
  start: number;
  end: number;
}

const faceArea = (d: Plan['detections'][number]) => d.faces.reduce((s, f) => s + f.w * f.h, 0);

/** How many QP steps the plan's strongest face region takes off (0 when faces get no negative offset). */
export function faceOffsetSize(plan: Plan): number {
  let size = 0;
  for (const seg of plan.segments) for (const r of seg.regions) if (r.kind === 'face') size = Math.max(size, -r.qpOffset);
  return size;
}

/**
 * Pure: the sample stretches, face-rich parts of the video chosen from the plan. The video is split
 * into K equal parts (K from SAMPLE_SHARE, at most MAX_STRETCHES, at least one); in each, the
 * SAMPLE_SECONDS window starting at a sample with faces whose samples hold the most face area per
 * frame encoded, its warm-up included. Each gets a WARMUP_SECONDS warm-up before it (none at frame 0,
 * where the real encode starts too, nor right after the previous stretch). Empty when no sample has a
 * face.
 */
export function chooseStretches(plan: Plan): Stretch[] {
  const n = plan.input.frameCount;
  const fps = plan.input.frameRate;
  const measured = Math.max(8, Math.round(SAMPLE_SECONDS * fps));
  const warm = Math.max(4, Math.round(WARMUP_SECONDS * fps));
  const parts = Math.max(1, Math.min(MAX_STRETCHES, Math.floor((SAMPLE_SHARE * n) / (measured + warm))));
  const withFaces = plan.detections.filter((d) => d.faces.length > 0);
  const stretches: Stretch[] = [];
  for (let k = 0; k < parts; k++) {
    const lo = Math.floor((k * n) / parts);
    const hi = Math.floor(((k + 1) * n) / parts);
    const prevEnd = stretches.at(-1)?.end ?? 0;
    let best: { start: number; score: number } | undefined;
    for (const d of withFaces) {
      if (d.frame < lo || d.frame >= hi) continue;
      // Face area per frame encoded: a stretch at the video's start (or right after the last one)
      // needs no warm-up, which saves a short video's search up to 30% of its sample encodes.
      const area = withFaces.filter((e) => e.frame >= d.frame && e.frame < d.frame + measured).reduce((s, e) => s + faceArea(e), 0);
      const score = area / (measured + Math.min(warm, Math.max(0, d.frame - prevEnd)));
      if (!best || score > best.score) best = { start: d.frame, score };
    }
    if (!best) continue;
    const start = Math.max(best.start, prevEnd);
    const end = Math.min(n, start + measured);
    if (end <= start) continue;
    stretches.push({ warmStart: Math.max(prevEnd, start - warm), start, end });
  }
  return stretches;
}

/**
 * Pure: the plans of the sample file (the stretches one after another, warm-ups included): `encode`
 * has each stretch's segments, zones and detections as in the whole plan, with a scene cut at every
 * join; `judge` is the same without the warm-ups' faces, so measureFaces counts the measured frames'
 * faces only.
 */
export function samplePlans(plan: Plan, stretches: Stretch[], frameTimes: ArrayLike<number>): { encode: Plan; judge: Plan; frames: number } {
  const fps = plan.input.frameRate;
  const encodePlan: Plan = { ...plan, detections: [], segments: [], zones: [], cuts: [] };
  const judgeDetections: Plan['detections'] = [];
  const judgeCuts: number[] = [];
  let offset = 0;
  for (const s of stretches) {
    const part = slicePlan(plan, s.warmStart, s.end, frameTimes);
    const shift = <T extends { startFrame: number; endFrame: number }>(x: T): T => ({ ...x, startFrame: x.startFrame + offset, endFrame: x.endFrame + offset });
    const detections = part.detections.map((d) => ({ ...d, frame: d.frame + offset, time: (d.frame + offset) / fps }));
    encodePlan.detections.push(...detections);
    encodePlan.segments.push(...part.segments.map(shift));
    encodePlan.zones.push(...part.zones.map(shift));
    if (offset > 0) encodePlan.cuts!.push(offset);
    encodePlan.cuts!.push(...(part.cuts ?? []).map((c) => c + offset));
    const measuredFrom = offset + (s.start - s.warmStart);
    if (measuredFrom > offset) {
      judgeDetections.push({ frame: offset, time: offset / fps, faces: [] });
      judgeCuts.push(measuredFrom);
    }
    judgeDetections.push(...detections.filter((d) => d.frame >= measuredFrom));
    offset += s.end - s.warmStart;
  }
  const input = { ...plan.input, frameCount: offset, durationSeconds: offset / fps };
  encodePlan.input = input;
  encodePlan.cuts = [...new Set(encodePlan.cuts)].sort((a, b) => a - b);
  const judge: Plan = { ...encodePlan, detections: judgeDetections, cuts: [...new Set([...encodePlan.cuts, ...judgeCuts])].sort((a, b) => a - b) };
  return { encode: encodePlan, judge, frames: offset };
}

/**
 * Cuts the stretches out of the input into one lossless file, frames renumbered at a constant rate:
 * raw frames (NUT), which every sample encode and measurement reads without decoding (FFV1 cost the
 * dev composite's search ~1.2 s of CPU per pass over its 35 sample frames), or FFV1 when raw frames
 * could exceed RAW_SAMPLE_BYTES.
 */
async function cutSamples(input: string, dir: string, stretches: Stretch[], info: { width: number; height: number; frameRate: number }, bins: Binaries, signal?: AbortSignal, size?: PictureSize): Promise<string> {
  const select = stretches.map((s) => `between(n,${s.warmStart},${s.end - 1})`).join('+');
  const frames = stretches.reduce((t, s) => t + s.end - s.warmStart, 0);
  // At most 4 bytes a pixel (up to 4:2:2 at 16 bits).
  const raw = frames * info.width * info.height * 4 <= RAW_SAMPLE_BYTES;
  const file = join(dir, raw ? 'samples.nut' : 'samples.mkv');
  await run(bins.ffmpeg, [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error', '-y', '-noautorotate', '-i', input,
    // A scaled output's samples are scaled as its encode scales them (the same filter, frame by frame).
    '-map', '0:v:0', '-vf', `select='${select}',setpts=N/(${info.frameRate}*TB)${size ? `,${scaleFilter(size)}` : ''}`, '-frames:v', String(frames),
    '-fps_mode', 'passthrough', '-c:v', raw ? 'rawvideo' : 'ffv1', '-an', '-sn', '-dn', file,
  ], { signal, what: 'cutting sample stretches' });
  return file;
}


const labelled = (onProgress: ProgressListener | undefined, label: string): ProgressListener | undefined => onProgress && ((e) => onProgress({ ...e, label }));

/** Linear interpolation of `key` at `crf` between the ROI sample tries (nearest two; one alone with the prior slope for PSNR). */
function predictAt(tries: TargetTry[], crf: number, key: 'facePsnr' | 'faceSsim' | 'logBytes'): number {
  const value = (t: TargetTry) => (key === 'logBytes' ? Math.log(t.bytes) : t[key]);
  const sorted = [...tries].sort((a, b) => Math.abs(a.crf - crf) - Math.abs(b.crf - crf));
  const [a, b] = sorted;
  if (!a) return NaN;
  if (!b || b.crf === a.crf) return key === 'facePsnr' ? a.facePsnr + PRIOR_SLOPE_DB_PER_CRF * (crf - a.crf) : value(a);
  return value(a) + ((value(b) - value(a)) * (crf - a.crf)) / (b.crf - a.crf);
}

/** Face PSNR per CRF step near `crf` from the sample tries (negative), or the prior. */
function slopeNear(tries: TargetTry[], crf: number): number {
  const sorted = [...tries].sort((a, b) => Math.abs(a.crf - crf) - Math.abs(b.crf - crf));
  const [a, b] = sorted;
  if (a && b && a.crf !== b.crf) {
    const s = (b.facePsnr - a.facePsnr) / (b.crf - a.crf);
    if (s < -0.05) return s;
  }
  return PRIOR_SLOPE_DB_PER_CRF;
}

const round1 = (v: number) => Math.round(Math.max(0, Math.min(51, v)) * 10) / 10;

/**
 * encode() with a face-quality target (matchCrf or targetFacePsnr): sample search, final encode,
 * measurement of the whole output, at most one correction. Called by encode(); options are those of
 * encode() plus FaceTargetOptions.
 */
export async function encodeToFaceTarget(input: string, output: string, options: EncodeOptions & FaceTargetOptions, target: ResolvedTarget): Promise<EncodeResult & { target: TargetOutcome }> {
  const runStarted = performance.now();
  const preset = expectOneOf('preset', options.preset ?? ENCODE_DEFAULTS.preset, X265_PRESETS);
  const strength = expectNumber('strength', options.strength ?? ENCODE_DEFAULTS.strength, 0, 4);
  // The codec's default offsets and the expert's parameters, as the final encode will have them.
  const { description: codec, expertParams, analyzeResolved, scale } = resolveEncodeOptions(options);
  const container = containerFor(output);
  const bins = resolveBinaries(options);
  const { signal, onProgress } = options;
  await checkOutputPath(output, { force: options.force, inputs: [input] });
  await requireEncoder(bins.ffmpeg, codec.encoder);
  throwIfAborted(signal);
  if (!options.plan) preloadModels(analyzeResolved);
  const info = await probeVideo(input, bins, signal);
  // With height or width every measurement is at the output's size: against the source scaled as the
  // encode scales it, with the plan's boxes moved there (scalePlan).
  const size = scale ? scaledSize(info, scale) : undefined;
  if (!size) requireEvenSize(info);
  if (!options.videoOnly) planTracks(info.tracks, container, output);

  const { plan, analysisSeconds } = await resolvePlan(info, options, analyzeResolved, bins);
  const outputPlan = size ? scalePlan(plan, size, codec.blockSize) : plan;
  /** Face quality of `distorted` (the whole video) against the source at the output's size: a scaled one is an FFV1 copy, made for this measurement alone. */
  const measureWhole = (distorted: string, measureOptions: { signal?: AbortSignal; onProgress?: ProgressListener }) =>
    size
      ? withScratchDir(async (dir) => measureFaces(await scaledSourceCopy(input, dir, size, bins, measureOptions.signal), distorted, outputPlan, bins, { ...measureOptions, pairBy: 'index' }))
      : measureFaces(input, distorted, plan, bins, { ...measureOptions, pairBy: 'index' });

  // The final encode is a plain encode() at the chosen CRF: the target options are left out.
  const rest: EncodeOptions = { ...options, matchCrf: undefined, targetFacePsnr: undefined, verifyReference: undefined };
  const finalOptions = { ...rest, plan, preset, strength, signal, crf: undefined as number | undefined };
  const seconds = { analysis: analysisSeconds, search: 0, encode: 0, measure: 0, total: 0 };
  const tries: TargetTry[] = [];
  const stretches = chooseStretches(plan);
  const kind = target.kind;

  if (stretches.length === 0) {
    // No face anywhere: a face target cannot apply. The encode runs at the reference CRF (matchCrf),
    // or at the default CRF (targetFacePsnr), with the plan as usual.
    const crf = kind === 'matchCrf' ? target.value : ENCODE_DEFAULTS.crf;
    const notice = `no faces found in ${plan.detections.length} analysed frames, so the face-quality target cannot apply: encoded at CRF ${crf} instead`;
    options.onNotice?.(notice);
    const started = performance.now();
    const result = await encodeWith(input, output, { ...finalOptions, crf, onProgress }, { info });
    seconds.encode = (performance.now() - started) / 1000;
    seconds.total = (performance.now() - runStarted) / 1000;
    return {
      ...result,
      analysisSeconds,
      roi: options.plan ? 'plan' : analyzeResolved.roi.join(','),
      target: {
        kind, applied: false, notice, ...(kind === 'matchCrf' ? { referenceCrf: target.value } : {}), targetFacePsnr: kind === 'matchCrf' ? NaN : target.value,
        crf, facePsnr: NaN, faceSsim: NaN, predicted: { facePsnr: NaN, faceSsim: NaN }, difference: NaN, tolerance: TARGET_TOLERANCE_DB, met: false, corrected: false, sourceDecodedOnce: false,
        sampleTries: 0, tries, samples: { stretches, frames: 0, share: 0 }, seconds,
      },
    };
  }

  // 1–2. Sample search.
  const searchStarted = performance.now();
  let goal = kind === 'targetFacePsnr' ? target.value : NaN;
  let referenceSample: { facePsnr: number; faceSsim: number; bytes: number } | undefined;
  const samples = samplePlans(outputPlan, stretches, info.frameTimes);
  const search = await withScratchDir(async (dir) => {
    const source = await cutSamples(input, dir, stretches, outputPlan.input, bins, signal, size);
    // Sample encodes straight from the builders: encode()'s probing and checks would cost more than
    // these short encodes themselves.
    const frameTimes = Float64Array.from({ length: samples.frames }, (_, i) => i / plan.input.frameRate);
    const filterScript = join(dir, 'samples.filter');
    // The samples keep the source's pixel format, so the encoder gets the source's bit depth.
    await writeFile(filterScript, buildRoiFilterGraph(samples.encode, { strength, frameTimes, outputLabel: 'v', bitDepth: encoderBitDepth(codec, bitDepthOf(info.pixelFormat)) }));
    const zones = zonesParam(samples.encode.zones);
    const sampleEncode = async (mode: 'roi' | 'uniform', crf: number, label: string): Promise<TargetTry> => {
      const file = join(dir, `${mode}-${crf}.mkv`);
      const progress = labelled(onProgress, label);
      const meter = new ProgressMeter('encode', samples.frames, onProgress, label);
      await run(bins.ffmpeg, buildEncodeArgs({
        input: source, output: file, container: 'mkv', crf, preset, videoOnly: true, hasSubtitles: false,
        ...(mode === 'roi' ? { filterScript, videoLabel: 'v' } : {}),
        codec: codec.encoder,
        x265Params: encoderParams(codec, { zones: mode === 'roi' ? zones : undefined, expert: expertParams }),
      }), {
        signal,
        what: 'encoding samples',
        onStdoutLine: (line) => {
          const m = /^frame=(\d+)/.exec(line);
          if (m) meter.update(Number(m[1]));
        },
      });
      const q = await measureFaces(source, file, samples.judge, bins, { signal, onProgress: progress, pairBy: 'index' });
      const { size } = await stat(file);
      return { crf, on: 'samples', mode, facePsnr: q.facePsnr, faceSsim: q.faceSsim, bytes: size };
    };
    const roiTries: TargetTry[] = [];
    // First round, side by side: the uniform reference and one ROI try at the prior guess (matchCrf),
    // or two ROI tries across the usual range (targetFacePsnr).
    const prior = kind === 'matchCrf' ? target.value + PRIOR_CRF_SHIFT_PER_FACE_QP * faceOffsetSize(plan) * strength : ENCODE_DEFAULTS.crf;
    const firstCrfs = kind === 'matchCrf' ? [round1(prior)] : [round1(prior - FIRST_SPREAD_TARGET), round1(prior + FIRST_SPREAD_TARGET)];
    const first = await Promise.all([
      ...(kind === 'matchCrf' ? [sampleEncode('uniform', target.value, `samples: uniform reference at CRF ${target.value}`)] : []),
      ...firstCrfs.map((c, i) => sampleEncode('roi', c, `samples: ROI at CRF ${c} (try ${i + 1} of at most ${MAX_SAMPLE_TRIES})`)),
    ]);
    tries.push(...first);
    roiTries.push(...first.filter((t) => t.mode === 'roi'));
    let next = prior;
    const ref = first.find((t) => t.mode === 'uniform');
    if (ref) {
      referenceSample = { facePsnr: ref.facePsnr, faceSsim: ref.faceSsim, bytes: ref.bytes };
      goal = ref.facePsnr;
      if (!Number.isFinite(goal)) throw new RoiError('TARGET_UNREACHABLE', `the uniform reference at CRF ${target.value} codes the faces losslessly on the samples (face PSNR ∞): no smaller encode can match it; use a higher matchCrf`, { option: 'matchCrf' });
    }
    for (;;) {
      if (roiTries.length) {
        const nearest = [...roiTries].sort((x, y) => Math.abs(x.facePsnr - goal) - Math.abs(y.facePsnr - goal))[0]!;
        // Unbounded estimate from the nearest try: past CRF 0 or 51, try that end directly.
        const raw = nearest.crf + (goal - nearest.facePsnr) / slopeNear(roiTries, nearest.crf);
        next = roiTries.length === 1
          ? round1(Math.max(nearest.crf - MAX_CRF_STEP, Math.min(nearest.crf + MAX_CRF_STEP, raw)))
          : crfForValue(roiTries.map((t) => ({ crf: t.crf, value: t.facePsnr })), goal, MAX_CRF_STEP);
        if (raw <= 0) next = 0;
        if (raw >= 51) next = 51;
        const above = roiTries.some((t) => t.facePsnr >= goal);
        const below = roiTries.some((t) => t.facePsnr < goal);
        const close = Math.abs(nearest.facePsnr - goal) <= (roiTries.length === 1 ? ONE_TRY_DB : SAMPLE_CLOSE_DB);
        if (close || (above && below) || roiTries.length >= MAX_SAMPLE_TRIES || roiTries.some((t) => t.crf === next)) break;
      }
      const t = await sampleEncode('roi', next, `samples: ROI at CRF ${next} (try ${roiTries.length + 1} of at most ${MAX_SAMPLE_TRIES})`);
      tries.push(t);
      roiTries.push(t);
    }
    return { roiTries, chosen: next };
  });
  seconds.search = (performance.now() - searchStarted) / 1000;
  const { roiTries } = search;
  let chosen = search.chosen;
  // Out of reach: even CRF 0 leaves the faces short of the target (on samples).
  const atZero = roiTries.find((t) => t.crf === 0);
  if (atZero && atZero.facePsnr < goal - TARGET_TOLERANCE_DB) {
    throw new RoiError('TARGET_UNREACHABLE', `face PSNR ${goal.toFixed(1)} dB is out of reach for ${input}: even CRF 0 gives its faces ${atZero.facePsnr.toFixed(1)} dB (measured on samples)`, { option: kind });
  }

  // 3. Final encode and whole-output measurement; one correction at most.
  // The output's faces are measured against the source frames the final encode decodes anyway (their
  // face regions kept in memory), so that only the output is decoded to measure it; a source that is
  // not yuv420p (4:2:2, 10-bit, full-range yuvj420p), or whose kept face regions would exceed
  // KEPT_FACE_BYTES, is decoded again instead; the figures are the same either way.
  const keepFaces = info.pixelFormat === 'yuv420p' && KeptFaces.bytesFor(outputPlan) <= KEPT_FACE_BYTES;
  const finalEncode = async (crf: number, label: string) => {
    const started = performance.now();
    // A scaled encode taps its scaled frames, which the output-size plan fits.
    const kept = keepFaces ? new KeptFaces(outputPlan) : undefined;
    const result = await encodeWith(input, output, { ...finalOptions, crf, force: finalOptions.force || tries.some((t) => t.on === 'whole'), onProgress: labelled(onProgress, label) }, {
      info,
      ...(kept ? { sourceFrames: (frames: Readable) => kept.keepAll(frames) } : {}),
    });
    seconds.encode += (performance.now() - started) / 1000;
    const measured = performance.now();
    // Either failing stops the other.
    const stop = new AbortController();
    const both = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
    const measureOptions = { signal: both, onProgress: labelled(onProgress, `${label}: measuring faces on the whole output`) };
    const [q, { bytes }] = await Promise.all([
      // The final encode passes every frame through (no frame added or dropped), so frames pair by index.
      kept ? measureKeptFaces(kept, output, bins, measureOptions) : measureWhole(output, measureOptions),
      videoStreamBytes(output, bins, both),
    ]).catch((error: unknown) => {
      stop.abort();
      throw error;
    });
    seconds.measure += (performance.now() - measured) / 1000;
    tries.push({ crf, on: 'whole', mode: 'roi', facePsnr: q.facePsnr, faceSsim: q.faceSsim, bytes });
    return { result, q, bytes };
  };
  let final = await finalEncode(chosen, `final encode at CRF ${chosen}`);

  let reference: TargetOutcome['reference'];
  let referenceWhole: { q: FaceQuality; bytes: number } | undefined;
  if (kind === 'matchCrf' && target.verifyReference) {
    referenceWhole = await withScratchDir(async (dir) => {
      const file = join(dir, 'reference.mkv');
      const label = `uniform reference at CRF ${target.value} on the whole video (verifyReference)`;
      const started = performance.now();
      await encodeWith(input, file, { roi: 'none', codec: options.codec, x265Params: options.x265Params, x264Params: options.x264Params, height: options.height, width: options.width, crf: target.value, preset, videoOnly: true, force: true, ffmpegPath: options.ffmpegPath, signal, onProgress: labelled(onProgress, label) });
      seconds.encode += (performance.now() - started) / 1000;
      const measured = performance.now();
      const q = await measureWhole(file, { signal, onProgress: labelled(onProgress, label) });
      const bytes = (await videoStreamBytes(file, bins, signal)).bytes;
      seconds.measure += (performance.now() - measured) / 1000;
      tries.push({ crf: target.value, on: 'whole', mode: 'uniform', facePsnr: q.facePsnr, faceSsim: q.faceSsim, bytes });
      return { q, bytes };
    });
  }

  /** The whole-video target: the given face PSNR, the measured reference, or the sample reference carried over by the samples' ROI−uniform difference. */
  const referenceFor = (crf: number, measuredFacePsnr: number, measuredBytes: number) => {
    if (kind !== 'matchCrf' || !referenceSample) return undefined;
    if (referenceWhole) {
      return { crf: target.value, facePsnr: referenceWhole.q.facePsnr, faceSsim: referenceWhole.q.faceSsim, bytes: referenceWhole.bytes, measuredOn: 'whole' as const, samples: referenceSample };
    }
    const predictedPsnr = predictAt(roiTries, crf, 'facePsnr');
    const predictedBytes = Math.exp(predictAt(roiTries, crf, 'logBytes'));
    return {
      crf: target.value,
      facePsnr: measuredFacePsnr + (referenceSample.facePsnr - predictedPsnr),
      faceSsim: referenceSample.faceSsim,
      bytes: measuredBytes * (referenceSample.bytes / predictedBytes),
      measuredOn: 'samples' as const,
      samples: referenceSample,
    };
  };
  reference = referenceFor(chosen, final.q.facePsnr, final.bytes);
  const goalWhole = () => (reference ? reference.facePsnr : goal);
  let corrected = false;
  // Only a shortfall is corrected (faces worse than the target); a surplus is reported, not re-encoded.
  if (final.q.facePsnr < goalWhole() - TARGET_TOLERANCE_DB) {
    const slope = slopeNear(roiTries, chosen);
    const crf = round1(Math.max(chosen - MAX_CRF_STEP, chosen + (goalWhole() - final.q.facePsnr) / slope));
    if (crf !== chosen) {
      chosen = crf;
      final = await finalEncode(crf, `corrected encode at CRF ${crf} (the first missed the target by ${(goalWhole() - final.q.facePsnr).toFixed(2)} dB)`);
      corrected = true;
      reference = referenceFor(chosen, final.q.facePsnr, final.bytes);
    }
  }
  const difference = final.q.facePsnr - goalWhole();
  const predictedSizeRatio = referenceSample ? Math.exp(predictAt(roiTries, chosen, 'logBytes')) / referenceSample.bytes : undefined;
  seconds.total = (performance.now() - runStarted) / 1000;
  return {
    ...final.result,
    analysisSeconds,
    roi: options.plan ? 'plan' : analyzeResolved.roi.join(','),
    target: {
      kind,
      applied: true,
      ...(kind === 'matchCrf' ? { referenceCrf: target.value } : {}),
      targetFacePsnr: goalWhole(),
      crf: chosen,
      facePsnr: final.q.facePsnr,
      faceSsim: final.q.faceSsim,
      ...(reference ? { reference } : {}),
      predicted: { facePsnr: predictAt(roiTries, chosen, 'facePsnr'), faceSsim: predictAt(roiTries, chosen, 'faceSsim'), ...(predictedSizeRatio !== undefined ? { sizeRatio: predictedSizeRatio } : {}) },
      ...(reference ? { sizeRatio: final.bytes / reference.bytes, sizeRatioMeasuredOn: reference.measuredOn } : {}),
      difference,
      tolerance: TARGET_TOLERANCE_DB,
      met: difference >= -TARGET_TOLERANCE_DB,
      corrected,
      sourceDecodedOnce: keepFaces,
      sampleTries: roiTries.length,
      tries,
      samples: { stretches, frames: samples.frames, share: samples.frames / plan.input.frameCount },
      seconds,
    },
  };
}
