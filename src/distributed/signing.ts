import { createHmac, timingSafeEqual } from 'node:crypto';
import { RoiError } from '../media/errors.js';

/**
 * HMAC-SHA256 signatures on what travels through Redis: each job's data (signed by the submitter,
 * checked by the worker before anything else) and each job's result (signed by the worker, checked
 * by the submitter). The MAC covers the job's id and kind with its data, so a signed payload cannot
 * be moved to another job, and a result cannot stand in for another job's.
 */
export const SIGNATURE_FIELD = 'signature';

/**
 * A serialisation both sides compute alike: JSON with object keys sorted at every level and
 * undefined members left out (as JSON.stringify leaves them out on the way into Redis).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new RoiError('INVALID_JOB', 'cannot sign a non-finite number');
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.keys(value)
    .sort()
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}

function mac(secret: Buffer, purpose: 'job' | 'result', jobId: string, name: string, value: unknown): string {
  return createHmac('sha256', secret).update(`roi-encoder ${purpose} v1\n${jobId}\n${name}\n${canonicalJson(value)}`).digest('hex');
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The job data to add: `data` as it will read back from Redis, plus its signature. */
export function signJob<T extends object>(secret: Buffer, jobId: string, name: string, data: T): T & { signature: string } {
  const plain = JSON.parse(JSON.stringify(data)) as T;
  return { ...plain, [SIGNATURE_FIELD]: mac(secret, 'job', jobId, name, plain) } as T & { signature: string };
}

/** The job's data without its signature, if the signature verifies; otherwise throws why not. */
export function verifyJob(secret: Buffer, job: { id?: string; name: string; data: unknown }): unknown {
  const what = `${job.name.slice(0, 40)} job ${job.id ?? ''}`.trim();
  const data = job.data;
  const given = data !== null && typeof data === 'object' ? (data as Record<string, unknown>)[SIGNATURE_FIELD] : undefined;
  if (typeof given !== 'string' || given === '') {
    throw new RoiError('JOB_UNSIGNED', `refused: the ${what} is not signed (submitters and workers must share the secret: ROI_ENCODER_SECRET, --secret-file or ~/.config/roi-encoder/secret)`);
  }
  const { [SIGNATURE_FIELD]: _, ...rest } = data as Record<string, unknown>;
  if (!same(given, mac(secret, 'job', job.id ?? '', job.name, rest))) {
    throw new RoiError('JOB_BAD_SIGNATURE', `refused: the signature of the ${what} does not verify (signed with another secret, or changed after signing)`);
  }
  return rest;
}

/** What a worker returns: the value and its signature. */
export interface SignedResult {
  value: unknown;
  signature: string;
}

export function signResult(secret: Buffer, jobId: string, name: string, value: unknown): SignedResult {
  const plain = value === undefined ? null : (JSON.parse(JSON.stringify(value)) as unknown);
  return { value: plain, signature: mac(secret, 'result', jobId, name, plain) };
}

/** The value of a job's result if its signature verifies; throws otherwise. */
export function verifyResult(secret: Buffer, jobId: string, name: string, result: unknown, what: string): unknown {
  const r = result as Partial<SignedResult> | null | undefined;
  if (!r || typeof r !== 'object' || typeof r.signature !== 'string' || !('value' in r) || !same(r.signature, mac(secret, 'result', jobId, name, r.value))) {
    throw new RoiError('RESULT_UNVERIFIED', `the result of ${what} does not verify (not signed with this secret); nothing was written`);
  }
  return r.value;
}
