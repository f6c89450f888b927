import type { DistributedEncodeOptions } from '../distributed/options.js';
import { encodeLocal, prepareEncode, resolveEncodeOptions, type EncodeHooks, type LocalEncodeOptions, type LocalEncodeResult } from '../encode/encode.js';
import { RoiError } from '../media/errors.js';
import { conflict } from '../media/validate.js';
import type { FaceTargetOptions, TargetOutcome } from '../strategies/face-target.js';

/**
 * Where an encode runs: the encode stage on this machine (src/encode), or jobs on workers over
 * Redis (src/distributed, loaded only with `redis`). Strategies (src/strategies) call this for
 * every encode they make; the public encode() (./encode.ts) puts them in front of it.
 */
export interface EncodeOptions extends LocalEncodeOptions, DistributedEncodeOptions, FaceTargetOptions {}

export interface EncodeResult extends LocalEncodeResult {
  /** With matchCrf or targetFacePsnr: what was aimed at and reached, measured where (see src/strategies/face-target.ts). */
  target?: TargetOutcome;
}

/** encode() without a face-quality target, on this machine or on workers; `hooks` are the target's. */
export async function encodeWith(input: string, output: string, options: EncodeOptions, hooks: EncodeHooks = {}): Promise<EncodeResult> {
  if (options.redis === undefined) {
    // Options that only mean something on workers would otherwise be dropped without a word.
    const stray = (['secretFile', 'chunkSeconds'] as const).find((name) => options[name] !== undefined);
    if (stray) throw new RoiError('INVALID_OPTION', `${stray} only applies to an encode sent to workers: drop it, or use redis`, { option: stray });
    return encodeLocal(await prepareEncode(input, output, options, hooks), options, hooks);
  }
  // Each chunk is its own encoder run whose buffer starts full: a cap kept inside every chunk can
  // still be broken where two chunks meet, so a VBV is not promised across machines.
  const capped = (['maxrate', 'bufsize'] as const).find((name) => options[name] !== undefined);
  if (capped) throw conflict('redis', capped, 'chunks encoded apart cannot keep one decoder buffer across their joins');
  const { resolveDistributed } = await import('../distributed/submit.js');
  // Validated before the output is checked or the input probed, so a bad URL fails at once.
  const distributed = resolveDistributed(options, resolveEncodeOptions(options).codec);
  // A distributed encode without a plan analyses on a worker.
  return distributed.run(await prepareEncode(input, output, options, hooks, false));
}
