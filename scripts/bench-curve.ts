// The face-quality-per-bit curve (npm run bench -- --only curve): for each clip, ROI encodes at
// strengths 0.25, 0.5, 1 and 1.5 (0 is the uniform anchor) at CRF 22/26/30/34, x265 medium; BD-rate
// on face PSNR against BD-rate on full-frame PSNR, both against uniform x265 at the same CRFs. Every
// variant is judged with the default plan's face masks, so all of them are measured on the same pixels.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { analyze, type AnalyzeOptions } from '../src/analysis/analyze.js';
import { encode, type EncodeOptions } from '../src/runners/encode.js';
import type { Binaries } from '../src/media/binaries.js';
import { videoStreamBytes } from '../src/media/probe.js';
import type { Plan } from '../src/plan/plan.js';
import { bdRate } from '../src/report/bdrate.js';
import { renderSvg } from '../src/report/charts.js';
import { lowPercentile, measureQuality } from '../src/report/metrics.js';

const CRFS = [22, 26, 30, 34];
/**
 * The issue traces 0.5, 1 and 1.5; 0.25 is added because a variant that lands at a low full-frame
 * cost would otherwise be judged against a straight line from the origin to 0.5, below the real curve.
 */
export const STRENGTHS = [0.25, 0.5, 1, 1.5];
const round = (v: number, d = 1) => (Number.isFinite(v) ? Math.round(v * 10 ** d) / 10 ** d : null);

export interface CurveVariant {
  name: string;
  /** Analysis options that make this variant (empty: today's defaults). */
  options: Partial<AnalyzeOptions>;
}

export interface Point { crf: number; kbps: number; psnr: number; facePsnr: number; faceSsim: number; faceP5: number; backgroundPsnr: number; encodeSeconds: number }
interface CurvePoint { strength: number; full: number; face: number; faceSsim: number; faceP5: number }

/**
 * One video-only encode of `source` into `file`, measured with `judge`'s masks. Bitrate from the
 * video stream's packets, as the report's points have it: the file's size would add the MP4
 * container (~6 KB per file, 5–10% of the talking head's bitrate).
 */
export async function measuredEncode(source: string, file: string, judge: Plan, options: EncodeOptions & { crf: number }, bins: Binaries): Promise<Point> {
  const r = await encode(source, file, { ...options, videoOnly: true, force: true });
  const q = await measureQuality(source, file, judge, bins);
  const { bytes } = await videoStreamBytes(file, bins);
  return {
    crf: options.crf, kbps: (bytes * 8) / 1000 / judge.input.durationSeconds, psnr: q.psnr, facePsnr: q.facePsnr, faceSsim: q.faceSsim,
    faceP5: lowPercentile(q.facePsnrPerFrame, 0.05), backgroundPsnr: q.backgroundPsnr, encodeSeconds: r.encodeSeconds,
  };
}

async function encodeCurve(clip: { name: string; file: string }, tag: string, judge: Plan, plan: Plan | undefined, strength: number, out: string, bins: Binaries): Promise<Point[]> {
  const points: Point[] = [];
  for (const crf of CRFS) {
    const file = join(out, `curve-${clip.name}-${tag}-${strength}-${crf}.mp4`);
    points.push(await measuredEncode(clip.file, file, judge, plan ? { plan, crf, strength } : { roi: 'none', crf }, bins));
  }
  return points;
}

const bd = (anchor: Point[], test: Point[], key: 'facePsnr' | 'psnr' | 'faceSsim' | 'faceP5') =>
  bdRate(anchor.map((p) => ({ rate: p.kbps, quality: p[key] })), test.map((p) => ({ rate: p.kbps, quality: p[key] })));

/** Face BD-rate of a curve ((full, face) points from strength 0 up) at a given full-frame BD-rate, linearly between its points. */
export function faceAtCost(curve: [number, number][], full: number): number {
  const pts = [[0, 0] as [number, number], ...curve].sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < pts.length; i++) {
    const [x0, y0] = pts[i - 1]!;
    const [x1, y1] = pts[i]!;
    if (full <= x1 || i === pts.length - 1) return y0 + ((y1 - y0) * (full - x0)) / (x1 - x0);
  }
  return NaN;
}

/** One chart per clip: face BD-rate against full-frame BD-rate, a line per variant, strengths labelled. */
function curveSpec(clip: string, byVariant: Record<string, CurvePoint[]>): TopLevelSpec {
  const values = Object.entries(byVariant).flatMap(([series, line]) => [{ series, x: 0, y: 0, strength: 0 }, ...line.map((p) => ({ series, x: p.full, y: p.face, strength: p.strength }))]);
  return {
    title: `${clip}: face saving against full-frame cost`,
    width: 360,
    height: 240,
    data: { values },
    layer: [
      { mark: { type: 'line', point: { filled: true, size: 50 }, strokeWidth: 2 }, encoding: { order: { field: 'strength', type: 'quantitative' } } },
      { mark: { type: 'text', dx: 8, dy: -8, fontSize: 10 }, encoding: { text: { field: 'strength', type: 'quantitative' } } },
    ],
    encoding: {
      x: { field: 'x', type: 'quantitative', title: 'BD-rate on full-frame PSNR, % (cost)' },
      y: { field: 'y', type: 'quantitative', title: 'BD-rate on face PSNR, % (lower is better)' },
      color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom-left', labelLimit: 300 } },
    },
    config: { font: 'sans-serif', view: { stroke: '#ddd' } },
  };
}

export async function benchCurve(clips: { name: string; file: string }[], variants: CurveVariant[], out: string, bins: Binaries) {
  const rows: Record<string, unknown>[] = [];
  const curves: Record<string, Record<string, CurvePoint[]>> = {};
  for (const clip of clips) {
    console.error(`== curve: ${clip.name}`);
    const judge = await analyze(clip.file);
    const uniform = await encodeCurve(clip, 'uniform', judge, undefined, 0, out, bins);
    curves[clip.name] = {};
    for (const variant of variants) {
      const plan = Object.keys(variant.options).length ? await analyze(clip.file, variant.options) : judge;
      const line: CurvePoint[] = [];
      for (const strength of STRENGTHS) {
        const points = await encodeCurve(clip, variant.name.replace(/\W+/g, '-'), judge, plan, strength, out, bins);
        const point = { strength, full: bd(uniform, points, 'psnr'), face: bd(uniform, points, 'facePsnr'), faceSsim: bd(uniform, points, 'faceSsim'), faceP5: bd(uniform, points, 'faceP5') };
        line.push(point);
        rows.push({
          clip: clip.name,
          variant: variant.name,
          strength,
          'BD face PSNR %': round(point.face),
          'BD face SSIM %': round(point.faceSsim),
          'BD face p5 PSNR %': round(point.faceP5),
          'BD full PSNR %': round(point.full),
          'face p5 @26': round(points[1]!.faceP5, 2),
          'uniform face p5 @26': round(uniform[1]!.faceP5, 2),
          'kbps @26': round(points[1]!.kbps, 0),
          'uniform kbps @26': round(uniform[1]!.kbps, 0),
        });
      }
      curves[clip.name]![variant.name] = line;
    }
  }
  // Each variant's strength-1 point against the first variant's curve at the same full-frame cost:
  // positive = more face saving (or face SSIM, or 5th-percentile face PSNR) for the same cost to the
  // whole frame. "issue's points" reads the curve from strengths 0, 0.5, 1 and 1.5 only.
  const gains: Record<string, unknown>[] = [];
  for (const [clip, byVariant] of Object.entries(curves)) {
    const [reference, ...others] = Object.entries(byVariant);
    if (!reference) continue;
    const refAt = (key: 'face' | 'faceSsim' | 'faceP5', full: number, line = reference[1]) => faceAtCost(line.map((p): [number, number] => [p.full, p[key]]), full);
    for (const [name, line] of others) {
      const at1 = line.find((p) => p.strength === 1)!;
      gains.push({
        clip,
        variant: name,
        against: reference[0],
        'BD full PSNR %': round(at1.full),
        'BD face PSNR %': round(at1.face),
        [`${reference[0]} at that cost`]: round(refAt('face', at1.full)),
        'points better': round(refAt('face', at1.full) - at1.face),
        "issue's points": round(refAt('face', at1.full, reference[1].filter((p) => p.strength >= 0.5)) - at1.face),
        'face SSIM points': round(refAt('faceSsim', at1.full) - at1.faceSsim),
        'face p5 points': round(refAt('faceP5', at1.full) - at1.faceP5),
      });
    }
  }
  const charts = await Promise.all(Object.entries(curves).map(([clip, byVariant]) => renderSvg(curveSpec(clip, byVariant))));
  writeFileSync(join(out, 'curve.html'), `<!doctype html><meta charset="utf-8"><title>roi-encoder: face-quality-per-bit curves</title>\n<p>BD-rates against uniform x265 medium (CRF ${CRFS.join('/')}), strengths labelled; lower and further left is better.</p>\n${charts.join('\n')}\n`);
  const roundLine = (line: CurvePoint[]) => line.map((p) => ({ strength: p.strength, full: round(p.full), face: round(p.face), faceSsim: round(p.faceSsim), faceP5: round(p.faceP5) }));
  return { rows, curves: Object.fromEntries(Object.entries(curves).map(([clip, v]) => [clip, Object.fromEntries(Object.entries(v).map(([n, l]) => [n, roundLine(l)]))])), gains };
}
