import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import { analyze } from '../analysis/analyze.js';
import { RoiError } from '../media/errors.js';
import { requireEncoder, resolveBinaries, type BinaryOptions } from '../media/binaries.js';
import { expectInteger } from '../media/validate.js';
import { assemble } from './assembly.js';
import { encodeChunk } from './chunk.js';
import { parseJobData } from './job-schemas.js';
import { expectUnderRoots, resolveRoots } from './roots.js';
import { loadSecret, type SecretOptions } from './secret.js';
import { signResult, verifyJob } from './signing.js';
import { CANCEL_CHANNEL, cancelKey, connectRedis, displayUrl, expectRedisUrl, PREFIX, QUEUE, type ChunkProgress, type JobData } from './jobs.js';

/**
 * A worker: pulls analysis, chunk and assembly jobs from the queue until its signal fires, then
 * hands its current jobs back (ffmpeg killed, job moved back to waiting) and disconnects. A worker
 * killed outright loses its lock; after `lockDuration` + `stalledInterval` another worker's stalled
 * check puts the job back, and it is retried from the start of the chunk.
 */
export interface StartWorkerOptions extends BinaryOptions, SecretOptions {
  /** redis://host:port (the CLI also reads REDIS_URL). */
  redis: string;
  /**
   * Folders the worker may read and write in; any path of a job outside them is refused. Default:
   * the current directory (refused when that is the filesystem root). See docs/security.md.
   */
  roots?: string[];
  /** Jobs run at the same time (default 1; one x265 already uses every core). */
  concurrency?: number;
  /** x265 thread pool per chunk (pools=N; 1 also sets frame-threads=1). Default: x265's choice. */
  threads?: number;
  /** Stops the worker: current jobs are handed back to the queue. */
  signal?: AbortSignal;
  /** What the worker is doing, one event per job start and end. */
  onEvent?: (event: WorkerEvent) => void;
}

export interface WorkerEvent {
  type: 'ready' | 'start' | 'done' | 'failed' | 'refused' | 'cancelled' | 'handed-back' | 'redis-error' | 'stopped';
  /** e.g. "chunk 2/3 of /videos/in.mp4 (frames 500–999)". */
  job?: string;
  jobId?: string;
  kind?: JobData['kind'];
  message?: string;
  seconds?: number;
}

export interface RoiWorker {
  /** Name in the queue's worker list (host:pid). */
  readonly name: string;
  /** Settles when the worker has stopped. */
  readonly closed: Promise<void>;
  /** Hands back current jobs and disconnects. */
  close(): Promise<void>;
}

/**
 * Lock and stalled-check timing: a job whose worker died is back in the queue within about
 * LOCK_MS + STALLED_MS. The lock is renewed every LOCK_MS / 2 while ffmpeg runs (the event loop is
 * idle then), so a healthy worker never loses it.
 */
export const LOCK_MS = 10_000;
export const STALLED_MS = 5_000;
/** A job may lose its worker this many times before it fails (a chunk that kills machines). */
export const MAX_STALLED = 2;

function describe(data: JobData): string {
  switch (data.kind) {
    case 'analyze':
      return `analysis of ${data.input}`;
    case 'chunk':
      return `chunk ${data.index + 1}/${data.count} of ${data.input} (frames ${data.startFrame}–${data.endFrame - 1}${data.rate ? `, pass ${data.rate.pass} at ${Math.round(data.rate.bitrate / 1000)} kbit/s` : ''})`;
    case 'assemble':
      return `assembly of ${data.output}`;
  }
}

/** Every path a job reads or writes, with what it is (for the refusal). */
function jobPaths(data: JobData): [string, string][] {
  switch (data.kind) {
    case 'analyze':
      return [[data.input, 'the input'], ...(data.options.saliencyModel ? [[data.options.saliencyModel, 'the saliency model'] as [string, string]] : [])];
    case 'chunk':
      return [[data.input, 'the input'], [data.output, 'the chunk output'], ...(data.rate ? [[data.rate.stats, 'the pass statistics'] as [string, string]] : [])];
    case 'assemble':
      return [[data.input, 'the input'], [data.output, 'the output'], ...data.chunks.map((c): [string, string] => [c.path, 'a chunk'])];
  }
}

function oneLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

export async function startWorker(options: StartWorkerOptions): Promise<RoiWorker> {
  const url = expectRedisUrl(options.redis);
  const concurrency = expectInteger('concurrency', options.concurrency ?? 1, 1, 64);
  const threads = options.threads === undefined ? undefined : expectInteger('threads', options.threads, 1, 256);
  const roots = await resolveRoots(options.roots);
  const secret = await loadSecret(options);
  const bins = resolveBinaries(options);
  await requireEncoder(bins.ffmpeg, 'libx265');
  const emit = (e: WorkerEvent) => options.onEvent?.(e);
  const name = `${hostname()}:${process.pid}`;
  const conn = await connectRedis(url, `roi-encoder-worker-${name}`);
  const sub = await connectRedis(url, `roi-encoder-worker-sub-${name}`);

  interface Active {
    encodeId: string;
    controller: AbortController;
    why?: 'cancelled' | 'shutdown';
  }
  const active = new Map<string, Active>();
  const stopAll = (encodeId: string | undefined, why: Active['why']) => {
    for (const a of active.values()) {
      if (encodeId !== undefined && a.encodeId !== encodeId) continue;
      a.why ??= why;
      a.controller.abort();
    }
  };
  // Cancellation: the submitter publishes its encode id and sets a key (for jobs not yet started,
  // and for workers that were disconnected when the message went out).
  sub.on('message', (_channel: string, encodeId: string) => stopAll(encodeId, 'cancelled'));
  await sub.subscribe(CANCEL_CHANNEL);
  const poll = setInterval(() => {
    for (const a of new Set([...active.values()].map((x) => x.encodeId))) {
      conn.exists(cancelKey(a)).then((n) => n && stopAll(a, 'cancelled'), () => {});
    }
  }, 2000);

  const refuse = (job: Job, message: string, kind?: JobData['kind']): never => {
    emit({ type: 'refused', job: `${job.name} job ${job.id ?? ''}`.trim(), jobId: job.id, kind, message });
    throw new UnrecoverableError(message);
  };

  const processor = async (job: Job<unknown>, token?: string, lockSignal?: AbortSignal): Promise<unknown> => {
    // Before anything else: the job must be signed with our secret, its data one of our job kinds
    // field by field, and every path it names under this worker's folders.
    let data: JobData;
    try {
      data = parseJobData(job.name, verifyJob(secret, job));
      for (const [path, role] of jobPaths(data)) await expectUnderRoots(path, roots, role);
    } catch (error) {
      return refuse(job, oneLine(error));
    }
    const what = describe(data);
    if (await conn.exists(cancelKey(data.encodeId))) throw new UnrecoverableError(`cancelled by the submitter`);
    try {
      await access(data.input, constants.R_OK);
      if (data.kind !== 'analyze') await access(dirname(data.output), constants.W_OK);
    } catch (error) {
      const message = `worker ${name} cannot ${(error as NodeJS.ErrnoException).path === data.input ? 'read the input' : 'write to'} ${(error as NodeJS.ErrnoException).path ?? data.input} (${(error as NodeJS.ErrnoException).code ?? oneLine(error)}): workers need the input and the output's folder on a filesystem every machine sees at the same path`;
      emit({ type: 'failed', job: what, jobId: job.id, kind: data.kind, message });
      throw new UnrecoverableError(message);
    }
    const entry: Active = { encodeId: data.encodeId, controller: new AbortController() };
    active.set(job.id!, entry);
    const onLockLost = () => {
      entry.why ??= 'shutdown';
      entry.controller.abort();
    };
    lockSignal?.addEventListener('abort', onLockLost, { once: true });
    if (options.signal?.aborted) onLockLost();
    const signal = entry.controller.signal;
    let lastProgress = 0;
    const progress = (value: ChunkProgress) => {
      const now = performance.now();
      if (now - lastProgress < 400 && value.done < value.total) return;
      lastProgress = now;
      job.updateProgress(value).catch(() => {});
    };
    const started = performance.now();
    emit({ type: 'start', job: what, jobId: job.id, kind: data.kind });
    try {
      let result: unknown;
      if (data.kind === 'analyze') {
        result = await analyze(data.input, { ...data.options, ffmpegPath: bins.ffmpeg, ffprobePath: bins.ffprobe, signal, onProgress: (e) => progress({ done: e.done, total: e.total }) });
      } else if (data.kind === 'chunk') {
        const total = data.endFrame - data.startFrame;
        result = await encodeChunk(data, { bins, signal, threads, onFrames: (done) => progress({ done, total }) });
      } else {
        result = await assemble(data, bins, signal);
      }
      emit({ type: 'done', job: what, jobId: job.id, kind: data.kind, seconds: (performance.now() - started) / 1000 });
      return signResult(secret, job.id!, job.name, result);
    } catch (error) {
      if (entry.why === 'cancelled') {
        emit({ type: 'cancelled', job: what, jobId: job.id, kind: data.kind });
        throw new UnrecoverableError('cancelled by the submitter');
      }
      if (entry.why === 'shutdown') {
        // Hand the job back: another worker (or this one, restarted) takes it from the queue.
        if (token) await job.moveToWait(token).catch(() => {});
        emit({ type: 'handed-back', job: what, jobId: job.id, kind: data.kind });
        throw new WaitingError();
      }
      const message = oneLine(error);
      emit({ type: 'failed', job: what, jobId: job.id, kind: data.kind, message });
      // Bad input is not going to get better on another try.
      if (error instanceof RoiError && /^INPUT_|^INVALID_|^PLAN_/.test(error.code)) throw new UnrecoverableError(message);
      throw new Error(message);
    } finally {
      lockSignal?.removeEventListener('abort', onLockLost);
      active.delete(job.id!);
    }
  };

  const worker = new Worker<unknown>(QUEUE, processor, {
    connection: conn,
    prefix: PREFIX,
    name,
    concurrency,
    lockDuration: LOCK_MS,
    stalledInterval: STALLED_MS,
    maxStalledCount: MAX_STALLED,
    autorun: true,
  });
  let lastError = 0;
  worker.on('error', (error) => {
    const now = performance.now();
    if (now - lastError < 5000) return;
    lastError = now;
    emit({ type: 'redis-error', message: oneLine(error) });
  });
  await worker.waitUntilReady();
  emit({ type: 'ready', message: `worker ${name} waiting for jobs on ${displayUrl(url)} (files under ${roots.join(', ')})` });

  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      clearInterval(poll);
      stopAll(undefined, 'shutdown');
      // Bounded: with Redis unreachable, handing back and quitting cannot complete.
      const bounded = (p: Promise<unknown>, ms: number) => Promise.race([p.catch(() => {}), new Promise((r) => setTimeout(r, ms).unref())]);
      await bounded(worker.close(), 10_000);
      for (const c of [sub, conn]) {
        if (c.status === 'ready') await bounded(c.quit(), 2000);
        c.disconnect();
      }
      emit({ type: 'stopped', message: `worker ${name} stopped` });
      resolveClosed();
    })();
    return closing;
  };
  if (options.signal?.aborted) void close();
  options.signal?.addEventListener('abort', () => void close(), { once: true });
  return { name, closed, close };
}
