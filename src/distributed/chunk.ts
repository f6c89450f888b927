import { copyFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { RoiError } from '../media/errors.js';
import { buildEncodeArgs } from '../encode/argv.js';
import { codecFor, encoderBitDepth, encoderParams, X265, type CodecDescription } from '../encode/codec.js';
import { hdrParams } from '../encode/hdr.js';
import { probePictureFormat } from '../media/hdr.js';
import { buildVideoGraph, zonesParam } from '../encode/filtergraph.js';
import type { Binaries } from '../media/binaries.js';
import { withScratchDir, writeAtomically } from '../media/output-file.js';
import { lastErrorLine, run } from '../media/process.js';
import { basename, dirname, join } from 'node:path';
import { ratePass } from '../encode/rate-control.js';
import { passComplexity } from '../encode/pass-stats.js';
import type { ChunkRange } from './chunking.js';
import type { ChunkBounds, ChunkJobData, StreamStart } from './jobs.js';

/** How far before a chunk the decoder starts, so it lands on a keyframe before the first frame. */
const SEEK_MARGIN_SECONDS = 3;

function sec(v: number): string {
  return Number(v.toFixed(6)).toString();
}

/** Pure, on the submitter: a chunk's edges from the source's frame times. */
export function chunkBounds(range: Pick<ChunkRange, 'startFrame' | 'endFrame'>, frameTimes: ArrayLike<number>): ChunkBounds {
  return {
    ...(range.startFrame > 0 ? { beforeSeconds: frameTimes[range.startFrame - 1]! } : {}),
    firstSeconds: frameTimes[range.startFrame]!,
    lastSeconds: frameTimes[range.endFrame - 1]!,
    ...(range.endFrame < frameTimes.length ? { afterSeconds: frameTimes[range.endFrame]! } : {}),
  };
}

/**
 * Pure, on the worker: ffmpeg input options and a filter that keep exactly the chunk's frames. The
 * decoder seeks to a keyframe a little before the chunk (-noaccurate_seek: nothing is dropped by
 * ffmpeg) and keeps the source timestamps (-copyts); `trim` then cuts halfway between the frames on
 * either side of each boundary, which no rounding can move past a frame, and `setpts` starts the
 * chunk at 0. Built from numbers only: the job carries no ffmpeg text.
 */
export function chunkSelection(bounds: ChunkBounds, start: StreamStart): { inputOptions: string[]; selectFilter: string } {
  const abs = (t: number) => start.videoStartSeconds + t;
  const inputOptions: string[] = ['-copyts'];
  const trim: string[] = [];
  if (bounds.beforeSeconds !== undefined) {
    const mid = abs((bounds.beforeSeconds + bounds.firstSeconds) / 2);
    const seek = abs(bounds.firstSeconds) - start.formatStartSeconds - SEEK_MARGIN_SECONDS;
    if (seek > 0) inputOptions.push('-noaccurate_seek', '-ss', sec(seek));
    trim.push(`start=${sec(mid)}`);
  }
  if (bounds.afterSeconds !== undefined) trim.push(`end=${sec(abs((bounds.lastSeconds + bounds.afterSeconds) / 2))}`);
  const selectFilter = `${trim.length ? `trim=${trim.join(':')},` : ''}setpts=PTS-STARTPTS`;
  return { inputOptions, selectFilter };
}

/** Encoder settings of a chunk: the single-machine ones, plus a closed GOP (its first frame is an IDR) and the worker's threads. */
export function chunkEncoderParams(zones: string | undefined, threads: number | undefined, codec: CodecDescription = X265, expert: Record<string, string> = {}, hdr: Record<string, string | number> = {}): Record<string, string | number> {
  return encoderParams(codec, { zones, extra: { ...hdr, ...codec.chunkParams(threads) }, expert });
}

export interface ChunkEncodeOptions {
  bins: Binaries;
  signal?: AbortSignal;
  /** x265 thread pool size (pools=N; with 1 also frame-threads=1). Default: x265's choice. */
  threads?: number;
  onFrames?: (done: number) => void;
}

/** The encoder's statistics files of a first pass: `2pass.log` and what x265 (`.cutree`) or x264 (`.mbtree`) writes beside it. */
const STATS = '2pass.log';

/**
 * Copies the statistics files `from` + suffix to `to` + suffix (the log and its .cutree or .mbtree).
 * Each lands under a temporary name first, so a reader never sees half a file.
 */
async function copyStats(fromDir: string, fromName: string, toDir: string, toName: string): Promise<void> {
  const names = (await readdir(fromDir)).filter((n) => n.startsWith(fromName) && !n.endsWith('.temp'));
  if (!names.includes(fromName)) throw new RoiError('PASS_STATS', `the first pass's statistics ${join(fromDir, fromName)} are missing`);
  for (const n of names) await writeAtomically(join(toDir, toName + n.slice(fromName.length)), (temp) => copyFile(join(fromDir, n), temp));
}

/** What a chunk job returns (signed): its frames, and after a first pass the complexity its statistics show. */
export interface ChunkFacts {
  frames: number;
  complexity?: number;
}

/**
 * Encodes one chunk into job.output (atomically: temporary name, renamed when complete). With
 * job.rate, one pass of a two-pass encode: the first writes only the encoder's statistics, copied
 * to job.rate.stats (on the shared filesystem, where the second pass, on any worker, reads them);
 * the second encodes from them at the chunk's share of the budget. Either runs in the worker's own
 * scratch folder, so the encoder's option string never holds a shared path.
 */
export async function encodeChunk(job: ChunkJobData, options: ChunkEncodeOptions): Promise<ChunkFacts> {
  const expected = job.endFrame - job.startFrame;
  const shared = job.rate ? { dir: dirname(job.rate.stats), name: basename(job.rate.stats) } : undefined;
  const codec = codecFor(job.codec ?? 'x265');
  // The source's HDR10 metadata, read here as on one machine (every chunk's SEI carries it).
  const picture = await probePictureFormat(job.input, options.bins, options.signal);
  const hdr = hdrParams(codec, picture);
  let frames = 0;
  let complexity: number | undefined;
  await withScratchDir(async (dir) => {
    const rate = job.rate ? ratePass({ bitrate: job.rate.bitrate }, { number: job.rate.pass, stats: join(dir, STATS) }) : undefined;
    if (job.rate?.pass === 2) await copyStats(shared!.dir, shared!.name, dir, STATS);
    const filterScript = join(dir, 'chunk.filter');
    const { inputOptions, selectFilter } = chunkSelection(job.bounds, job.streamStart);
    const select = `[0:v:0]${selectFilter}`;
    // The chunk's frames, then (as on one machine: buildVideoGraph) the output size and the plan's offsets at it.
    const rest = buildVideoGraph(job.plan, { strength: job.strength, frameTimes: Float64Array.from(job.frameTimes), outputLabel: 'v', inputLabel: 'c', size: job.size, blockSize: codec.blockSize, bitDepth: encoderBitDepth(codec, picture.bitDepth) });
    const graph = rest ? `${select}[c];\n${rest}` : `${select}[v]`;
    await writeFile(filterScript, graph);
    const encode = async (temp: string) => {
      const args = buildEncodeArgs({
        input: job.input,
        inputOptions,
        output: temp,
        container: 'mp4',
        filterScript,
        videoLabel: 'v',
        codec: codec.encoder,
        crf: job.crf,
        rate,
        preset: job.preset,
        x265Params: chunkEncoderParams(job.plan ? zonesParam(job.plan.zones) : undefined, options.threads, codec, job.encoderParams, hdr),
        hasSubtitles: false,
        // As a single-machine encode: frames keep their exact times (1/fps would round VFR times).
        encTimeBase: job.timeBase,
        videoOnly: true,
      });
      const warnings: string[] = [];
      const errors: string[] = [];
      await run(options.bins.ffmpeg, args, {
        signal: options.signal,
        what: `encoding chunk ${job.index + 1}/${job.count}`,
        onStdoutLine: (line) => {
          const m = /^frame=(\d+)/.exec(line);
          if (m) {
            frames = Number(m[1]);
            options.onFrames?.(frames);
          }
        },
        onStderrLine: (line) => {
          if (/skipping ROI/i.test(line)) warnings.push(line.trim());
          else if (line.trim()) errors.push(line.trim());
        },
      });
      if (warnings.length) throw new RoiError('ROI_SKIPPED', `${codec.name} ignored the ROI offsets (${warnings[0]}); check that aq-mode is not 0`);
      if (frames !== expected) {
        const why = errors.length ? `; ffmpeg said: ${lastErrorLine(errors.slice(-3).join('\n'))}` : '';
        throw new RoiError('CHUNK_FRAMES', `decoded ${frames} of the chunk's ${expected} frames (the input is corrupt or unreadable there${why})`);
      }
    };
    if (job.rate?.pass === 1) {
      await encode(job.output);
      complexity = passComplexity(await readFile(join(dir, STATS), 'utf8')).complexity;
      await copyStats(dir, STATS, shared!.dir, shared!.name);
    } else {
      await writeAtomically(job.output, encode);
    }
  });
  return { frames, ...(complexity !== undefined ? { complexity } : {}) };
}
