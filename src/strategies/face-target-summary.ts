import type { TargetOutcome } from './face-target.js';

/** The face-quality target's outcome as the CLI prints it: rounded for display (the library's values are exact). */

const r = (v: number | undefined, digits: number) => (v === undefined || !Number.isFinite(v) ? null : Math.round(v * 10 ** digits) / 10 ** digits);

export function targetJson(t: TargetOutcome) {
  return {
    kind: t.kind,
    applied: t.applied,
    ...(t.notice ? { notice: t.notice } : {}),
    ...(t.referenceCrf !== undefined ? { referenceCrf: t.referenceCrf } : {}),
    targetFacePsnr: r(t.targetFacePsnr, 2),
    crf: t.crf,
    facePsnr: r(t.facePsnr, 2),
    faceSsim: r(t.faceSsim, 4),
    facePsnrMeasuredOn: 'whole',
    ...(t.reference
      ? {
          reference: {
            crf: t.reference.crf,
            facePsnr: r(t.reference.facePsnr, 2),
            faceSsim: r(t.reference.faceSsim, 4),
            bytes: Math.round(t.reference.bytes),
            measuredOn: t.reference.measuredOn,
            samples: { facePsnr: r(t.reference.samples.facePsnr, 2), faceSsim: r(t.reference.samples.faceSsim, 4), bytes: t.reference.samples.bytes },
          },
        }
      : {}),
    predicted: { facePsnr: r(t.predicted.facePsnr, 2), faceSsim: r(t.predicted.faceSsim, 4), ...(t.predicted.sizeRatio !== undefined ? { sizeRatio: r(t.predicted.sizeRatio, 3) } : {}), measuredOn: 'samples' },
    ...(t.sizeRatio !== undefined ? { sizeRatio: r(t.sizeRatio, 3), sizeRatioMeasuredOn: t.sizeRatioMeasuredOn } : {}),
    difference: r(t.difference, 2),
    tolerance: t.tolerance,
    met: t.met,
    corrected: t.corrected,
    sampleTries: t.sampleTries,
    tries: t.tries.map((x) => ({ ...x, facePsnr: r(x.facePsnr, 2), faceSsim: r(x.faceSsim, 4) })),
    samples: { ...t.samples, share: r(t.samples.share, 3) },
    seconds: Object.fromEntries(Object.entries(t.seconds).map(([k, v]) => [k, r(v, 2)])),
  };
}

/** One line: "faces 44.47 dB (measured on the whole output) vs 44.62 dB for uniform CRF 23 (estimated from samples); 38% smaller (estimated from samples); CRF 26.5 after 1 sample try". */
export function targetSentence(t: TargetOutcome): string {
  if (!t.applied) return t.notice ?? 'the face-quality target did not apply';
  const faces = `faces ${t.facePsnr.toFixed(2)} dB, SSIM ${t.faceSsim.toFixed(4)} (measured on the whole output)`;
  const against = t.reference
    ? ` vs ${t.reference.facePsnr.toFixed(2)} dB, SSIM ${t.reference.faceSsim.toFixed(4)} for uniform CRF ${t.reference.crf} (${t.reference.measuredOn === 'whole' ? 'measured on the whole video' : 'estimated from samples'})`
    : ` for a target of ${t.targetFacePsnr.toFixed(2)} dB`;
  const size = t.sizeRatio !== undefined
    ? `; ${Math.abs(Math.round((1 - t.sizeRatio) * 100))}% ${t.sizeRatio <= 1 ? 'smaller' : 'larger'}${t.sizeRatioMeasuredOn === 'whole' ? ' (both measured)' : ` (estimated from samples)`}`
    : '';
  const verdict = t.met ? '' : `; ${(-t.difference).toFixed(2)} dB short of the target, beyond the ${t.tolerance} dB tolerance`;
  return `${faces}${against}${size}; CRF ${t.crf} after ${t.sampleTries} sample ${t.sampleTries === 1 ? 'try' : 'tries'}${t.corrected ? ' and one correction' : ''}${verdict}`;
}
