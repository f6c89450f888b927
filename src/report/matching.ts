import { RoiError } from '../media/errors.js';
import type { Report, ReportPoint } from './report-schema.js';

/*
 * Bitrate matching for the report's side-by-side: which uniform encode to show, which ROI encode
 * matches it, and which CRF to try next when none does. Pure functions, unit-tested.
 */
/** The side-by-side counts as matched when ROI spends 95–101% of the uniform encode's bits. */
export const MATCH_RANGE = [0.95, 1.01] as const;
/** ROI aims a little below the uniform bitrate, inside MATCH_RANGE, so it never looks flattered. */
export const MATCH_TARGET = 0.98;
/** At most this many extra ROI encodes are spent looking for the matching CRF. */
export const MATCH_ATTEMPTS = 2;

/**
 * The uniform encode the side-by-side is matched against: two thirds of the way down the rate
 * points from the dearest (CRF 30 of 22–34; 300k of 150k,300k,600k,1200k), a low-to-mid rate where
 * compression shows but the picture is still usable.
 */
export function showcaseUniform(points: ReportPoint[]): ReportPoint {
  const uniform = points.filter((p) => p.mode === 'uniform').sort((a, b) => b.bitrateKbps - a.bitrateKbps);
  const pick = uniform[Math.floor((uniform.length * 2) / 3)] ?? uniform.at(-1);
  if (!pick) throw new RoiError('NO_POINTS', 'a comparison needs uniform encodes');
  return pick;
}

/**
 * The ROI encode closest in bitrate to `uniform` (log ratio), preferring ones that spend no more
 * than it, so the side-by-side never flatters ROI.
 */
export function matchFor(uniform: ReportPoint, points: ReportPoint[]): ReportPoint {
  let best: { point: ReportPoint; cost: number } | undefined;
  for (const p of points) {
    if (p.mode !== 'roi') continue;
    const ratio = p.bitrateKbps / uniform.bitrateKbps;
    // Spending more than uniform flatters ROI, so it costs as much as being ~25% short: 89% beats
    // 106%, but 102% still beats 70%.
    const cost = Math.abs(Math.log(ratio)) + (ratio > MATCH_RANGE[1] ? 0.3 : 0);
    if (!best || cost < best.cost) best = { point: p, cost };
  }
  if (!best) throw new RoiError('NO_POINTS', 'a comparison needs ROI encodes');
  return best.point;
}

export const isMatched = (uniform: { bitrateKbps: number }, roi: { bitrateKbps: number }) => {
  const ratio = roi.bitrateKbps / uniform.bitrateKbps;
  return ratio >= MATCH_RANGE[0] && ratio <= MATCH_RANGE[1];
};

/**
 * ROI against uniform at (about) the same size: the differences a viewer would see, ROI minus
 * uniform (report.json's sameSize).
 */
export function sameSizeDelta(uniform: ReportPoint, roi: ReportPoint): Report['sameSize'][number] {
  const diff = (key: 'facePsnr' | 'faceSsim' | 'backgroundPsnr' | 'psnr', digits: number) => {
    const a = roi[key];
    const b = uniform[key];
    return a === null || b === null ? null : Math.round((a - b) * 10 ** digits) / 10 ** digits;
  };
  return {
    uniform: uniform.file,
    roi: roi.file,
    bitrateRatio: Math.round((roi.videoBytes / uniform.videoBytes) * 1e4) / 1e4,
    facePsnr: diff('facePsnr', 2),
    faceSsim: diff('faceSsim', 4),
    backgroundPsnr: diff('backgroundPsnr', 2),
    psnr: diff('psnr', 2),
  };
}

/** A CRF search step goes at most this far from the nearest encode: bitrate is only log-linear locally. */
const MAX_CRF_STEP = 4;

/**
 * The CRF (to 0.1) expected to give `kbps`: log bitrate is close to linear in CRF, so it is
 * interpolated between the nearest encodes above and below the target when there are both, and
 * extrapolated from the two nearest otherwise, at most MAX_CRF_STEP from the nearest encode.
 */
export function crfForBitrate(points: { crf: number; bitrateKbps: number }[], kbps: number): number {
  return crfForValue(points.map((p) => ({ crf: p.crf, value: Math.log(p.bitrateKbps) })), Math.log(kbps));
}

/**
 * The same search on any quantity close to linear in CRF (log bitrate; face PSNR for the
 * face-quality target of src/strategies/face-target.ts): the CRF (to 0.1) expected to give `target`.
 */
export function crfForValue(points: { crf: number; value: number }[], target: number, maxStep = MAX_CRF_STEP): number {
  const distance = (p: { value: number }) => Math.abs(p.value - target);
  const byCloseness = [...points].sort((a, b) => distance(a) - distance(b));
  const nearest = byCloseness[0];
  if (!nearest) throw new RoiError('NO_POINTS', 'no encodes to interpolate a CRF from');
  const above = byCloseness.find((p) => p.value > target);
  const below = byCloseness.find((p) => p.value < target);
  const [a, b] = above && below ? [above, below] : [nearest, byCloseness.find((p) => p.crf !== nearest.crf && p.value !== nearest.value)];
  let crf = nearest.crf;
  if (b && b.crf !== a.crf && b.value !== a.value) {
    crf = a.crf + ((target - a.value) * (b.crf - a.crf)) / (b.value - a.value);
  }
  crf = Math.max(nearest.crf - maxStep, Math.min(nearest.crf + maxStep, crf));
  return Math.round(Math.max(0, Math.min(51, crf)) * 10) / 10;
}

/**
 * Whether a bitrate-matching try landed in MATCH_RANGE of the uniform encode it was made for
 * ('matched') or is only the nearest that could be had ('closest try'); undefined for grid encodes.
 */
export function matchingState(point: ReportPoint, points: ReportPoint[]): 'matched' | 'closest try' | undefined {
  if (!point.matching) return undefined;
  const uniform = points.find((p) => p.file === point.matching);
  return uniform && isMatched(uniform, point) ? 'matched' : 'closest try';
}
