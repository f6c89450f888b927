import { Redis } from 'ioredis';
import { RoiError } from '../media/errors.js';
import { invalid } from '../media/validate.js';
import type { Container, TrackPlan, X265Preset } from '../encode/argv.js';
import type { Plan } from '../plan/plan.js';
import type { resolveAnalyzeOptions } from '../analysis/analyze.js';
import type { CodecName } from '../encode/codec.js';

/**
 * What travels through Redis: one BullMQ queue, three kinds of job. Paths are absolute and must
 * mean the same file on every machine (a shared filesystem).
 *
 *   analyze (one job, when there is no plan yet) → returns the plan
 *   assemble (parent, FlowProducer) ← chunk 0 … chunk n−1 (children, any worker, in any order)
 */
export const QUEUE = 'roi-encode';
export const PREFIX = 'roi-encoder';
/** Pub/sub channel and key prefix the submitter uses to cancel an encode's jobs. */
export const CANCEL_CHANNEL = `${PREFIX}:cancel`;
export const cancelKey = (encodeId: string) => `${PREFIX}:cancelled:${encodeId}`;

/** Where the input's video starts: its first frame's stored time, and the container's start time. */
export interface StreamStart {
  videoStartSeconds: number;
  formatStartSeconds: number;
}

/**
 * A chunk's edges in source seconds from the first frame: the frame before it (absent for the first
 * chunk), its first and last frames, and the frame after it (absent for the last chunk).
 */
export interface ChunkBounds {
  beforeSeconds?: number;
  firstSeconds: number;
  lastSeconds: number;
  afterSeconds?: number;
}

export interface AnalyzeJobData {
  kind: 'analyze';
  encodeId: string;
  input: string;
  options: ReturnType<typeof resolveAnalyzeOptions>;
}

export interface ChunkJobData {
  kind: 'chunk';
  encodeId: string;
  index: number;
  count: number;
  input: string;
  /** Where the encoded chunk goes (inside the scratch folder beside the output). */
  output: string;
  startFrame: number;
  endFrame: number;
  startSeconds: number;
  endSeconds: number;
  /**
   * Source times around the chunk's edges, from which the worker builds its seek and trim (so no
   * ffmpeg option or filter text travels through Redis).
   */
  bounds: ChunkBounds;
  streamStart: StreamStart;
  /** Source frame times from the chunk's first frame. */
  frameTimes: number[];
  /** The plan's slice for this chunk; absent for a uniform encode. */
  plan?: Plan;
  /** The input video stream's time base, e.g. '1/12800': the chunk's encoder keeps every frame's time in it. */
  timeBase: string;
  crf: number;
  preset: X265Preset;
  strength: number;
  /** Default x265 (jobs queued before codecs were a choice). */
  codec?: CodecName;
  /** The expert's encoder parameters (checked by the submitter). */
  encoderParams?: Record<string, string>;
  /**
   * One pass of a two-pass encode instead of `crf`: the chunk's average bitrate (bit/s) and where its
   * first pass's statistics are kept (the submitter's chunk folder; the encoder's own files are
   * this path and this path plus its suffixes). Pass 1 writes no `output`.
   */
  rate?: ChunkRate;
  /** With height or width: the output picture's size (the chunk is scaled, then the plan's offsets applied at it). */
  size?: { width: number; height: number };
}

export interface ChunkRate {
  pass: 1 | 2;
  bitrate: number;
  stats: string;
}

export interface AssembleJobData {
  kind: 'assemble';
  encodeId: string;
  input: string;
  /** The submitter's temporary output name; it renames it into place. */
  output: string;
  container: Container;
  /** The chunk files in order; the worker writes the concat list from them in its own scratch folder. */
  chunks: { path: string; durationSeconds: number }[];
  /** Where the source's first frame is (its stored timestamp; for video-only outputs, from the input's start). */
  videoStartSeconds: number;
  /** The source's audio and subtitle streams and how each is carried (planTracks, as a single-machine encode). */
  tracks: TrackPlan[];
  videoOnly: boolean;
  frameCount: number;
  /** The chunks' codec (its MP4 tag); default x265. */
  codec?: CodecName;
}

export type JobData = AnalyzeJobData | ChunkJobData | AssembleJobData;

/** Chunk progress as reported through job.updateProgress. */
export interface ChunkProgress {
  done: number;
  total: number;
}

/** A redis:// URL with any password hidden, for messages. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

export function expectRedisUrl(value: unknown): string {
  const text = typeof value === 'string' ? value.trim() : '';
  let ok = false;
  try {
    const u = new URL(text);
    ok = (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '';
  } catch {
    ok = false;
  }
  if (!ok) throw invalid('a redis:// or rediss:// URL (e.g. redis://host:6379)', 'redis', value);
  return text;
}

/** Why the first connection failed, in words that say what to change. */
function connectError(url: string, error: unknown): RoiError {
  const where = displayUrl(url);
  const text = error instanceof Error ? error.message : String(error);
  if (/^WRONGPASS/.test(text)) return new RoiError('REDIS_AUTH', `redis at ${where} refused the user name or password (WRONGPASS); check them in the URL, redis://user:password@host:port`);
  if (/^NOAUTH/.test(text)) return new RoiError('REDIS_AUTH', `redis at ${where} needs a password: give it in the URL, redis://user:password@host:port`);
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? '';
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code) || /certificate/i.test(text)) {
    return new RoiError('REDIS_TLS', `cannot verify the TLS certificate of redis at ${where} (${text}); set NODE_EXTRA_CA_CERTS to the file of the CA that signed it`);
  }
  const hint = url.startsWith('redis:') && /ECONNRESET/.test(text) ? ' (a TLS port? use rediss://)' : '';
  return new RoiError('REDIS_UNREACHABLE', `cannot reach redis at ${where}: ${text}${hint}`);
}

/**
 * An ioredis connection for BullMQ (maxRetriesPerRequest null, as its workers require). The first
 * connection attempt must succeed, so a wrong address, password or certificate is one clear line
 * rather than a silent wait or a retry loop; after that ioredis reconnects by itself. `redis://user:pass@host`
 * and `rediss://` (TLS; a private CA through NODE_EXTRA_CA_CERTS) are ioredis's own URL forms.
 */
export async function connectRedis(url: string, name: string): Promise<Redis> {
  const conn = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: true, connectionName: name, enableReadyCheck: true });
  // The first error says why a first connection failed (connect() itself only says "closed");
  // later ones are expected while Redis restarts, and the caller watches for their effect.
  let first: unknown;
  conn.on('error', (error) => (first ??= error));
  try {
    await conn.connect();
  } catch (error) {
    conn.disconnect();
    throw connectError(url, first ?? error);
  }
  return conn;
}
