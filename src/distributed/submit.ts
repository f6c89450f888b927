import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { FlowProducer, Job, Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import type { resolveAnalyzeOptions } from '../analysis/analyze.js';
import type { Container, TrackPlan, X265Preset } from '../encode/argv.js';
import { outputFacts, type PreparedEncode } from '../encode/encode.js';
import type { EncodeOptions, EncodeResult } from '../runners/dispatch.js';
import { RoiError, throwIfAborted } from '../media/errors.js';
import type { Binaries } from '../media/binaries.js';
import { writeAtomically } from '../media/output-file.js';
import { run } from '../media/process.js';
import { validatePlan, type Plan } from '../plan/plan.js';
import { ProgressMeter } from '../media/progress.js';
import { expectNumber } from '../media/validate.js';
import { chunkBounds, type ChunkFacts } from './chunk.js';
import { runPasses } from '../encode/passes.js';
import { shareBitrate } from '../encode/pass-stats.js';
import type { RateControl } from '../encode/rate-control.js';
import type { SizeBudget } from '../encode/target-size.js';
import type { PictureSize } from '../encode/scale.js';
import { videoStreamBytes, type VideoInfo } from '../media/probe.js';
import { workerParamProblem } from './job-schemas.js';
import { loadSecret } from './secret.js';
import { signJob, verifyResult } from './signing.js';
import { chunkFrameTimes, chunkRanges, DEFAULT_CHUNK_SECONDS, slicePlan, type ChunkRange } from './chunking.js';
import { CANCEL_CHANNEL, cancelKey, connectRedis, displayUrl, expectRedisUrl, PREFIX, QUEUE, type AnalyzeJobData, type AssembleJobData, type ChunkJobData, type ChunkProgress, type ChunkRate, type StreamStart } from './jobs.js';
import type { CodecName } from '../encode/codec.js';
import { probePictureFormat } from '../media/hdr.js';

/**
 * The submitting side of a distributed encode: analysis as one job (when there is no plan), then a
 * BullMQ flow of chunk jobs under one assembly job; waits with one progress display, and renames the
 * assembled file into place. Any failure, abort or loss of Redis cancels the encode's jobs, removes
 * the chunk folder and leaves no output.
 */

/** Attempts per chunk before the encode fails (a corrupt stretch fails every time). */
export const CHUNK_ATTEMPTS = 2;
/** How long the submitter tolerates Redis being unreachable before giving up. */
const REDIS_PATIENCE_MS = 30_000;
const POLL_MS = 300;

interface RunContext {
  input: string;
  output: string;
  info: VideoInfo;
  bins: Binaries;
  plan?: Plan;
  uniform: boolean;
  crf: number;
  preset: X265Preset;
  strength: number;
  container: Container;
  /** The input's audio and subtitle streams as planTracks carries them into this container (none for video-only). */
  tracks: TrackPlan[];
  analyze: ReturnType<typeof resolveAnalyzeOptions>;
  codec: CodecName;
  encoderParams: Record<string, string>;
  rate: RateControl;
  /** With height or width: the output's size. */
  size?: PictureSize;
  /** With a target size: the video's share of it (src/encode/target-size.ts), for the whole file. */
  budget?: SizeBudget;
}

/** Validates the distributed options up front; `run` does the encode once the input is probed. */
export function resolveDistributed(options: EncodeOptions, codec: 'x265' | 'x264') {
  const url = expectRedisUrl(options.redis);
  const chunkSeconds = expectNumber('chunkSeconds', options.chunkSeconds ?? DEFAULT_CHUNK_SECONDS, 1, 3600);
  return {
    run: (p: PreparedEncode) => {
      const { uniform, crf, preset, strength, analyzeResolved, expertParams, rate } = p.resolved;
      const problem = workerParamProblem(expertParams);
      if (problem) throw new RoiError('INVALID_OPTION', problem, { option: codec === 'x265' ? 'x265Params' : 'x264Params' });
      const ctx: RunContext = { input: p.input, output: p.output, info: p.info, bins: p.bins, plan: p.plan, uniform, crf, preset, strength, container: p.container, tracks: p.tracks, analyze: analyzeResolved, codec, encoderParams: expertParams, rate, budget: p.budget, size: p.size };
      return encodeDistributed(ctx, options, url, chunkSeconds);
    },
  };
}

/**
 * Where the input's video starts: its first frame's stored time (as probed, the time a single-machine
 * encode keeps), and the container's start time (where ffmpeg's -ss counts from).
 */
async function streamStart(input: string, info: VideoInfo, bins: Binaries, signal?: AbortSignal): Promise<StreamStart> {
  const { stdout } = await run(bins.ffprobe, ['-v', 'error', '-show_entries', 'format=start_time', '-of', 'json', input], { signal, what: 'probing start times' });
  const start = (JSON.parse(stdout) as { format?: { start_time?: string } }).format?.start_time;
  return { videoStartSeconds: info.startSeconds, formatStartSeconds: start !== undefined && Number.isFinite(Number(start)) ? Number(start) : 0 };
}

function describeChunk(r: ChunkRange, count: number): string {
  return `chunk ${r.index + 1}/${count} (frames ${r.startFrame}–${r.endFrame - 1}, ${r.startSeconds.toFixed(2)}–${r.endSeconds.toFixed(2)} s)`;
}

async function encodeDistributed(ctx: RunContext, options: EncodeOptions, url: string, chunkSeconds: number): Promise<EncodeResult> {
  const { info, bins, uniform, crf, preset, strength, container } = ctx;
  const { signal } = options;
  const input = resolve(ctx.input);
  const output = resolve(ctx.output);
  const where = displayUrl(url);
  const notice = options.onNotice ?? (() => {});
  const encodeId = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const secret = await loadSecret(options);
  const start = await streamStart(input, info, bins, signal);
  throwIfAborted(signal);

  const conn = await connectRedis(url, `roi-encoder-submit-${encodeId}`);
  const queue = new Queue(QUEUE, { connection: conn, prefix: PREFIX });
  const flows = new FlowProducer({ connection: conn, prefix: PREFIX });
  const events = new QueueEvents(QUEUE, { connection: conn, prefix: PREFIX });
  events.on('error', () => {});
  queue.on('error', () => {});
  flows.on('error', () => {});
  const ours = new Set<string>();
  let onJobProgress: ((jobId: string, done: number) => void) | undefined;
  events.on('progress', ({ jobId, data }) => {
    if (!ours.has(jobId)) return;
    const done = typeof data === 'object' && data !== null ? (data as ChunkProgress).done : undefined;
    if (typeof done === 'number') onJobProgress?.(jobId, done);
  });

  const scratch = join(dirname(output), `.${basename(output)}.${encodeId}.chunks`);
  let finished = false;
  try {
    await events.waitUntilReady();
    const waitFor = (jobId: string) => waitForJob(conn, queue, jobId, { signal, where, notice });

    // 1. Analysis: one job (a small share of the encode's time; see README).
    let plan = ctx.plan;
    let analysisSeconds = 0;
    if (!uniform && !plan) {
      const id = `${encodeId}-analyze`;
      const meter = new ProgressMeter('analyze', info.frameCount, options.onProgress);
      onJobProgress = (_jobId, done) => meter.update(done);
      ours.add(id);
      const data: AnalyzeJobData = { kind: 'analyze', encodeId, input, options: ctx.analyze };
      const started = performance.now();
      await queue.add('analyze', signJob(secret, id, 'analyze', data), { jobId: id, attempts: CHUNK_ATTEMPTS, backoff: { type: 'fixed', delay: 1000 } });
      const job = await waitFor(id);
      plan = validatePlan(verifyResult(secret, id, 'analyze', job.returnvalue, 'the analysis job'), '(from the analysis job)');
      analysisSeconds = (performance.now() - started) / 1000;
    }

    // 2. The chunks on the workers, in the passes the rate control needs (src/encode/passes.ts:
    // one at a CRF; two, or three to correct a size), the last assembled into the output.
    const ranges = chunkRanges(info.frameTimes, info.durationSeconds, plan?.cuts ?? [], chunkSeconds);
    await mkdir(scratch);
    const name = (r: ChunkRange) => `chunk-${String(r.index).padStart(4, '0')}`;
    const chunkPath = (r: ChunkRange) => join(scratch, `${name(r)}.mp4`);
    const statsPath = (r: ChunkRange) => join(scratch, `${name(r)}.stats`);
    const slices = new Map(ranges.map((r) => [r.index, plan ? slicePlan(plan, r.startFrame, r.endFrame, info.frameTimes) : undefined]));
    // Each pass's jobs get ids of their own: a correction repeats the second pass.
    let round = 0;
    /** One signed chunk job per range at `rateFor`'s pass (a CRF without one), with this round's ids and one progress display. */
    const chunkJobs = (rateFor: (r: ChunkRange) => ChunkRate | undefined, label: string | undefined) => {
      round++;
      const tag = `${encodeId}-r${round}`;
      const chunkId = (r: ChunkRange) => `${tag}-chunk-${r.index}`;
      const meter = new ProgressMeter('encode', info.frameCount, options.onProgress, label);
      const done = new Map<string, number>();
      onJobProgress = (jobId, frames) => {
        done.set(jobId, frames);
        meter.update([...done.values()].reduce((a, b) => a + b, 0));
      };
      const children = ranges.map((r) => {
        const rate = rateFor(r);
        const data: ChunkJobData = {
          kind: 'chunk',
          encodeId,
          index: r.index,
          count: ranges.length,
          input,
          output: chunkPath(r),
          startFrame: r.startFrame,
          endFrame: r.endFrame,
          startSeconds: r.startSeconds,
          endSeconds: r.endSeconds,
          bounds: chunkBounds(r, info.frameTimes),
          streamStart: start,
          frameTimes: chunkFrameTimes(info.frameTimes, r.startFrame, r.endFrame),
          ...(slices.get(r.index) ? { plan: slices.get(r.index)! } : {}),
          timeBase: info.timeBase,
          // The schema wants a CRF; with `rate` the worker encodes to the bitrate instead.
          crf,
          preset,
          strength,
          codec: ctx.codec,
          encoderParams: ctx.encoderParams,
          ...(rate ? { rate } : {}),
          ...(ctx.size ? { size: ctx.size } : {}),
        };
        ours.add(chunkId(r));
        return { name: 'chunk', queueName: QUEUE, data: signJob(secret, chunkId(r), 'chunk', data), opts: { jobId: chunkId(r), attempts: CHUNK_ATTEMPTS, backoff: { type: 'fixed', delay: 1000 }, failParentOnFailure: true } };
      });
      return { tag, chunkId, meter, children };
    };
    /** Every chunk's first pass at `bitrate` (statistics only, kept for the second): each chunk's complexity. */
    const firstPasses = async (bitrate: number, label: string | undefined): Promise<number[]> => {
      const { chunkId, meter, children } = chunkJobs((r) => ({ pass: 1, bitrate, stats: statsPath(r) }), label);
      await queue.addBulk(children.map(({ name, data, opts }) => ({ name, data, opts })));
      const facts: ChunkFacts[] = [];
      for (const r of ranges) {
        const job = await waitFor(chunkId(r)).catch(async (error: unknown) => {
          throw await explainFailure(error, queue, ranges, chunkId);
        });
        facts.push(chunkFacts(verifyResult(secret, chunkId(r), 'chunk', job.returnvalue, describeChunk(r, ranges.length))));
      }
      checkFrames(facts, info.frameCount, 'first passes');
      meter.update(info.frameCount);
      return facts.map((f) => f.complexity ?? NaN);
    };
    /** Every chunk at `rateFor`'s pass under one assembly job, which writes `assembleTo`. */
    const encodeAndAssemble = async (rateFor: (r: ChunkRange) => ChunkRate | undefined, assembleTo: string, label: string | undefined): Promise<void> => {
      const { tag, chunkId, meter, children } = chunkJobs(rateFor, label);
      const parentId = `${tag}-assemble`;
      const assembleData: AssembleJobData = {
        kind: 'assemble',
        encodeId,
        input,
        output: assembleTo,
        container,
        chunks: ranges.map((r) => ({ path: chunkPath(r), durationSeconds: r.endSeconds - r.startSeconds })),
        // With -copyts (every output but video-only ones) the first frame keeps its stored time, as in a
        // single-machine encode; video-only outputs start from the input's start, as ffmpeg's default does.
        videoStartSeconds: options.videoOnly ? Math.max(0, start.videoStartSeconds - start.formatStartSeconds) : start.videoStartSeconds,
        tracks: options.videoOnly ? [] : ctx.tracks,
        videoOnly: Boolean(options.videoOnly),
        frameCount: info.frameCount,
        codec: ctx.codec,
      };
      ours.add(parentId);
      await flows.add({ name: 'assemble', queueName: QUEUE, data: signJob(secret, parentId, 'assemble', assembleData), opts: { jobId: parentId, attempts: CHUNK_ATTEMPTS }, children });
      let parent: Job;
      try {
        parent = await waitFor(parentId);
      } catch (error) {
        throw await explainFailure(error, queue, ranges, chunkId);
      }
      await verifyFacts(secret, parent, ranges, chunkId, info.frameCount);
      meter.update(info.frameCount);
    };
    let complexity: number[] = [];
    const started = performance.now();
    const outcome = await writeAtomically(output, (temp) =>
      runPasses(ctx.rate, ctx.budget, temp, {
        run: async (out, spec, label) => {
          if (spec.pass === 1) {
            // Every chunk's first pass at the same rate: their statistics say what each needs.
            complexity = await firstPasses(spec.bitrate!, label);
          } else if (spec.pass === 2) {
            // The whole file's budget, shared by complexity as one encode of the whole file would share it.
            const rates = shareBitrate(spec.bitrate!, ranges.map((r, i) => ({ durationSeconds: r.endSeconds - r.startSeconds, complexity: complexity[i]! })));
            await encodeAndAssemble((r) => ({ pass: 2, bitrate: rates[r.index]!, stats: statsPath(r) }), out, label);
          } else {
            await encodeAndAssemble(() => undefined, out, label);
          }
          // Many ffmpeg runs on many machines: no one command line made the file.
          return [];
        },
        videoBytes: async (file) => (await videoStreamBytes(file, bins, signal)).bytes,
      }),
    );
    finished = true;
    const encodeSeconds = (performance.now() - started) / 1000;
    const { rate } = ctx;
    return {
      ...(await outputFacts(output, ctx.output, info, bins, outcome.passes, ctx.size)),
      encodeSeconds,
      analysisSeconds,
      roi: uniform ? 'none' : options.plan ? 'plan' : ctx.analyze.roi.join(','),
      codec: ctx.codec,
      ...(rate.mode === 'crf' ? { crf } : {}),
      ...(rate.mode === 'size' ? { targetBytes: rate.targetBytes } : {}),
      ...(outcome.sizeShortfall ? { sizeShortfall: outcome.sizeShortfall } : {}),
      ...(outcome.bitrate !== undefined ? { requestedBitrateKbps: outcome.bitrate / 1000 } : {}),
      preset,
      strength,
      encoderParams: ctx.encoderParams,
      plan,
      picture: await probePictureFormat(output, ctx.bins),
    };
  } finally {
    onJobProgress = undefined;
    if (!finished) await cancel(conn, queue, encodeId, [...ours]);
    await removeJobs(queue, [...ours]);
    await rm(scratch, { recursive: true, force: true });
    const closeAll = Promise.allSettled([events.close(), flows.close(), queue.close()]);
    await within(closeAll, 3000, () => new Error('timeout')).catch(() => {});
    if (conn.status === 'ready') await within(conn.quit(), 2000, () => new Error('timeout')).catch(() => conn.disconnect());
    else conn.disconnect();
  }
}

/** Rejects after `ms` unless `promise` settles first (commands queue while Redis is away). */
function within<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(onTimeout()), ms)))]).finally(() => clearTimeout(timer));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Polls a job until it completes (returns it) or fails (throws its reason). Meanwhile says so when no
 * worker is connected, and gives up with one line when Redis stays away or comes back without the job.
 */
async function waitForJob(conn: Redis, queue: Queue, jobId: string, o: { signal?: AbortSignal; where: string; notice: (m: string) => void }): Promise<Job> {
  const lost = () => new RoiError('REDIS_LOST', `lost the connection to redis at ${o.where} for ${REDIS_PATIENCE_MS / 1000} s; the encode was abandoned and nothing was written`);
  let waitingNoticed = false;
  let lastWorkerCheck = 0;
  for (;;) {
    throwIfAborted(o.signal);
    const state = await within(queue.getJobState(jobId), REDIS_PATIENCE_MS, lost);
    if (state === 'completed') {
      const job = await within(Job.fromId(queue, jobId), REDIS_PATIENCE_MS, lost);
      if (job) return job;
    }
    if (state === 'failed') {
      const job = await Job.fromId(queue, jobId);
      throw new RoiError('JOB_FAILED', job?.failedReason ?? 'failed', { cause: job });
    }
    if (state === 'unknown') {
      throw new RoiError('REDIS_LOST', `redis at ${o.where} no longer has this encode's jobs (restarted without persistence, or flushed); nothing was written`);
    }
    const now = performance.now();
    if (now - lastWorkerCheck > 1000) {
      lastWorkerCheck = now;
      const workers = await within(queue.getWorkersCount(), REDIS_PATIENCE_MS, lost);
      if (workers === 0 && !waitingNoticed) o.notice(`waiting for a worker on ${o.where} (start one with: roi-encode worker --redis ${o.where})`);
      waitingNoticed = workers === 0;
    }
    if (conn.status !== 'ready') await within(new Promise<void>((r) => conn.once('ready', () => r())), REDIS_PATIENCE_MS, lost);
    await sleep(POLL_MS, o.signal);
  }
}

/** A chunk's signed result as facts (NaN frames when it holds none, which the frame check then refuses). */
function chunkFacts(value: unknown): ChunkFacts {
  const v = value as { frames?: unknown; complexity?: unknown };
  return { frames: typeof v.frames === 'number' ? v.frames : NaN, ...(typeof v.complexity === 'number' && Number.isFinite(v.complexity) ? { complexity: v.complexity } : {}) };
}

/** Checks the signed facts the workers returned: every chunk's frames and the assembly's add up to the source's. */
async function verifyFacts(secret: Buffer, parent: Job, ranges: ChunkRange[], chunkId: (r: ChunkRange) => string, frameCount: number): Promise<void> {
  const assembled = verifyResult(secret, parent.id!, 'assemble', parent.returnvalue, 'the assembly job') as { frames?: unknown };
  const values = await parent.getChildrenValues();
  const facts = ranges.map((r) => {
    const key = Object.keys(values).find((k) => k.endsWith(`:${chunkId(r)}`));
    return chunkFacts(verifyResult(secret, chunkId(r), 'chunk', key === undefined ? undefined : values[key], describeChunk(r, ranges.length)));
  });
  checkFrames(facts, frameCount, 'chunks', assembled.frames);
}

/**
 * The chunks' frames (and the assembly's, when there is one) must add up to the source's; a first
 * pass must also have returned each chunk's complexity.
 */
function checkFrames(facts: ChunkFacts[], frameCount: number, what: 'chunks' | 'first passes', assembled?: unknown): void {
  const frames = facts.reduce((n, f) => n + f.frames, 0);
  const complete = what === 'chunks' ? assembled === frameCount : facts.every((f) => f.complexity !== undefined);
  if (frames === frameCount && complete) return;
  const reported = what === 'chunks' ? `the workers report ${frames} chunk frames and ${String(assembled)} assembled` : `the workers' first passes report ${frames} frames`;
  throw new RoiError('ASSEMBLY_MISMATCH', `${reported}, but the source has ${frameCount}; nothing was written`);
}

/** Turns "the assembly job failed" into the chunk that caused it, with its reason. */
async function explainFailure(error: unknown, queue: Queue, ranges: ChunkRange[], chunkId: (r: ChunkRange) => string): Promise<unknown> {
  if (!(error instanceof RoiError) || error.code !== 'JOB_FAILED') return error;
  for (const r of ranges) {
    const job = await Job.fromId(queue, chunkId(r)).catch(() => undefined);
    if (job && (await job.getState().catch(() => '')) === 'failed') {
      const attempts = job.attemptsMade;
      return new RoiError('CHUNK_FAILED', `${describeChunk(r, ranges.length)} failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${job.failedReason}`);
    }
  }
  return new RoiError('ASSEMBLY_FAILED', `assembling the chunks failed: ${error.message}`);
}

/** Tells workers to stop this encode's jobs, and waits (briefly) until none is running. */
async function cancel(conn: Redis, queue: Queue, encodeId: string, jobIds: string[]): Promise<void> {
  if (conn.status !== 'ready') return;
  try {
    await within(conn.set(cancelKey(encodeId), '1', 'EX', 24 * 3600), 2000, () => new Error('timeout'));
    await within(conn.publish(CANCEL_CHANNEL, encodeId), 2000, () => new Error('timeout'));
    const deadline = performance.now() + 10_000;
    while (performance.now() < deadline) {
      const states = await within(Promise.all(jobIds.map((id) => queue.getJobState(id))), 2000, () => new Error('timeout'));
      if (!states.includes('active')) break;
      await sleep(200);
    }
  } catch {
    // Redis went away: workers find the job gone or its lock lost, and stop on their own.
  }
}

async function removeJobs(queue: Queue, jobIds: string[]): Promise<void> {
  for (const id of jobIds) {
    await within(queue.remove(id, { removeChildren: true }), 2000, () => new Error('timeout')).catch(() => {});
  }
}

