import { PassThrough, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { AbortError, RoiError } from '../errors.js';
import type { Binaries } from '../media/binaries.js';
import { run, type RunOptions } from '../media/process.js';
import type { VideoInfo } from '../media/probe.js';
import { rawFrames } from '../media/raw-frames.js';
import { meanAbsDiff, thumbnail } from './image.js';

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
  /** Every `step`-th frame is sampled, starting at frame 0, and the last frame too. */
  step: number;
  /** Display-oriented analysis size. */
  width: number;
  height: number;
  /** Frame indices that will be delivered, in order. */
  indices: number[];
}

/** The display size of a video (rotation applied). */
export function displaySize(info: VideoInfo): { width: number; height: number } {
  const swap = info.rotation === 90 || info.rotation === 270;
  return swap ? { width: info.height, height: info.width } : { width: info.width, height: info.height };
}

/**
 * Picks the sampling step from the requested rate; frames are scaled by `scale` (at most 1).
 * Sampling by frame number (not by time) keeps the mapping to source frames exact for variable
 * frame rate too; the step follows the mean rate.
 */
export function planSampling(info: VideoInfo, sampleFps: number, scale: number): SamplingPlan {
  const step = Math.max(1, Math.round(info.frameRate / sampleFps));
  const display = displaySize(info);
  const even = (v: number) => Math.max(2, 2 * Math.round((v * scale) / 2));
  const indices: number[] = [];
  for (let i = 0; i < info.frameCount; i += step) indices.push(i);
  // The last frame too, so the end of the clip is interpolated rather than extrapolated.
  if (indices[indices.length - 1] !== info.frameCount - 1) indices.push(info.frameCount - 1);
  return { step, width: even(display.width), height: even(display.height), indices };
}

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

/** A `noise` bitstream-filter expression true for packets to drop: all but those in `ranges` ([first, last], by packet number). */
export function dropExpression(ranges: [number, number][]): string {
  const keep = ranges.map(([a, b]) => (a === b ? `eq(n\\,${a})` : `between(n\\,${a}\\,${b})`)).join('+');
  return `not(${keep})`;
}

/**
 * For intra-only video: ffmpeg arguments that copy the first video stream's packets to stdout (NUT),
 * dropping every packet outside `ranges`, so the decoder behind it never sees the frames analysis
 * does not need. In an intra-only stream packet n is frame n, and every packet decodes on its own.
 */
export function packetSelectArgs(input: string, ranges: [number, number][]): string[] {
  return [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error',
    '-i', input,
    '-map', '0:v:0', '-c', 'copy',
    '-bsf:v', `noise=drop=${dropExpression(ranges)}`,
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
 * Between two samples of intra-only video whose thumbnails differ by more than this (0–255), the
 * frames in between are decoded to look for a cut. Low on purpose: a missed cut costs more than a
 * short decode, and a cut that scdet would find changes the thumbnail far more.
 */
export const CUT_CANDIDATE_CHANGE = 6;

export interface SampleResult {
  /** Frame indices at which scene cuts start. */
  cuts: number[];
  /** Seconds the analysis waited for the decoder (the share of decoding not hidden behind detection). */
  decodeWaitSeconds: number;
  /** The most frames that were ever waiting in the queue (never more than FRAME_QUEUE_BOUND). */
  maxQueued: number;
  /** Frames decoded for analysis: all of them, or for intra-only video the samples and the stretches searched for cuts. */
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
 * ProRes, MJPEG…) is decoded only at the samples; where two consecutive samples differ enough to
 * hide a cut, the frames between them are decoded afterwards and scored by scdet.
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

  // Intra-only: samples whose thumbnail differs enough from the previous sample's to hide a cut.
  const cutCandidates: [number, number][] = [];
  let previous: SampledFrame | undefined;
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
      if (previous && frame.index - previous.index > 1 && meanAbsDiff(frame.thumb, previous.thumb) > CUT_CANDIDATE_CHANGE) {
        cutCandidates.push([previous.index, frame.index]);
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

  const consume = async (stdout: Readable) => {
    for await (const rgb of rawFrames(stdout, frameBytes)) {
      const index = plan.indices[decoded];
      if (index === undefined) throw new RoiError('DECODE_MISMATCH', `decoder produced more frames than the ${info.frameCount} probed in ${info.path}`);
      decoded++;
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
    if (info.intraOnly) {
      await decodeSelected(info, bins, stopDecoder.signal, packetRanges(plan.indices), selectedFramesArgs(plan, info.rotation), { consumeStdout: consume });
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
  let decodedFrames = info.intraOnly ? decoded : info.frameCount;
  if (info.intraOnly && cutCandidates.length > 0) {
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

/** Consecutive runs of frame indices as [first, last] ranges. */
export function packetRanges(indices: number[]): [number, number][] {
  const ranges: [number, number][] = [];
  for (const i of indices) {
    const last = ranges[ranges.length - 1];
    if (last && i === last[1] + 1) last[1] = i;
    else ranges.push([i, i]);
  }
  return ranges;
}

/**
 * Decodes only the packets in `ranges` of an intra-only input: one ffmpeg copies those packets, a
 * second decodes them with `decodeArgs`. Either failing stops both; the decoder's error is the one
 * reported when both fail, since the copier then only lost its reader.
 */
async function decodeSelected(info: VideoInfo, bins: Binaries, signal: AbortSignal, ranges: [number, number][], decodeArgs: string[], decode: Pick<RunOptions, 'consumeStdout' | 'onStderrLine'>): Promise<void> {
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  const packets = new PassThrough();
  const copier = run(bins.ffmpeg, packetSelectArgs(info.path, ranges), {
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
 * Scene cuts inside the given stretches of an intra-only input: the frames of each stretch are
 * decoded at low resolution and scored by scdet. The first frame of each stretch is only the
 * reference for the next one (its own score compares it with the previous stretch).
 */
async function findCuts(info: VideoInfo, bins: Binaries, signal: AbortSignal | undefined, stretches: [number, number][], sceneThreshold: number): Promise<{ cuts: number[]; decoded: number }> {
  const frames = stretches.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i));
  const ranges = packetRanges([...new Set(frames)].sort((x, y) => x - y));
  const order = ranges.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i));
  const starts = new Set(ranges.map(([a]) => a));
  const cuts: number[] = [];
  const args = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info', '-f', 'nut', '-i', 'pipe:0', '-vf', sceneCutChain(sceneThreshold), '-f', 'null', '-'];
  await decodeSelected(info, bins, signal ?? new AbortController().signal, ranges, args, {
    onStderrLine: (line) => {
      const n = cutLine(line);
      const frame = n === undefined ? undefined : order[n];
      if (frame !== undefined && !starts.has(frame)) cuts.push(frame);
    },
  });
  return { cuts, decoded: order.length };
}
