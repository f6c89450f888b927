import type { Readable } from 'node:stream';
import { RoiError } from '../errors.js';
import type { Binaries } from '../media/binaries.js';
import { run } from '../media/process.js';
import type { VideoInfo } from '../media/probe.js';

/** One sampled frame in display orientation, RGB24, at analysis size. */
export interface SampledFrame {
  /** Index of this frame in the source (presentation order). */
  index: number;
  /** Seconds from the first frame. */
  time: number;
  width: number;
  height: number;
  rgb: Uint8Array;
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

/** ffmpeg arguments that stream sampled frames as raw RGB on stdout and log scene cuts on stderr. */
export function samplingArgs(input: string, plan: SamplingPlan, sceneThreshold: number): string[] {
  const last = plan.indices[plan.indices.length - 1] ?? 0;
  const graph = [
    '[0:v]split=2[s][c]',
    `[s]select='not(mod(n\\,${plan.step}))+eq(n\\,${last})',scale=${plan.width}:${plan.height}:flags=area,setsar=1,format=rgb24[frames]`,
    // scdet scores every frame; metadata prints only cut frames, with their index among all frames.
    `[c]scale=160:-2,scdet=threshold=${sceneThreshold},metadata=mode=print:key=lavfi.scd.time,nullsink`,
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

export interface SampleOptions {
  signal?: AbortSignal;
  sceneThreshold: number;
  onFrame: (frame: SampledFrame) => Promise<void> | void;
}

/**
 * Decodes the input once and hands each sampled frame to `onFrame`, one at a time: the decoder is
 * paused while a frame is being analysed, so memory stays at a couple of frames whatever the length.
 * Returns the frame indices at which scene cuts start.
 */
export async function sampleFrames(info: VideoInfo, plan: SamplingPlan, bins: Binaries, options: SampleOptions): Promise<number[]> {
  const frameBytes = plan.width * plan.height * 3;
  const cuts: number[] = [];
  let delivered = 0;
  const consume = async (stdout: Readable) => {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    for await (const chunk of stdout as AsyncIterable<Buffer>) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      while (pendingBytes >= frameBytes) {
        const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
        const rgb = new Uint8Array(all.buffer.slice(all.byteOffset, all.byteOffset + frameBytes));
        const rest = all.subarray(frameBytes);
        pending = rest.length ? [rest] : [];
        pendingBytes = rest.length;
        const index = plan.indices[delivered];
        if (index === undefined) throw new RoiError('DECODE_MISMATCH', `decoder produced more frames than the ${info.frameCount} probed in ${info.path}`);
        delivered++;
        await options.onFrame({ index, time: info.frameTimes[index]!, width: plan.width, height: plan.height, rgb });
      }
    }
  };
  await run(bins.ffmpeg, samplingArgs(info.path, plan, options.sceneThreshold), {
    signal: options.signal,
    what: 'decoding frames for analysis',
    consumeStdout: consume,
    onStderrLine: (line) => {
      const match = /\bframe:(\d+)\s+pts:/.exec(line);
      if (match && line.includes('metadata')) cuts.push(Number(match[1]));
    },
  });
  if (delivered < plan.indices.length) {
    throw new RoiError('INPUT_TRUNCATED', `input is truncated or corrupt: decoded only ${delivered} of ${plan.indices.length} sampled frames of ${info.path}`);
  }
  return cuts.filter((c) => c > 0 && c < info.frameCount);
}
