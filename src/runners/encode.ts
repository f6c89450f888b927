import { resolveEncodeOptions } from '../encode/encode.js';
import { encodeWith, type EncodeOptions, type EncodeResult } from './dispatch.js';

export type { EncodeOptions, EncodeResult };

/**
 * The public encode(): one request, run by the strategy and the runner it names. A face-quality
 * target (src/strategies/face-target.ts) searches for the CRF and calls encodeWith; everything else
 * goes straight to encodeWith (src/runners/dispatch.ts: this machine, or workers with `redis`).
 * The strategy is loaded only when asked for, so a plain encode never loads it.
 */
export async function encode(input: string, output: string, options: EncodeOptions = {}): Promise<EncodeResult> {
  if (options.matchCrf !== undefined || options.targetFacePsnr !== undefined || options.verifyReference !== undefined) {
    const { resolveFaceTarget, encodeToFaceTarget } = await import('../strategies/face-target.js');
    resolveEncodeOptions(options);
    const target = resolveFaceTarget(options);
    if (target) return encodeToFaceTarget(input, output, options, target);
  }
  return encodeWith(input, output, options);
}
