import { modeNames, rateCell, sameSizeSentence } from '../report/words.js';
import { matchingState } from '../report/matching.js';
import type { Report } from '../report/report-schema.js';

/** The short table `compare` prints: one row per encode, then the BD-rates in words. */
export function summaryTable(report: Report): string {
  const cell = (v: number | null, d: number) => (v === null ? '–' : v.toFixed(d));
  const salient = report.points.some((p) => p.salientPsnr !== null);
  const head = ['mode', report.settings.bitratesKbps.length ? 'asked' : 'crf', 'kbit/s', 'face PSNR', 'face SSIM', ...(salient ? ['salient PSNR'] : []), 'PSNR', 'bg PSNR'];
  const rows = report.points.map((p) => [
    p.matching ? `${p.mode} (${matchingState(p, report.points)})` : p.target ? `${p.mode} (faces as uniform CRF ${p.target.matchCrf})` : p.mode,
    rateCell(p),
    p.bitrateKbps.toFixed(1),
    cell(p.facePsnr, 2),
    cell(p.faceSsim, 4),
    ...(salient ? [cell(p.salientPsnr, 2)] : []),
    cell(p.psnr, 2),
    cell(p.backgroundPsnr, 2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const pct = (v: number | null) => (v === null ? 'n/a' : `${v > 0 ? '+' : ''}${v.toFixed(1)}%`);
  const bdLine = (bd: Report['bdRate']) =>
    `face PSNR ${pct(bd.facePsnr)} (Y-PSNR ${pct(bd.facePsnrY)}), face SSIM ${pct(bd.faceSsim)}${salient ? `, salient PSNR ${pct(bd.salientPsnr)}` : ''}, full PSNR ${pct(bd.psnr)} (Y-PSNR ${pct(bd.psnrY)})`;
  const names = modeNames(report.settings.codec);
  const same = sameSizeSentence(report.sameSize, report.points.some((p) => p.facePsnr !== null), false);
  const lines = [line(head), ...rows.map(line), '', `Bitrates are the video stream's; PSNR pools Y, U and V over all frames, Y-PSNR averages each frame's luma PSNR.`];
  if (same) lines.push(`${same}.`);
  lines.push(`BD-rate, ROI against ${names.uniform} (negative = smaller at the same quality): ${bdLine(report.bdRate)}`);
  if (report.bdRateVsBaseline && report.settings.baseline) lines.push(`BD-rate, ${names.roi} against ${names[report.settings.baseline]}: ${bdLine(report.bdRateVsBaseline)}`);
  return `${lines.join('\n')}\n`;
}
