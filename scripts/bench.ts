// npm run bench: speed, recall and rate-quality numbers on the dev corpus (the talking head and the
// dev composite from ../shared/media). Prints tables and writes bench-output/bench.json to diff
// between versions. Numbers, not pass/fail: targets are judged by people reading them.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyze } from '../src/analysis/analyze.js';
import { encode } from '../src/encode/encode.js';
import { resolveBinaries } from '../src/media/binaries.js';
import type { Plan } from '../src/plan.js';
import { bdRate } from '../src/report/bdrate.js';
import { measureQuality } from '../src/report/metrics.js';

const out = 'bench-output';
mkdirSync(out, { recursive: true });
const media = join('..', 'shared', 'media');
const bins = resolveBinaries();
const CRFS = [24, 28, 32, 36];

const centre = (b: { x: number; y: number; w: number; h: number }) => [b.x + b.w / 2, b.y + b.h / 2] as const;
const near = (a: readonly number[], b: readonly number[], tol: number) => Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!) <= tol;

interface Clip {
  name: string;
  file: string;
  /** Expected face centres and a tolerance at time t. */
  faces: (t: number) => [number, number, number][];
}

const clips: Clip[] = [];
const head = existsSync(join(media, 'talking-head.mp4')) ? join(media, 'talking-head.mp4') : join('samples', 'talking-head.mp4');
clips.push({ name: 'talking-head', file: head, faces: () => [[205, 188, 30]] });
if (existsSync(join(media, 'make-dev-composite.sh'))) {
  const file = join(out, 'dev-composite.mkv');
  if (!existsSync(file)) execFileSync('bash', [join(media, 'make-dev-composite.sh'), file]);
  clips.push({
    name: 'dev-composite',
    file,
    faces: (t) => [
      { x: 80 + 40 * t, y: 300, w: 360, h: 270, flip: false },
      { x: 1000 - 60 * t, y: 80 + 12 * t, w: 200, h: 150, flip: true },
      { x: 700, y: 560, w: 120, h: 90, flip: false },
    ].map((p) => [p.x + p.w * (p.flip ? 0.485 : 0.515), p.y + p.h * 0.625, p.w * 0.15] as [number, number, number]),
  });
}

function seconds<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  return fn().then((v) => [v, (performance.now() - t) / 1000]);
}

function staticPlan(base: Plan): Plan {
  const all = base.detections.flatMap((d) => d.faces);
  if (!all.length) return base;
  const { width, height, frameCount } = base.input;
  const x0 = Math.floor(Math.min(...all.map((f) => f.x)) / 16) * 16;
  const y0 = Math.floor(Math.min(...all.map((f) => f.y)) / 16) * 16;
  const x1 = Math.min(width, Math.ceil(Math.max(...all.map((f) => f.x + f.w)) / 16) * 16);
  const y1 = Math.min(height, Math.ceil(Math.max(...all.map((f) => f.y + f.h)) / 16) * 16);
  const face = Number(base.settings.faceQpOffset);
  const bg = Number(base.settings.backgroundQpOffset);
  return { ...base, segments: [{ startFrame: 0, endFrame: frameCount, regions: [
    { x: x0, y: y0, w: x1 - x0, h: y1 - y0, qpOffset: face, kind: 'face' },
    { x: 0, y: 0, w: width, h: height, qpOffset: bg, kind: 'background' },
  ] }] };
}

const report: Record<string, unknown> = { date: new Date().toISOString(), crfs: CRFS, clips: {} };
for (const clip of clips) {
  console.log(`\n== ${clip.name} (${clip.file})`);
  const [, x265Seconds] = await seconds(async () => execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', clip.file, '-an', '-c:v', 'libx265', '-preset', 'medium', '-x265-params', 'log-level=error', join(out, 'plain.mp4')]));
  const [plan, analysisSeconds] = await seconds(() => analyze(clip.file));
  let expected = 0, hit = 0, falsePositives = 0;
  for (const d of plan.detections) {
    const want = clip.faces(d.time);
    expected += want.length;
    hit += want.filter(([x, y, tol]) => d.faces.some((f) => near(centre(f), [x, y], Math.max(tol, f.w * 0.5)))).length;
    falsePositives += d.faces.filter((f) => !want.some(([x, y, tol]) => near(centre(f), [x, y], Math.max(tol, f.w * 0.5)))).length;
  }
  const speed = {
    frames: plan.input.frameCount,
    analysisSeconds: +analysisSeconds.toFixed(2),
    analysisFps: +(plan.input.frameCount / analysisSeconds).toFixed(1),
    x265MediumSeconds: +x265Seconds.toFixed(2),
    analysisToEncodeRatio: +(analysisSeconds / x265Seconds).toFixed(2),
    faceRecall: +(hit / expected).toFixed(3),
    falsePositivesPerSample: +(falsePositives / plan.detections.length).toFixed(3),
  };
  console.table([speed]);

  const curves: Record<string, { crf: number; kbps: number; psnr: number; facePsnr: number; backgroundPsnr: number; encodeSeconds: number }[]> = {};
  const variants: [string, 'none' | 'faces', Plan | undefined][] = [['uniform', 'none', undefined], ['static-box', 'faces', staticPlan(plan)], ['tracked', 'faces', plan]];
  for (const [name, roi, p] of variants) {
    curves[name] = [];
    for (const crf of CRFS) {
      const file = join(out, `${clip.name}-${name}-${crf}.mp4`);
      const r = await encode(clip.file, file, { force: true, roi, crf, plan: p });
      const q = await measureQuality(clip.file, file, plan, bins);
      curves[name]!.push({ crf, kbps: +r.bitrateKbps.toFixed(1), psnr: +q.psnr.toFixed(3), facePsnr: +q.facePsnr.toFixed(3), backgroundPsnr: +q.backgroundPsnr.toFixed(3), encodeSeconds: +r.encodeSeconds.toFixed(2) });
    }
  }
  const bd = (name: string, key: 'psnr' | 'facePsnr' | 'backgroundPsnr') =>
    +bdRate(curves.uniform!.map((c) => ({ rate: c.kbps, quality: c[key] })), curves[name]!.map((c) => ({ rate: c.kbps, quality: c[key] }))).toFixed(1);
  const table = ['static-box', 'tracked'].map((name) => ({
    variant: name,
    'BD face PSNR %': bd(name, 'facePsnr'),
    'BD full PSNR %': bd(name, 'psnr'),
    'BD background PSNR %': bd(name, 'backgroundPsnr'),
    'bg PSNR @28': curves[name]![1]!.backgroundPsnr,
    'uniform bg @28': curves.uniform![1]!.backgroundPsnr,
  }));
  console.table(table);
  const encodeTime = (name: string) => curves[name]!.reduce((s, c) => s + c.encodeSeconds, 0);
  const roiEncodeRatio = +(encodeTime('tracked') / encodeTime('uniform')).toFixed(2);
  console.log(`encode wall time, ROI / uniform: ${roiEncodeRatio}`);
  (report.clips as Record<string, unknown>)[clip.name] = { speed, bdRate: table, roiEncodeRatio, curves, settings: plan.settings };
}
writeFileSync(join(out, 'bench.json'), `${JSON.stringify(report, null, 2)}\n`);
console.log(`\nwrote ${join(out, 'bench.json')}`);
