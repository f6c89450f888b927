import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RoiError } from '../media/errors.js';
import { KEEP_TIMESTAMPS, muxerArgs, trackCodecArgs, trackMapArgs, type Container, type TrackPlan } from '../encode/argv.js';
import type { Binaries } from '../media/binaries.js';
import { withScratchDir } from '../media/output-file.js';
import { run } from '../media/process.js';
import { probeVideo } from '../media/probe.js';
import type { AssembleJobData } from './jobs.js';
import { codecFor, type CodecName } from '../encode/codec.js';

/**
 * Joining the chunks: the concat demuxer with `-c:v copy` (each chunk starts with an IDR of a closed
 * GOP), every chunk placed at its source time by a `duration` line, and audio, subtitles, metadata,
 * chapters (and, through the chunks, rotation) taken once from the source. The output options are the
 * single-machine encode's (src/encode/argv.ts): the same stream plan, the same timestamps, the same
 * container settings, so a distributed output differs from a single-machine one in the video bits only.
 */
function quote(path: string): string {
  return `'${path.replace(/'/g, `'\\''`)}'`;
}

function seconds(v: number): string {
  return Number(v.toFixed(6)).toString();
}

/**
 * Pure: the ffconcat list. `duration` makes each next chunk start where the source frame does. The
 * concat demuxer reads durations in microseconds and adds them up; each is rounded so that the sums,
 * not just the parts, are the nearest microsecond (no drift over many chunks).
 */
export function buildConcatList(chunks: { path: string; durationSeconds: number }[]): string {
  let exact = 0;
  let written = 0;
  const lines = chunks.flatMap((c) => {
    exact += c.durationSeconds;
    const us = Math.round(exact * 1e6) - written;
    written += us;
    return [`file ${quote(c.path)}`, `duration ${seconds(us / 1e6)}`];
  });
  return ['ffconcat version 1.0', ...lines, ''].join('\n');
}

export interface AssembleArgs {
  concatList: string;
  input: string;
  output: string;
  container: Container;
  /**
   * Where the source's first frame is, in seconds: its timestamp as stored (the chunks start at 0),
   * or, for a video-only output, relative to the input's start (ffmpeg's default, as encode() does).
   */
  videoStartSeconds: number;
  /** The source's audio and subtitle streams and how each reaches the output (planTracks). */
  tracks: TrackPlan[];
  videoOnly: boolean;
  /** The chunks' codec; default x265. */
  codec?: CodecName;
}

/** Pure: the ffmpeg argv of the assembly. */
export function buildAssembleArgs(a: AssembleArgs): string[] {
  const args = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'warning', '-y', '-f', 'concat', '-safe', '0'];
  // The chunks start at 0: the offset puts the first frame where the source has it.
  if (a.videoStartSeconds) args.push('-itsoffset', seconds(a.videoStartSeconds));
  args.push('-i', a.concatList, '-i', a.input, '-map', '0:v:0');
  if (!a.videoOnly) args.push(...trackMapArgs(a.tracks, a.container, 1), ...KEEP_TIMESTAMPS);
  args.push('-c:v', 'copy');
  if (!a.videoOnly) args.push(...trackCodecArgs(a.tracks));
  args.push(...muxerArgs(a.container, codecFor(a.codec ?? 'x265').encoder, 1), a.output);
  return args;
}

/** Runs the assembly and checks that the result has the source's frames at the source's times. */
export async function assemble(job: AssembleJobData, bins: Binaries, signal?: AbortSignal): Promise<{ frames: number }> {
  // The list is written here, from the (checked) chunk paths, in the worker's own scratch folder.
  await withScratchDir(async (dir) => {
    const concatList = join(dir, 'chunks.ffconcat');
    await writeFile(concatList, buildConcatList(job.chunks));
    await run(bins.ffmpeg, buildAssembleArgs({ ...job, concatList }), { signal, what: 'assembling the chunks' });
  });
  const [out, src] = await Promise.all([probeVideo(job.output, bins, signal), probeVideo(job.input, bins, signal)]);
  if (out.frameCount !== src.frameCount) {
    throw new RoiError('ASSEMBLY_MISMATCH', `the assembled video has ${out.frameCount} frames but the source has ${src.frameCount}`);
  }
  // Timestamps: Matroska stores milliseconds; half a millisecond either way, and a little more.
  const tolerance = 0.0011;
  if (!job.videoOnly && Math.abs(out.startSeconds - src.startSeconds) > tolerance) {
    throw new RoiError('ASSEMBLY_MISMATCH', `the assembled video starts at ${out.startSeconds.toFixed(4)} s but the source's at ${src.startSeconds.toFixed(4)} s`);
  }
  for (let i = 0; i < src.frameCount; i++) {
    if (Math.abs(out.frameTimes[i]! - src.frameTimes[i]!) > tolerance) {
      throw new RoiError('ASSEMBLY_MISMATCH', `frame ${i} of the assembled video is at ${out.frameTimes[i]!.toFixed(4)} s but at ${src.frameTimes[i]!.toFixed(4)} s in the source`);
    }
  }
  return { frames: out.frameCount };
}
