import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { analyzeProbed, preloadModels, resolveAnalyzeOptions, type AnalyzeOptions } from '../analysis/analyze.js';
import { ProcessError, RoiError, throwIfAborted } from '../media/errors.js';
import { requireEncoder, resolveBinaries, type Binaries } from '../media/binaries.js';
import { checkOutputPath, withScratchDir, writeAtomically } from '../media/output-file.js';
import { quoteCommand, run } from '../media/process.js';
import { probeVideo, videoStreamBytes, type VideoInfo } from '../media/probe.js';
import { readPlan, validatePlan, type Plan } from '../plan/plan.js';
import { ProgressMeter } from '../media/progress.js';
import { expectNumber, expectOneOf } from '../media/validate.js';
import { buildEncodeArgs, containerFor, ENCODE_DEFAULTS, planTracks, X265_PRESETS, type Container, type TrackPlan, type X265Preset } from './argv.js';
import { buildVideoGraph, zonesParam } from './filtergraph.js';
import { resolveScale, scaledSize, type PictureSize } from './scale.js';
import { CODECS, codecFor, encoderBitDepth, encoderParams, X265, type CodecDescription } from './codec.js';
import { resolveEncoderParams } from './encoder-params.js';
import { applyAudioChoice, parseAudio } from './audio.js';
import { runPasses } from './passes.js';
import { ratePass, resolveRateControl, type RatePass, type RateControlOptions } from './rate-control.js';
import { carriedStreams, sizeBudget, type SizeBudget } from './target-size.js';
import { probePictureFormat, type PictureFormat } from '../media/hdr.js';
import { hdrParams, refuseUnsupportedHdr } from './hdr.js';

/**
 * The encode stage: one ffmpeg/x265 run on this machine from a plan (or uniform). The public
 * encode() (src/runners/encode.ts) adds what sits above the stage: a face-quality target
 * (src/strategies) and encoding across machines (src/distributed).
 */
export interface LocalEncodeOptions extends Omit<AnalyzeOptions, 'roi'>, Omit<RateControlOptions, 'crf' | 'matchCrf' | 'targetFacePsnr'> {
  /**
   * What to spend bits on: 'faces' (default), 'saliency', or 'faces,saliency'. 'none' is the uniform
   * encode with otherwise identical settings.
   */
  roi?: 'faces' | 'saliency' | 'faces,saliency' | 'none' | string;
  /** A plan from analyze() or `roi-encode analyze`, instead of a fresh analysis. */
  plan?: Plan | string;
  /**
   * x265 constant rate factor 0–51 (fractions allowed, as x265 takes them). Default 28, unless
   * bitrate or targetSize is given (two-pass, no CRF; see docs/rate-control.md).
   */
  crf?: number;
  /**
   * The audio: 'copy' (default), or 'aac:128k' / 'opus:96k' to encode every audio track at that
   * bitrate (counted exactly in a targetSize; docs/rate-control.md).
   */
  audio?: string;
  /** x265 preset. Default medium. */
  preset?: X265Preset | string;
  /** Scales every QP offset of the plan: 0 = uniform, 1 = as planned (default), 2 = twice as strong. */
  strength?: number;
  /** Overwrite an existing output. */
  force?: boolean;
  /**
   * Output height in pixels (even, 16 up to the source's): the picture is scaled down with lanczos,
   * its aspect ratio kept, the width rounded to even. The plan is made on the source, and its regions
   * are moved to the output's blocks. Sizes are the stored picture's (a rotated phone video's
   * `height: 720` is its 720p). Not with `width`.
   */
  height?: number;
  /** Output width in pixels, as `height` (the height then follows). */
  width?: number;
  /**
   * 'x265' (HEVC, default) or 'x264' (H.264 High: what browsers play). ROI works with either; the
   * plan's default offsets are the codec's (src/encode/codec.ts).
   */
  codec?: 'x265' | 'x264';
  /**
   * Expert x265 parameters, passed to libx265 as given ('key=value:key=value' or an object). Refused:
   * the keys roi-encoder sets (crf, qp, bitrate, pass, stats, zones, VBV with the rate options) and
   * those that silently drop the ROI (aq-mode=0, hevc-aq).
   */
  x265Params?: string | Record<string, string | number | boolean>;
  /** Expert x264 parameters for codec 'x264', refused as x265Params are (aq-mode=0). */
  x264Params?: string | Record<string, string | number | boolean>;
  /**
   * Leave out audio and subtitles (default false: they are copied). Comparisons use it, so that
   * sizes and bitrates measure the video alone.
   */
  videoOnly?: boolean;
}

export interface LocalEncodeResult {
  output: string;
  bytes: number;
  bitrateKbps: number;
  /** Wall time of the encode itself, and of the analysis (0 with a given plan or roi 'none'). */
  encodeSeconds: number;
  analysisSeconds: number;
  frames: number;
  durationSeconds: number;
  /** The output picture's size in pixels (stored, before any display rotation): the source's, or the scaled one with height or width. */
  width: number;
  height: number;
  /** With height or width: the source's size the output was scaled from (absent when not scaled). */
  scaledFrom?: PictureSize;
  /** 'none', or what the analysis looked for ('faces', 'faces,saliency', …; 'plan' for a given plan). */
  roi: string;
  codec: 'x265' | 'x264';
  /** The CRF encoded at; absent for a two-pass encode to a bitrate or size. */
  crf?: number;
  /** The video stream's own bitrate (its packets, without audio or container), kbit/s over the input's duration. */
  videoBitrateKbps: number;
  /** Encoder runs: 1 for CRF, 2 for two-pass, 3 (rarely 4) when a size needed correcting. */
  passes: number;
  /** With targetSize: the size asked for, in bytes (`bytes` is what came out). */
  targetBytes?: number;
  /** With targetSize, when the file came out under the window: why (the encoder could not spend more). */
  sizeShortfall?: string;
  /** With bitrate or targetSize: the video bitrate the last pass asked of x265, kbit/s. */
  requestedBitrateKbps?: number;
  preset: X265Preset;
  strength: number;
  /** The expert parameters passed to the encoder (x265Params or x264Params), as given; {} for none. */
  encoderParams: Record<string, string>;
  /** The plan used; undefined for roi 'none'. */
  plan?: Plan;
  /** The output's bit depth, colour description and HDR metadata, as probed on the written file. */
  picture?: PictureFormat;
  /** The ffmpeg command line that made the file (its temporary paths included), for reports. */
  command?: string;
}

export { ENCODE_DEFAULTS };

/** x265 settings shared by ROI and uniform encodes (codec.ts: X265.baseParams), with the plan's zones. */
export function x265Params(zones: string | undefined): Record<string, string | number> {
  return encoderParams(X265, { zones });
}

/** libx265 refuses pictures smaller than this in either direction ("Image size is too small"). */
export const X265_MIN_SIZE = 16;

/**
 * 4:2:0 needs even sizes, and libx265 at least 16x16; checked before any analysis so nobody waits
 * for a certain failure.
 */
export function requireEvenSize(info: VideoInfo): void {
  if (info.width < X265_MIN_SIZE || info.height < X265_MIN_SIZE) {
    throw new RoiError('TOO_SMALL', `${info.path} is ${info.width}x${info.height}, too small to encode: x265 needs at least ${X265_MIN_SIZE}x${X265_MIN_SIZE} pixels`);
  }
  if (info.width % 2 || info.height % 2) {
    throw new RoiError('ODD_SIZE', `x265 needs even dimensions for 4:2:0 video, but ${info.path} is ${info.width}x${info.height}; crop or pad it first`);
  }
}

/** ffmpeg's words for a stream the output container cannot hold, turned into what to do about it. */
function explainEncodeFailure(error: unknown, output: string): unknown {
  if (!(error instanceof ProcessError)) return error;
  const tail = error.stderrTail;
  const codec = /Could not find tag for codec (\S+)|(\S+) only supported in MP4|(\S+) in MP4 support is experimental|codec (\S+) is not supported/i.exec(tail);
  if (codec) {
    const name = codec.slice(1).find(Boolean)!;
    return new RoiError('UNSUPPORTED_STREAM', `the input has a ${name} stream, which ${output} cannot hold; write .mkv instead, which keeps it as it is`, { cause: error });
  }
  if (/Subtitle encoding currently only possible from text to text or bitmap to bitmap/.test(tail)) {
    return new RoiError('UNSUPPORTED_STREAM', `the input has bitmap subtitles, which ${output} cannot hold; write .mkv instead, which keeps them as they are`, { cause: error });
  }
  return error;
}

function checkPlanFits(plan: Plan, info: VideoInfo, source: string): void {
  const p = plan.input;
  if (p.width !== info.width || p.height !== info.height || p.frameCount !== info.frameCount) {
    throw new RoiError('PLAN_MISMATCH', `plan ${source} is for a ${p.width}x${p.height} video of ${p.frameCount} frames, but ${info.path} is ${info.width}x${info.height} with ${info.frameCount} frames`);
  }
}

/**
 * What every encode result says of its output: the size of `file` (where it was written; `output`
 * is the name reported), the bitrate over the input's duration, the video stream's own bitrate (its
 * packets), how many x265 passes made it (one, unless the caller ran more), and its picture size
 * (the source's, or `scaled` and the size it was scaled from).
 */
export async function outputFacts(
  file: string,
  output: string,
  info: VideoInfo,
  bins: Binaries = resolveBinaries(),
  passes = 1,
  scaled?: PictureSize,
): Promise<Pick<LocalEncodeResult, 'output' | 'bytes' | 'bitrateKbps' | 'videoBitrateKbps' | 'passes' | 'frames' | 'durationSeconds' | 'width' | 'height' | 'scaledFrom'>> {
  const { size } = await stat(file);
  const video = await videoStreamBytes(file, bins);
  const kbps = (bytes: number) => (bytes * 8) / 1000 / info.durationSeconds;
  const picture = scaled ?? info;
  return {
    output, bytes: size, bitrateKbps: kbps(size), videoBitrateKbps: kbps(video.bytes), passes, frames: info.frameCount, durationSeconds: info.durationSeconds,
    width: picture.width, height: picture.height, ...(scaled ? { scaledFrom: { width: info.width, height: info.height } } : {}),
  };
}

/** The plan an encode uses: the one given (checked against the input), or a fresh analysis. */
export async function resolvePlan(
  info: VideoInfo,
  options: Pick<LocalEncodeOptions, 'plan' | 'signal' | 'onProgress'>,
  analyzeResolved: ReturnType<typeof resolveAnalyzeOptions>,
  bins: ReturnType<typeof resolveBinaries>,
): Promise<{ plan: Plan; analysisSeconds: number }> {
  if (typeof options.plan === 'string') {
    const plan = await readPlan(options.plan);
    checkPlanFits(plan, info, options.plan);
    return { plan, analysisSeconds: 0 };
  }
  if (options.plan) {
    const plan = validatePlan(options.plan);
    checkPlanFits(plan, info, '(given)');
    return { plan, analysisSeconds: 0 };
  }
  const started = performance.now();
  const plan = await analyzeProbed(info, analyzeResolved, bins, options);
  return { plan, analysisSeconds: (performance.now() - started) / 1000 };
}

/** What the face-quality target adds to its final encodes; not among the public options. */
export interface EncodeHooks {
  /** The input, probed already: not probed again. */
  info?: VideoInfo;
  /**
   * Reads the decoded source frames (raw yuv420p, each frame in order) while the encode runs
   * (EncodeArgs.sourceTap); scaled to the output's size when the output is. For yuv420p inputs only.
   */
  sourceFrames?: (frames: Readable) => Promise<void>;
}

export function resolveEncodeOptions(options: LocalEncodeOptions) {
  const codec = expectOneOf('codec', options.codec ?? 'x265', CODECS);
  const description: CodecDescription = codecFor(codec);
  const uniform = (options.roi ?? 'faces') === 'none';
  const rate = resolveRateControl(options, ENCODE_DEFAULTS.crf);
  // `crf` is the CRF of a CRF encode; two-pass modes have none (`rate` says what they aim at): the
  // default stands in where a field needs a number (a distributed chunk job carrying a rate ignores it).
  const crf = rate.mode === 'crf' ? rate.crf : ENCODE_DEFAULTS.crf;
  const preset = expectOneOf('preset', options.preset ?? ENCODE_DEFAULTS.preset, X265_PRESETS);
  const strength = expectNumber('strength', options.strength ?? ENCODE_DEFAULTS.strength, 0, 4);
  const expertParams = resolveEncoderParams(description, options, { vbvOwned: rate.vbv !== undefined });
  const analyzeResolved = resolveAnalyzeOptions({ ...codecAnalyzeOptions(description, options), roi: uniform ? 'faces' : options.roi });
  const audio = parseAudio(options.audio);
  const scale = resolveScale(options);
  return { codec, description, uniform, crf, rate, audio, preset, strength, expertParams, analyzeResolved, scale };
}

export type ResolvedEncodeOptions = ReturnType<typeof resolveEncodeOptions>;

/** The analysis options with the codec's default offsets where none are given (a given plan's stand). */
export function codecAnalyzeOptions<T extends object>(description: CodecDescription, options: T): Partial<T> {
  return { ...description.defaultOffsets, ...withoutUndefined(options) };
}

/** The options that are set (a spread of `{ faceQpOffset: undefined }` would hide a default). */
function withoutUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** What every encode, local or distributed, has settled before it spends any time on frames. */
export interface PreparedEncode {
  input: string;
  output: string;
  resolved: ResolvedEncodeOptions;
  container: Container;
  bins: Binaries;
  info: VideoInfo;
  tracks: TrackPlan[];
  plan?: Plan;
  analysisSeconds: number;
  /** With targetSize: the video's share of it, settled before the analysis. */
  budget?: SizeBudget;
  /** The source's bit depth, colour and HDR metadata (src/media/hdr.ts). */
  picture: PictureFormat;
  /** With height or width: the output's size (undefined when it is the source's, so nothing is scaled). */
  size?: PictureSize;
}

/**
 * The checks and inputs of an encode, in the order that fails fastest: options, output path,
 * encoder, probe, size, streams the output cannot hold, then the plan (a given one, or a fresh
 * analysis unless `analyseHere` is false: a distributed encode analyses on a worker).
 */
export async function prepareEncode(input: string, output: string, options: LocalEncodeOptions, hooks: EncodeHooks = {}, analyseHere = true): Promise<PreparedEncode> {
  const resolved = resolveEncodeOptions(options);
  const { uniform, analyzeResolved } = resolved;
  const container = containerFor(output);
  const bins = resolveBinaries(options);
  const { signal } = options;
  await checkOutputPath(output, { force: options.force, inputs: [input] });
  await requireEncoder(bins.ffmpeg, resolved.description.encoder);
  throwIfAborted(signal);
  // The face models load while the input is probed.
  if (!uniform && !options.plan && analyseHere) preloadModels(analyzeResolved);
  const [info, picture] = await Promise.all([hooks.info ?? probeVideo(input, bins, signal), probePictureFormat(input, bins, signal)]);
  // A scaled output is even whatever the source is; otherwise the source's own size is encoded.
  const size = resolved.scale ? scaledSize(info, resolved.scale) : undefined;
  if (!size) requireEvenSize(info);
  refuseUnsupportedHdr(resolved.description, picture);
  if (hooks.sourceFrames && info.pixelFormat !== 'yuv420p') throw new Error(`sourceFrames needs a yuv420p input, not ${info.pixelFormat}`);
  // Streams the output cannot hold are refused now, not after the analysis.
  const tracks = options.videoOnly ? [] : applyAudioChoice(planTracks(info.tracks, container, output), resolved.audio, container, output);
  // A size the audio fills, or that leaves the video too little, is refused before the analysis.
  const { rate } = resolved;
  const budget = rate.mode === 'size' ? sizeBudget(rate.targetBytes, info, container, await carriedStreams(input, tracks, bins, signal), rate.vbv) : undefined;
  let plan: Plan | undefined;
  let analysisSeconds = 0;
  if (!uniform && (options.plan || analyseHere)) ({ plan, analysisSeconds } = await resolvePlan(info, options, analyzeResolved, bins));
  return { input, output, resolved, container, bins, info, tracks, plan, analysisSeconds, budget, picture, size };
}

/**
 * The encode stage on this machine: the ffmpeg runs its rate control needs (one for CRF, two or three
 * for a bitrate or size: ./passes.ts) from the prepared plan, written atomically.
 */
export async function encodeLocal(prepared: PreparedEncode, options: LocalEncodeOptions, hooks: EncodeHooks = {}): Promise<LocalEncodeResult> {
  const { input, output, container, bins, info, tracks, plan, analysisSeconds, budget, size } = prepared;
  const { description, codec, uniform, crf, rate, preset, strength, expertParams, analyzeResolved } = prepared.resolved;
  const { signal } = options;
  const started = performance.now();
  let command: string | undefined;
  const outcome = await withScratchDir(async (dir) => {
    let filterScript: string | undefined;
    // A scaled encode's tap reads the scaled frames (the face-quality target measures at the output's size).
    const tapLabel = hooks.sourceFrames && size ? 'tap' : undefined;
    const graph = buildVideoGraph(plan, { strength, frameTimes: info.frameTimes, outputLabel: 'v', size, blockSize: description.blockSize, tapLabel, bitDepth: encoderBitDepth(description, prepared.picture.bitDepth) });
    if (graph) {
      filterScript = join(dir, 'roi.filter');
      await writeFile(filterScript, graph);
    }
    return writeAtomically(output, (temp) => {
      const args = (out: string, ratePass: RatePass) =>
        buildEncodeArgs({
          input,
          output: out,
          container,
          filterScript,
          videoLabel: 'v',
          codec: description.encoder,
          crf,
          rate: ratePass,
          preset,
          x265Params: encoderParams(description, { zones: plan ? zonesParam(plan.zones) : undefined, extra: hdrParams(description, prepared.picture), expert: expertParams }),
          hasSubtitles: info.streams.subtitle > 0,
          tracks,
          encTimeBase: info.timeBase,
          videoOnly: options.videoOnly,
          sourceTap: hooks.sourceFrames !== undefined,
          tapLabel,
        });
      const runPass = async (passArgs: string[], label: string | undefined) => {
        const meter = new ProgressMeter('encode', info.frameCount, options.onProgress, label);
        const warnings: string[] = [];
        // Only CRF encodes tap the source (a face-quality target refuses a bitrate or size): one pass.
        const tap = hooks.sourceFrames;
        await run(bins.ffmpeg, passArgs, {
          signal,
          what: label ? `encoding (${label})` : 'encoding',
          ...(tap ? { consumeFd3: tap } : {}),
          onStdoutLine: (line) => {
            const m = /^frame=(\d+)/.exec(line);
            if (m) meter.update(Number(m[1]));
          },
          onStderrLine: (line) => {
            if (/skipping ROI/i.test(line)) warnings.push(line.trim());
          },
        }).catch((error: unknown) => {
          throw explainEncodeFailure(error, output);
        });
        if (warnings.length) {
          throw new RoiError('ROI_SKIPPED', `${description.name} ignored the ROI offsets (${warnings[0]}); check that aq-mode is not 0`);
        }
        meter.update(info.frameCount);
      };
      // Plain names: x265's option string cannot quote ':' or ',' (mkdtemp's suffix has neither).
      const stats = join(dir, 'x265-2pass.log');
      return runPasses(rate, budget, temp, {
        run: async (out, spec, label) => {
          const passArgs = args(out, ratePass(spec, spec.pass ? { number: spec.pass, stats } : undefined));
          await runPass(passArgs, label);
          return passArgs;
        },
        videoBytes: async (file) => (await videoStreamBytes(file, bins, signal)).bytes,
      }).then((o) => {
        command = quoteCommand(bins.ffmpeg, o.args);
        return o;
      });
    });
  });
  const encodeSeconds = (performance.now() - started) / 1000;
  return {
    ...(await outputFacts(output, output, info, bins, outcome.passes, size)),
    encodeSeconds,
    analysisSeconds,
    roi: uniform ? 'none' : options.plan ? 'plan' : analyzeResolved.roi.join(','),
    codec,
    ...(rate.mode === 'crf' ? { crf } : {}),
    ...(rate.mode === 'size' ? { targetBytes: rate.targetBytes } : {}),
    ...(outcome.sizeShortfall ? { sizeShortfall: outcome.sizeShortfall } : {}),
    ...(outcome.bitrate !== undefined ? { requestedBitrateKbps: outcome.bitrate / 1000 } : {}),
    preset,
    strength,
    encoderParams: expertParams,
    plan,
    picture: await probePictureFormat(output, bins, signal),
    command,
  };
}
