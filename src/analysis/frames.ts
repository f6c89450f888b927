import { PassThrough, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { AbortError, RoiError } from '../media/errors.js';
import type { Binaries } from '../media/binaries.js';
import { run, type RunOptions } from '../media/process.js';
import type { VideoInfo } from '../media/probe.js';
import { rawFrames } from '../media/raw-frames.js';
import { lowerBound } from '../media/sorted.js';
import { sceneDistance, thumbnail } from './image.js';

/** One sampled frame in display orientation, RGB24, at analysis size. */
export interface SampledFrame {
  /** Index of this frame in the source (presentation order). */
  index: number;
  /** Seconds from the first frame. */
  time: number;
  width: number;
  height: number;
  rgb: Uint8Array;
  /** A grey 32×18 thumbnail of the frame (image.ts), for scene-change tests between samples. */
  thumb: Float32Array;
}

export interface SamplingPlan {
  /** Frames from one sample to the next, at most (fewer before the last frame, and between samples placed after keyframes). */
  step: number;
  /** Display-oriented analysis size. */
  width: number;
  height: number;
  /** Frame indices that will be delivered, in order: frame 0, then every `step`-th frame (or, placed after keyframes, no further apart), and the last frame. */
  indices: number[];
  /**
   * How the sampled frames are decoded: every frame of the video, or (where the probe found keyframes
   * that restart decoding, VideoInfo.keyframes) only the packets that `keep` selects.
   */
  keep?: PacketSelection;
}

/**
 * Packets an intra-only or short-GOP input needs for its samples: every `every`-th packet (every
 * frame a keyframe), or each keyframe and the `depth` packets after it; plus every packet from
 * `tailFrom` on (the last frame, decoded from the keyframe before it). Constant-length expressions
 * in video length, unlike a list of frames.
 */
export type PacketSelection = { every: number; tailFrom: number } | { depth: number; tailFrom: number };

/**
 * Short-GOP input is decoded only from each keyframe to the samples placed just after it when that
 * decodes at most this share of the frames; beyond it, one decode of every frame (which also scores
 * every frame for cuts in the same pass) costs about as much.
 */
export const MAX_GOP_DECODE_SHARE = 0.5;

/** The display size of a video (rotation applied). */
export function displaySize(info: Pick<VideoInfo, 'rotation' | 'width' | 'height'>): { width: number; height: number } {
  const swap = info.rotation === 90 || info.rotation === 270;
  return swap ? { width: info.height, height: info.width } : { width: info.width, height: info.height };
}

/**
 * Picks the sampling step from the requested rate; frames are scaled by `scale` (at most 1).
 * Sampling by frame number (not by time) keeps the mapping to source frames exact for variable
 * frame rate too; the step follows the mean rate. Where every frame is a keyframe, only the samples
 * are decoded; where keyframes restart decoding and come often enough, only the frames from each
 * keyframe to the samples after it (gopSampling).
 */
export function planSampling(info: Pick<VideoInfo, 'frameRate' | 'frameCount' | 'rotation' | 'width' | 'height' | 'keyframes'>, sampleFps: number, scale: number): SamplingPlan {
  const step = Math.max(1, Math.round(info.frameRate / sampleFps));
  const display = displaySize(info);
  const even = (v: number) => Math.max(2, 2 * Math.round((v * scale) / 2));
  const size = { width: even(display.width), height: even(display.height) };
  const last = info.frameCount - 1;
  const grid: number[] = [];
  for (let i = 0; i < info.frameCount; i += step) grid.push(i);
  // The last frame too, so the end of the clip is interpolated rather than extrapolated.
  if (grid[grid.length - 1] !== last) grid.push(last);
  const keys = info.keyframes;
  if (keys && keys.length === info.frameCount) return { step, ...size, indices: grid, keep: { every: step, tailFrom: last % step === 0 ? info.frameCount : last } };
  const gop = keys && keys.length > 1 ? gopSampling(keys, info.frameCount, step) : undefined;
  if (gop && gop.decoded <= MAX_GOP_DECODE_SHARE * info.frameCount) return { step, ...size, indices: gop.indices, keep: gop.keep };
  return { step, ...size, indices: grid };
}

/**
 * Samples for input whose keyframes restart decoding, no two more than `step` frames apart, placed
 * so that as little as possible is decoded: a keyframe is sampled where the next one (or the last
 * frame) is out of the step's reach, and where a GOP is longer than the step, the samples it still
 * needs sit as early as the step allows, so that each GOP is decoded only from its keyframe to
 * `depth` frames after it. FFV1's default GOP of 12 at a step of 8: samples at 0, 4, 12, 16, 24…,
 * 5 frames of each 12 decoded. The last GOP is decoded whole, for the last frame.
 */
export function gopSampling(keys: ArrayLike<number>, frameCount: number, step: number): { indices: number[]; keep: PacketSelection; decoded: number } {
  const last = frameCount - 1;
  const tailFrom = keys[lastAtOrBefore(keys, last)]!;
  const indices = [0];
  let depth = 0;
  for (let g = 0; g < keys.length; g++) {
    const k = keys[g]!;
    const end = g + 1 < keys.length ? keys[g + 1]! : last;
    if (end - indices[indices.length - 1]! <= step) continue;
    if (k > indices[indices.length - 1]!) indices.push(k);
    const extra: number[] = [];
    for (let s = end - step; s > indices[indices.length - 1]!; s -= step) extra.push(s);
    indices.push(...extra.reverse());
    if (extra.length > 0 && k < tailFrom) depth = Math.max(depth, extra[extra.length - 1]! - k);
  }
  if (indices[indices.length - 1] !== last) indices.push(last);
  const keep = { depth, tailFrom: tailFrom === last ? frameCount : tailFrom };
  return { indices, keep, decoded: selectedFrames(keep, { frameCount, keyframes: keys }).length };
}

/** The position of the last of ascending frame numbers `keys` at or before frame `v` (-1 if none). */
const lastAtOrBefore = (keys: ArrayLike<number>, v: number) => lowerBound(keys, v + 1) - 1;

/** The scdet chain that logs scene cuts (with their frame index among its input frames) on stderr. */
function sceneCutChain(sceneThreshold: number): string {
  // scdet scores every frame; metadata prints only cut frames.
  return `scale=160:-2,scdet=threshold=${sceneThreshold},metadata=mode=print:key=lavfi.scd.time`;
}

/** ffmpeg arguments that stream sampled frames as raw RGB on stdout and log scene cuts on stderr. */
export function samplingArgs(input: string, plan: SamplingPlan, sceneThreshold: number): string[] {
  const last = plan.indices[plan.indices.length - 1] ?? 0;
  const graph = [
    '[0:v]split=2[s][c]',
    `[s]select='not(mod(n\\,${plan.step}))+eq(n\\,${last})',scale=${plan.width}:${plan.height}:flags=area,setsar=1,format=rgb24[frames]`,
    `[c]${sceneCutChain(sceneThreshold)},nullsink`,
  ].join(';');
  return [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info',
    '-i', input,
    '-filter_complex', graph,
    '-map', '[frames]',
    '-fps_mode', 'passthrough',
    '-f', 'rawvideo', 'pipe:1',
  ];
}

/**
 * Packet selection counts frames, not packets: some containers store a frame a capture dropped as an
 * empty packet (AVI's empty chunks), which a stream copy passes on and the probe does not count. So
 * every expression first counts the non-empty packets in variable 1, keeps that count less one in
 * variable 2 as the frame number (F), and drops the empty packets.
 */
const COUNT_FRAMES = 'st(2\\,st(1\\,ld(1)+gt(size\\,0))-1)';
const F = 'ld(2)';
const selecting = (keep: string) => `${COUNT_FRAMES};not(size)+not(${keep})`;

/** The `noise` bitstream filter's expression, true for the packets to drop, of a selection (commas escaped for a -bsf list). */
export function dropExpression(keep: PacketSelection): string {
  // st(0)/ld(0) keep the last keyframe's frame number from one packet to the next.
  const head = 'every' in keep ? `not(mod(${F}\\,${keep.every}))` : `lte(${F}-st(0\\,if(key\\,${F}\\,ld(0)))\\,${keep.depth})`;
  return selecting(`${head}+gte(${F}\\,${keep.tailFrom})`);
}

/** The frame indices a selection hands the decoder, in order (the n-th non-empty packet is frame n). */
export function selectedFrames(keep: PacketSelection, info: { frameCount: number; keyframes?: ArrayLike<number> }): number[] {
  const frames: number[] = [];
  if ('every' in keep) for (let i = 0; i < keep.tailFrom; i += keep.every) frames.push(i);
  else {
    const keys: ArrayLike<number> = info.keyframes ?? [];
    for (let g = 0; g < keys.length && keys[g]! < keep.tailFrom; g++) {
      const end = Math.min(keys[g]! + keep.depth + 1, keys[g + 1] ?? Infinity, keep.tailFrom);
      for (let i = keys[g]!; i < end; i++) frames.push(i);
    }
  }
  for (let i = keep.tailFrom; i < info.frameCount; i++) frames.push(i);
  return frames;
}

/**
 * The drop expression of arbitrary frame ranges ([first, last], ascending): a binary search of
 * if(lt(F,…)) tests, so that FFmpeg parses it (a flat sum of ~100 terms is refused) and evaluates a
 * packet in log(ranges) steps.
 */
export function rangesDropExpression(ranges: [number, number][]): string {
  const leaf = ([a, b]: [number, number]) => (a === b ? `eq(${F}\\,${a})` : `between(${F}\\,${a}\\,${b})`);
  const tree = (lo: number, hi: number): string => {
    if (hi - lo === 1) return leaf(ranges[lo]!);
    const mid = (lo + hi) >> 1;
    return `if(lt(${F}\\,${ranges[mid]![0]})\\,${tree(lo, mid)}\\,${tree(mid, hi)})`;
  };
  return selecting(tree(0, ranges.length));
}

/** Ranges per ffmpeg run when searching for cuts: ~55 characters each (frame numbers up to 7 digits) keeps one argument well inside Linux's 128 KiB. */
export const RANGES_PER_RUN = 1500;

/**
 * For intra-only and short-GOP video: ffmpeg arguments that copy the first video stream's packets to
 * stdout (NUT), dropping those `drop` is true for, so the decoder behind it never sees the frames
 * analysis does not need.
 */
export function packetSelectArgs(input: string, drop: string): string[] {
  return [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error',
    '-i', input,
    '-map', '0:v:0', '-c', 'copy',
    '-bsf:v', `noise=drop=${drop}`,
    '-f', 'nut', 'pipe:1',
  ];
}

/** The filters that turn the stored picture upright, as a player would (NUT does not carry the display matrix). */
export function uprightFilters(rotation: VideoInfo['rotation']): string[] {
  return rotation === 90 ? ['transpose=clock'] : rotation === 180 ? ['hflip', 'vflip'] : rotation === 270 ? ['transpose=cclock'] : [];
}

/** ffmpeg arguments that decode packets from stdin (packetSelectArgs) into upright raw RGB frames. */
export function selectedFramesArgs(plan: SamplingPlan, rotation: VideoInfo['rotation']): string[] {
  const chain = [...uprightFilters(rotation), `scale=${plan.width}:${plan.height}:flags=area`, 'setsar=1', 'format=rgb24'].join(',');
  return [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error',
    '-noautorotate', '-f', 'nut', '-i', 'pipe:0',
    '-vf', chain,
    '-fps_mode', 'passthrough',
    '-f', 'rawvideo', 'pipe:1',
  ];
}

export interface SampleOptions {
  signal?: AbortSignal;
  sceneThreshold: number;
  onFrame: (frame: SampledFrame) => Promise<void> | void;
}

/**
 * Decoded frames waiting for analysis, at most. Two lets the decoder work on the next sample while
 * the detector is busy with this one (ffmpeg and the models each get a core) and keeps memory at a
 * few frames whatever the length.
 */
export const FRAME_QUEUE_BOUND = 2;

/**
 * Between two samples of intra-only or short-GOP video whose cut score (cutScore) is above this
 * (0–255), the frames in between are decoded to look for a cut. Low on purpose: a missed cut costs
 * more than a short decode, and a cut that scdet would find changes the thumbnail far more.
 */
export const CUT_CANDIDATE_CHANGE = 6;

/**
 * How much the difference between two samples' thumbnails (image.ts sceneDistance: camera motion
 * allowed for) looks like a cut: scdet's own score, the smaller of the difference and its change
 * from the previous pair of samples. Steady motion keeps the difference even (between keyframes 12
 * frames apart: the dev composite's zoom and moving faces 5.1–7.2, changing by at most 1.1; the fast
 * pan 8.4–13.9, by at most 4.2), a cut makes it jump (58 in the test clips). Two cuts in consecutive
 * stretches would hide the second: the price of not decoding every frame.
 */
export function cutScore(difference: number, previousDifference: number): number {
  return Math.min(difference, Math.abs(difference - previousDifference));
}

export interface SampleResult {
  /** Frame indices at which scene cuts start. */
  cuts: number[];
  /** Seconds the analysis waited for the decoder (the share of decoding not hidden behind detection). */
  decodeWaitSeconds: number;
  /** The most frames that were ever waiting in the queue (never more than FRAME_QUEUE_BOUND). */
  maxQueued: number;
  /** Frames decoded for analysis: all of them, or for intra-only and short-GOP video the samples (and keyframes) and the stretches searched for cuts. */
  decodedFrames: number;
}

/**
 * Decodes the input once and hands each sampled frame to `onFrame`, one at a time and in order.
 * A bounded queue sits between the decoder and `onFrame`: ffmpeg decodes ahead by up to
 * FRAME_QUEUE_BOUND sampled frames while a frame is analysed, then is paused by backpressure, so
 * decoding and detection overlap and memory stays flat in video length.
 *
 * Scene cuts: for most video every frame has to be decoded anyway (frames depend on each other),
 * and scdet scores each one on a second branch of the same filtergraph. Intra-only video (FFV1,
 * ProRes, MJPEG…) is decoded only at the samples, and short-GOP video whose keyframes restart
 * decoding (FFV1 with a GOP, VP8, VP9) only from each keyframe to the samples after it
 * (planSampling); where two consecutive samples differ enough to hide a cut (cutScore), the frames
 * between them are decoded afterwards and scored by scdet.
 */
export async function sampleFrames(info: VideoInfo, plan: SamplingPlan, bins: Binaries, options: SampleOptions): Promise<SampleResult> {
  const frameBytes = plan.width * plan.height * 3;
  const queue: SampledFrame[] = [];
  let delivered = 0;
  let decoded = 0;
  let maxQueued = 0;
  let decodeWait = 0;
  let decoderDone = false;
  let wakeAnalysis: (() => void) | undefined;
  let wakeDecoder: (() => void) | undefined;
  const wake = (which: 'analysis' | 'decoder') => {
    const fn = which === 'analysis' ? wakeAnalysis : wakeDecoder;
    if (which === 'analysis') wakeAnalysis = undefined;
    else wakeDecoder = undefined;
    fn?.();
  };
  // Stops ffmpeg when the analysis fails, so the error surfaces at once instead of after the decode.
  const stopDecoder = new AbortController();
  const onOuterAbort = () => stopDecoder.abort();
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });

  // Packet-selected input: samples whose thumbnail differs enough from the previous sample's to hide a cut.
  const cutCandidates: [number, number][] = [];
  let previous: SampledFrame | undefined;
  let previousDifference = 0;
  const analysis = (async () => {
    while (!stopDecoder.signal.aborted) {
      const frame = queue.shift();
      if (!frame) {
        if (decoderDone) return;
        const waitStarted = performance.now();
        await new Promise<void>((resolve) => (wakeAnalysis = resolve));
        decodeWait += performance.now() - waitStarted;
        continue;
      }
      wake('decoder');
      if (previous && frame.index - previous.index > 1) {
        const difference = sceneDistance(frame.thumb, previous.thumb);
        if (cutScore(difference, previousDifference) > CUT_CANDIDATE_CHANGE) cutCandidates.push([previous.index, frame.index]);
        previousDifference = difference;
      }
      previous = frame;
      await options.onFrame(frame);
      delivered++;
    }
  })();
  analysis.catch(() => {
    stopDecoder.abort();
    wake('decoder');
  });

  // The frames the decoder outputs, in order: the samples, or all the packet selection keeps (for
  // short GOPs also the frames from a keyframe to its samples and the last GOP, which are skipped here).
  const order = plan.keep ? selectedFrames(plan.keep, info) : undefined;
  let next = 0;
  const consume = async (stdout: Readable) => {
    for await (const rgb of rawFrames(stdout, frameBytes)) {
      const position = decoded++;
      const index = order ? order[position] : plan.indices[position];
      if (index === undefined) throw new RoiError('DECODE_MISMATCH', `decoder produced more frames than the ${info.frameCount} probed in ${info.path}`);
      if (index !== plan.indices[next]) continue;
      next++;
      // Backpressure: while the queue is full, stdout is not read and ffmpeg blocks on the pipe.
      while (queue.length >= FRAME_QUEUE_BOUND && !stopDecoder.signal.aborted) await new Promise<void>((resolve) => (wakeDecoder = resolve));
      if (stopDecoder.signal.aborted) return;
      const frame = { rgb, width: plan.width, height: plan.height };
      queue.push({ index, time: info.frameTimes[index]!, ...frame, thumb: thumbnail(frame) });
      maxQueued = Math.max(maxQueued, queue.length);
      wake('analysis');
    }
  };
  const cuts: number[] = [];
  let decodeError: unknown;
  try {
    if (plan.keep) {
      await decodeSelected(info, bins, stopDecoder.signal, dropExpression(plan.keep), selectedFramesArgs(plan, info.rotation), { consumeStdout: consume });
    } else {
      await run(bins.ffmpeg, samplingArgs(info.path, plan, options.sceneThreshold), {
        signal: stopDecoder.signal,
        what: 'decoding frames for analysis',
        consumeStdout: consume,
        onStderrLine: (line) => {
          const cut = cutLine(line);
          if (cut !== undefined) cuts.push(cut);
        },
      });
    }
  } catch (error) {
    decodeError = error;
  } finally {
    options.signal?.removeEventListener('abort', onOuterAbort);
    decoderDone = true;
    wake('analysis');
  }
  if (decodeError) {
    // The analysis's own failure explains a stopped decoder better than the stop does.
    await analysis.catch((error: unknown) => {
      if (!options.signal?.aborted) throw error;
    });
    if (options.signal?.aborted) throw new AbortError();
    throw decodeError;
  }
  await analysis;
  if (delivered < plan.indices.length) {
    throw new RoiError('INPUT_TRUNCATED', `input is truncated or corrupt: decoded only ${delivered} of ${plan.indices.length} sampled frames of ${info.path}`);
  }
  let decodedFrames = plan.keep ? decoded : info.frameCount;
  if (plan.keep && cutCandidates.length > 0) {
    const found = await findCuts(info, bins, options.signal, cutCandidates, options.sceneThreshold);
    cuts.push(...found.cuts);
    decodedFrames += found.decoded;
  }
  return { cuts: [...new Set(cuts)].filter((c) => c > 0 && c < info.frameCount).sort((a, b) => a - b), decodeWaitSeconds: decodeWait / 1000, maxQueued, decodedFrames };
}

/** The frame index of a cut that scdet's metadata printer logged, if the line is one. */
function cutLine(line: string): number | undefined {
  const match = /\bframe:(\d+)\s+pts:/.exec(line);
  return match && line.includes('metadata') ? Number(match[1]) : undefined;
}

/** Stretches of frames ([first, last], in order of their first frames) merged where they overlap or touch. */
export function mergeStretches(stretches: [number, number][]): [number, number][] {
  const ranges: [number, number][] = [];
  for (const [a, b] of stretches) {
    const last = ranges[ranges.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else ranges.push([a, b]);
  }
  return ranges;
}

/**
 * Decodes only the packets `drop` keeps of an intra-only or short-GOP input: one ffmpeg copies those
 * packets, a second decodes them with `decodeArgs`. Either failing stops both; the decoder's error is
 * the one reported when both fail, since the copier then only lost its reader.
 */
async function decodeSelected(info: VideoInfo, bins: Binaries, signal: AbortSignal, drop: string, decodeArgs: string[], decode: Pick<RunOptions, 'consumeStdout' | 'onStderrLine'>): Promise<void> {
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  const packets = new PassThrough();
  const copier = run(bins.ffmpeg, packetSelectArgs(info.path, drop), {
    signal: stop.signal,
    what: 'selecting frames for analysis',
    consumeStdout: async (stdout) => {
      stdout.pipe(packets);
      await finished(stdout);
    },
  });
  const decoder = run(bins.ffmpeg, decodeArgs, { ...decode, signal: stop.signal, stdin: packets, what: 'decoding frames for analysis' });
  const [copied, decoded] = await Promise.allSettled([
    copier.finally(() => packets.end()),
    decoder.catch((error: unknown) => {
      stop.abort();
      throw error;
    }),
  ]);
  signal.removeEventListener('abort', onAbort);
  if (signal.aborted) throw new AbortError();
  if (decoded.status === 'rejected') throw decoded.reason;
  if (copied.status === 'rejected') throw copied.reason;
}

/**
 * Scene cuts inside the given stretches ([sample, next sample]) of an intra-only or short-GOP input:
 * the frames of each stretch are decoded at low resolution and scored by scdet. The first frame of
 * each stretch is only the reference for the next one (its own score compares it with whatever was
 * decoded before it).
 */
async function findCuts(info: VideoInfo, bins: Binaries, signal: AbortSignal | undefined, stretches: [number, number][], sceneThreshold: number): Promise<{ cuts: number[]; decoded: number }> {
  // A stretch that starts between keyframes is decoded from the keyframe before it; only its own frames are scored.
  const keys = info.keyframes ?? [];
  const ranges = mergeStretches(stretches.map(([a, b]) => [keys[lastAtOrBefore(keys, a)] ?? a, b]));
  const scored = new Set(stretches.flatMap(([a, b]) => Array.from({ length: b - a }, (_, i) => a + 1 + i)));
  const cuts: number[] = [];
  let decoded = 0;
  const args = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info', '-f', 'nut', '-i', 'pipe:0', '-vf', sceneCutChain(sceneThreshold), '-f', 'null', '-'];
  for (let first = 0; first < ranges.length; first += RANGES_PER_RUN) {
    const batch = ranges.slice(first, first + RANGES_PER_RUN);
    const order = batch.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i));
    await decodeSelected(info, bins, signal ?? new AbortController().signal, rangesDropExpression(batch), args, {
      onStderrLine: (line) => {
        const n = cutLine(line);
        const frame = n === undefined ? undefined : order[n];
        if (frame !== undefined && scored.has(frame)) cuts.push(frame);
      },
    });
    decoded += order.length;
  }
  return { cuts, decoded };
}
