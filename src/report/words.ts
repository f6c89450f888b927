import type { Report, ReportPoint } from './report-schema.js';

/** The report's words for its modes, rates and same-size pairs: shared by index.html and the CLI's summary. */
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export const FORMAT_NAMES = { x265: 'HEVC', x264: 'H.264' } as const;

/** What each mode is called on the page: uniform and ROI are in the report's codec, a baseline in its own. */
export function modeNames(codec: Report['settings']['codec']): Record<string, string> {
  return { uniform: `uniform ${FORMAT_NAMES[codec]}`, roi: `ROI ${FORMAT_NAMES[codec]}`, x264: 'uniform H.264', x265: 'uniform HEVC' };
}

/** A point's rate point in a table cell: its CRF ('26'), or the bitrate asked for ('300k'). */
export function rateCell(p: ReportPoint): string {
  return p.crf !== null ? String(p.crf) : `${p.targetBitrateKbps}k`;
}

/** A point's rate in words: its CRF, or the bitrate its two passes asked for. */
export function rateText(p: ReportPoint): string {
  return p.crf !== null ? `crf ${p.crf}` : `${p.targetBitrateKbps} kbit/s asked`;
}

const signed = (v: number, digits: number, unit = '') => `${v > 0 ? '+' : v < 0 ? '\u2212' : '±'}${Math.abs(v).toFixed(digits)}${unit}`;

/**
 * The viewer's headline: at the same file size, faces +X dB PSNR and +Y SSIM, the rest of the frame
 * −Z dB. With several same-size pairs (bitrates) the mean, and the range across them.
 */
export function sameSizeSentence(pairs: Report['sameSize'], faces: boolean, html = true): string | undefined {
  const esc = html ? escapeHtml : (t: string) => t;
  const strong = (t: string) => (html ? `<strong>${t}</strong>` : t);
  const values = (key: 'facePsnr' | 'faceSsim' | 'backgroundPsnr') => pairs.map((p) => p[key]).filter((v): v is number => v !== null);
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const face = faces ? values('facePsnr') : [];
  const ssim = faces ? values('faceSsim') : [];
  const rest = values('backgroundPsnr');
  if (!rest.length) return undefined;
  const spend = pairs.map((p) => p.bitrateRatio * 100);
  const claims = [
    ...(face.length ? [strong(`faces ${signed(mean(face), 2, ' dB')} PSNR`) + (ssim.length ? ` and ${signed(mean(ssim), 4)} SSIM` : '')] : []),
    `the rest of the frame ${signed(mean(rest), 2, ' dB')} PSNR`,
  ];
  const how = pairs.length > 1
    ? `mean of ${pairs.length} sizes, ROI spending ${Math.min(...spend).toFixed(1)}–${Math.max(...spend).toFixed(1)}% of uniform's bits${face.length > 1 ? `; faces ${signed(Math.min(...face), 2)} to ${signed(Math.max(...face), 2)} dB` : ''}`
    : `ROI spending ${spend[0]!.toFixed(1)}% of uniform's bits`;
  return `At the same file size: ${claims.join(', ')} (${esc(how)})`;
}
