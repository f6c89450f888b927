// npm run bench: speed, recall and rate-quality numbers on the dev corpus, all built from the
// repository's own media (samples/, and the street photo scripts/test-media.sh fetches): the talking
// head, the dev composite, a fast pan, a 1080p camera-like clip and a no-people street clip for false positives. Runs
// `compare` on each clip, adds a static-box and a faces+saliency variant against the same uniform
// encodes, prints tables and writes bench-output/bench.json to diff between versions. Numbers, not
// pass/fail: targets are judged by people reading them.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveBinaries } from '../src/media/binaries.js';
import type { Plan } from '../src/plan/plan.js';
import { bdRate } from '../src/report/bdrate.js';
import { compare } from '../src/runners/compare.js';
import type { Report } from '../src/report/report-schema.js';
import { measuredEncode, type Point as CurvePoint } from './bench-curve.js';
import { buildCli, timeAnalysis, type SpeedVariant } from './bench-speed.js';

const out = 'bench-output';
mkdirSync(out, { recursive: true });
// The same files the tests use; the street photo comes from Debian's opencv-doc on first use.
execFileSync('bash', [join('scripts', 'test-media.sh')], { stdio: 'inherit' });
const street = join('test-media', 'street.jpg');
const headFull = join('samples', 'talking-head-full.mp4');
const bins = resolveBinaries();
const round = (v: number, d = 2) => (Number.isFinite(v) ? Math.round(v * 10 ** d) / 10 ** d : null);
// `npm run bench -- --only distributed` (or BENCH_ONLY=distributed) runs one section alone.
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : process.env.BENCH_ONLY;

const centre = (b: { x: number; y: number; w: number; h: number }) => [b.x + b.w / 2, b.y + b.h / 2] as const;
const near = (a: readonly number[], b: readonly number[], tol: number) => Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!) <= tol;

interface Clip {
  name: string;
  file: string;
  /** Expected face centres and a tolerance at time t (none for the no-people clip). */
  faces: (t: number) => [number, number, number][];
  /** Run compare and the rate-quality variants (not for the no-people clip). */
  rateQuality: boolean;
  /** Names of the expected faces, in the order `faces` lists them, for recall per face. */
  faceNames?: string[];
}

const clips: Clip[] = [];
const head = headFull;
clips.push({ name: 'talking-head', file: head, faces: () => [[205, 188, 30]], rateQuality: true });
// The bundled sample (its first 10 s): short, where fixed costs weigh most.
clips.push({ name: 'talking-head (sample)', file: join('samples', 'talking-head.mp4'), faces: () => [[205, 188, 30]], rateQuality: false });
{
  // Camera-like 1080p: H.264 at 30 fps with a long GOP (300 frames), a slow pan across the street
  // and a ~130 px face moving slowly over it. Speed only: its rate-quality would add minutes.
  const file = join(out, 'camera-1080p.mp4');
  if (!existsSync(file)) {
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-loop', '1', '-framerate', '30', '-i', street, '-i', headFull, '-filter_complex',
      "[0]scale=2400:-2,crop=1920:1080:x='100+30*t':y='200+8*t',format=yuv420p[bg];[1]scale=640:480[f];[bg][f]overlay=x='500+40*t':y=300:shortest=1,format=yuv420p",
      '-t', '10', '-r', '30', '-c:v', 'libx264', '-preset', 'medium', '-crf', '20', '-g', '300', file]);
  }
  clips.push({ name: 'camera 1080p', file, faces: (t) => [[500 + 40 * t + 205 * 1.6, 300 + 188 * 1.6, 40]], rateQuality: false });
}
{
  const file = join(out, 'dev-composite.mkv');
  if (!existsSync(file)) execFileSync('bash', [join('test', 'fixtures', 'make-dev-composite.sh'), file]);
  clips.push({
    name: 'dev-composite',
    file,
    rateQuality: true,
    faceNames: ['~90 px', '~50 px', '~30 px'],
    faces: (t) => [
      { x: 80 + 40 * t, y: 300, w: 360, h: 270, flip: false },
      { x: 1000 - 60 * t, y: 80 + 12 * t, w: 200, h: 150, flip: true },
      { x: 700, y: 560, w: 120, h: 90, flip: false },
    ].map((p) => [p.x + p.w * (p.flip ? 0.485 : 0.515), p.y + p.h * 0.625, p.w * 0.15] as [number, number, number]),
  });
}
{
  // The critics' hard case: the camera pans back and forth across the street while a ~70 px face
  // crosses the frame at ~9 px a frame and bobs up and down.
  const file = join(out, 'fast-pan.mp4');
  if (!existsSync(file)) {
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-loop', '1', '-framerate', '25', '-i', street, '-i', headFull, '-filter_complex',
      "[0]scale=1920:-2,crop=1280:720:x='320+300*sin(t*1.3)':y='40+20*t',format=yuv420p[bg];[1]trim=start=6,setpts=PTS-STARTPTS,scale=300:225[f];" +
      "[bg][f]overlay=x='60+220*t':y='250+120*sin(2.2*t)':shortest=1,format=yuv420p",
      '-t', '4', '-r', '25', '-c:v', 'libx264', '-crf', '10', '-preset', 'veryfast', file]);
  }
  clips.push({
    name: 'fast-pan',
    file,
    rateQuality: true,
    faces: (t) => [[60 + 220 * t + 300 * 0.515, 250 + 120 * Math.sin(2.2 * t) + 225 * 0.625, 20]],
  });
}
{
  const file = join(out, 'street.mp4');
  if (!existsSync(file)) execFileSync('ffmpeg', ['-v', 'error', '-y', '-loop', '1', '-i', street, '-t', '4', '-r', '25', '-vf', 'scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p', '-c:v', 'libx264', '-crf', '18', file]);
  clips.push({ name: 'street (no people)', file, faces: () => [], rateQuality: false });
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const v = await fn();
  return [v, (performance.now() - t) / 1000];
}

/** Share of samples in which each expected face was found, overall and per named face; detections matching no face. */
function recall(clip: Clip, plan: Plan) {
  let expected = 0, hit = 0, falsePositives = 0;
  const hitsPerFace = new Array<number>(clip.faceNames?.length ?? 0).fill(0);
  for (const d of plan.detections) {
    const want = clip.faces(d.time);
    const found = want.map(([x, y, tol]) => d.faces.some((f) => near(centre(f), [x, y], Math.max(tol, f.w * 0.5))));
    expected += want.length;
    hit += found.filter(Boolean).length;
    found.forEach((ok, i) => (hitsPerFace[i] = (hitsPerFace[i] ?? 0) + (ok ? 1 : 0)));
    falsePositives += d.faces.filter((f) => !want.some(([x, y, tol]) => near(centre(f), [x, y], Math.max(tol, f.w * 0.5)))).length;
  }
  const perFace = Object.fromEntries((clip.faceNames ?? []).map((name, i) => [`recall ${name}`, round(hitsPerFace[i]! / plan.detections.length, 3)]));
  return { recall: expected ? round(hit / expected, 3) : null, ...perFace, 'FP/sample': round(falsePositives / plan.detections.length, 3) };
}

/** One box around every face detection of the clip, at the plan's offsets: the hand-placed alternative to tracking. */
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

/**
 * Encodes with a given plan at the report's CRFs; measured against the report's own (faces) plan so
 * every variant is judged on the same pixels, at the stream's bitrate as the report's points.
 */
async function variantCurve(clip: Clip, name: string, plan: Plan, report: Report, judge: Plan): Promise<CurvePoint[]> {
  const curve: CurvePoint[] = [];
  for (const crf of report.settings.crfs) curve.push(await measuredEncode(clip.file, join(out, `${clip.name}-${name}-${crf}.mp4`), judge, { crf, plan }, bins));
  return curve;
}

function reportCurve(report: Report, mode: 'uniform' | 'roi'): CurvePoint[] {
  // The grid only: the bitrate-matching extra encode is for the report's side-by-side.
  return report.points.filter((p) => p.mode === mode && !p.matching).map((p) => ({
    crf: p.crf ?? NaN, kbps: p.bitrateKbps, psnr: p.psnr ?? NaN, facePsnr: p.facePsnr ?? NaN, faceP5: p.facePsnrP5 ?? NaN, faceSsim: p.faceSsim ?? NaN, backgroundPsnr: p.backgroundPsnr ?? NaN, encodeSeconds: p.encodeSeconds,
  }));
}

const bd = (anchor: CurvePoint[], test: CurvePoint[], key: 'facePsnr' | 'psnr' | 'faceSsim' | 'backgroundPsnr') =>
  round(bdRate(anchor.map((c) => ({ rate: c.kbps, quality: c[key] })), test.map((c) => ({ rate: c.kbps, quality: c[key] }))), 1);

const results: Record<string, unknown> = { date: new Date().toISOString(), clips: {} };
const speedRows: Record<string, unknown>[] = [];
const stageRows: Record<string, unknown>[] = [];
// The default detector is timed three times against x265 (medians); the other variants once, for context.
const speedVariants: SpeedVariant[] = [
  { name: 'blazeface', args: [], runs: 3 },
  { name: 'mediapipe-full', args: ['--face-detector', 'mediapipe-full'], runs: 1 },
  { name: 'saliency only', args: ['--roi', 'saliency'], runs: 1 },
  { name: 'faces,saliency', args: ['--roi', 'faces,saliency'], runs: 1 },
];
// Sections that need neither the built CLI nor the per-clip analysis timings and compare runs.
const alone = ['distributed', 'match', 'curve', 'size', 'x264', 'x264-offsets'];
if (only !== 'distributed' && !only?.startsWith('x264')) buildCli();
const bdRows: Record<string, unknown>[] = [];
for (const clip of only && alone.includes(only) ? [] : clips) {
  console.error(`== ${clip.name} (${clip.file})`);
  const plans: Record<string, Plan> = {};
  let x265Seconds = 0;
  for (const variant of speedVariants) {
    if (clip.name === 'camera 1080p' && variant.name !== 'blazeface') continue; // context variants on the dev clips only
    const r = timeAnalysis(clip, variant, out);
    plans[variant.name] = r.plan;
    if (variant.name === 'blazeface') x265Seconds = r.x265Seconds;
    const a = r.plan.analysis;
    speedRows.push({
      clip: clip.name,
      analysis: variant.name,
      seconds: round(r.analysisSeconds),
      'x265 medium s': round(r.x265Seconds),
      '÷ x265 medium': round(r.ratio),
      runs: r.runs,
      samples: r.plan.detections.length,
      'full scans': a?.fullScans,
      'follow passes': a?.followPasses,
      'carried faces': a?.carriedFaces,
      'decoded frames': a?.decodedFrames,
      'ms/sample': round((1000 * r.analysisSeconds) / r.plan.detections.length, 1),
      fps: round(r.plan.input.frameCount / r.analysisSeconds, 1),
      ...(variant.name === 'saliency only' ? {} : recall(clip, r.plan)),
    });
    if (a) stageRows.push({ clip: clip.name, analysis: variant.name, ...a.stages, 'max queued': a.maxQueued });
  }
  const entry: Record<string, unknown> = { x265MediumSeconds: round(x265Seconds), speed: speedRows.filter((r) => r.clip === clip.name), stages: stageRows.filter((r) => r.clip === clip.name) };
  if (only === 'speed') {
    (results.clips as Record<string, unknown>)[clip.name] = entry;
    continue;
  }
  if (clip.rateQuality) {
    const faces = plans.blazeface!;
    const [report, compareSeconds] = await timed(() => compare(clip.file, join(out, `${clip.name}-report`), { plan: faces, force: true }));
    const uniform = reportCurve(report, 'uniform');
    const tracked = reportCurve(report, 'roi');
    const staticBox = await variantCurve(clip, 'static-box', staticPlan(faces), report, faces);
    const withSaliency = await variantCurve(clip, 'faces-saliency', plans['faces,saliency']!, report, faces);
    const at = (c: CurvePoint[], crf: number) => c.find((p) => p.crf === crf)!;
    const mid = report.settings.crfs[1]!;
    for (const [variant, curve, anchor, anchorName] of [
      ['tracked faces (default)', tracked, uniform, 'uniform'],
      ['static box', staticBox, uniform, 'uniform'],
      ['faces,saliency', withSaliency, uniform, 'uniform'],
      ['faces,saliency', withSaliency, tracked, 'tracked faces'],
    ] as const) {
      bdRows.push({
        clip: clip.name,
        variant,
        against: anchorName,
        'BD face PSNR %': bd(anchor, curve, 'facePsnr'),
        'BD face SSIM %': bd(anchor, curve, 'faceSsim'),
        'BD full PSNR %': bd(anchor, curve, 'psnr'),
        [`bg PSNR @${mid}`]: round(at(curve, mid).backgroundPsnr),
        [`anchor bg @${mid}`]: round(at(anchor, mid).backgroundPsnr),
        // The 5th-percentile frame's face PSNR: where motion would show as dips in face quality.
        [`face p5 @${mid}`]: round(at(curve, mid).faceP5),
        [`anchor face p5 @${mid}`]: round(at(anchor, mid).faceP5),
      });
    }
    const encodeTime = (c: CurvePoint[]) => c.reduce((s, p) => s + p.encodeSeconds, 0);
    Object.assign(entry, {
      report: join(out, `${clip.name}-report`, 'index.html'),
      compareSeconds: round(compareSeconds),
      bdRate: report.bdRate,
      roiEncodeTimeRatio: round(encodeTime(tracked) / encodeTime(uniform)),
      curves: { uniform, tracked, staticBox, withSaliency },
      settings: faces.settings,
    });
  }
  (results.clips as Record<string, unknown>)[clip.name] = entry;
}

/** A table with its title, when the sections that ran produced rows for it. */
const table = (title: string, rows: Record<string, unknown>[]) => {
  if (rows.length === 0) return;
  console.log(`\n${title}`);
  console.table(rows);
};
table('Analysis speed (roi-encode analyze vs plain x265 medium, whole processes, same run) and recall (expected faces found per sample; FP: detections matching no face)', speedRows);
table('Where analysis time goes (seconds per stage, in-process; decodeWait: decoding not hidden behind detection)', stageRows);
table('BD-rate (negative = fewer bits for the same quality), CRF 22/26/30/34, face masks from the tracked-faces plan', bdRows);
for (const [name, entry] of Object.entries(results.clips as Record<string, { roiEncodeTimeRatio?: number; report?: string }>)) {
  if (entry.roiEncodeTimeRatio !== undefined) console.log(`${name}: encode wall time ROI / uniform ${entry.roiEncodeTimeRatio}; report ${entry.report}`);
}
results.speed = speedRows;
results.stages = stageRows;
results.bdRate = bdRows;
if (!only || only === 'match') {
  // --match-crf 23 against uniform CRF 23 (x265 medium), both as CLI processes in the same run; both
  // measured on the whole video with the same plan's face masks (`npm run bench -- --only match`).
  const { benchMatch } = await import('./bench-match.js');
  const rows = await benchMatch(clips.filter((c) => c.rateQuality || c.name === 'camera 1080p'), out, bins);
  console.log('\n--match-crf 23 against uniform CRF 23 (x265 medium; face PSNR measured on the whole video; time = whole CLI runs)');
  console.table(rows);
  if (only) Object.assign(results, existsSync(join(out, 'bench.json')) ? JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as object : {});
  results.match = rows;
}
if (!only || only === 'curve') {
  // The face-quality-per-bit curve (issue 13): strengths 0.5/1/1.5 on talking heads (a plain
  // backdrop built here, the webcam one) and a face over a busy pan (`npm run bench -- --only curve`).
  const { benchCurve } = await import('./bench-curve.js');
  const backdrop = join(out, 'backdrop.mp4');
  if (!existsSync(backdrop) && existsSync(head)) {
    // 360x288: the talking head's person cut out of the room and set on a plain, slightly noisy backdrop.
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', head, '-f', 'lavfi', '-i', 'color=c=0x7f8c99:s=360x288:r=25', '-filter_complex',
      "[1]geq=lum='120+10*Y/H':cb=132:cr=125,noise=alls=4:allf=t[bg];[0]crop=200:230:105:60,scale=188:216[p];[bg][p]overlay=x=86:y=72:shortest=1,format=yuv420p",
      '-t', '12', '-r', '25', '-c:v', 'libx264', '-crf', '12', '-preset', 'veryfast', backdrop]);
  }
  const curveClips = [{ name: 'backdrop', file: backdrop }, ...clips.filter((c) => c.name === 'talking-head' || c.name === 'fast-pan')];
  // Today's default against the curve it replaced (face −4, background +4, keyframes as every frame).
  const before = { name: 'before: face -4, background +4', options: { faceQpOffset: -4, keyframeMaxQpOffset: 51 } };
  const { rows, curves, gains } = await benchCurve(curveClips, [before, { name: 'default', options: {} }], out, bins);
  console.log('\nFace-quality-per-bit curve: BD-rate against uniform x265 medium (CRF 22/26/30/34) at strengths 0.25, 0.5, 1, 1.5');
  console.table(rows);
  console.log(`Face saving at equal full-frame cost (the default at strength 1 against the earlier curve, linear between its points); charts in ${join(out, 'curve.html')}`);
  console.table(gains);
  if (only) Object.assign(results, existsSync(join(out, 'bench.json')) ? JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as object : {});
  results.curve = { rows, curves, gains };
}
if (!only || only === 'x264') {
  // x264 ROI against uniform x264 on the dev clips (docs/web-and-hdr.md): BD-rates and the face gain
  // at the same size (`npm run bench -- --only x264`).
  const { benchX264 } = await import('./bench-x264.js');
  const rows = await benchX264(clips.filter((c) => c.rateQuality), out, bins);
  console.log('\nx264 ROI against uniform x264 medium: BD-rate at CRF 22/26/30/34; ROI at CRF 26 against uniform two-pass x264 at its video bitrate');
  console.table(rows);
  if (only) Object.assign(results, existsSync(join(out, 'bench.json')) ? JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as object : {});
  results.x264 = rows;
}
if (only === 'x264-offsets') {
  // The sweep behind X264.defaultOffsets (src/encode/codec.ts), on asked only: 88 encodes. x265's
  // pair first: the others are read against its curve (strengths 0.25 to 1.5) at equal full-frame cost.
  const { benchX264Offsets } = await import('./bench-x264.js');
  const candidates = [{ face: -2, background: 4 }, { face: -3, background: 4 }, { face: -2, background: 6 }, { face: -4, background: 4 }, { face: -1, background: 3 }];
  const sweepClips = [clips.find((c) => c.name === 'talking-head (sample)')!, clips.find((c) => c.name === 'fast-pan')!];
  const rows = await benchX264Offsets(sweepClips, candidates, out, bins);
  console.log('\nx264 offsets (face, background) at strength 1: BD-rate against uniform x264 medium, CRF 22/26/30/34; points better = face saving over the (-2, +4) curve at the same full-frame cost');
  console.table(rows);
  Object.assign(results, existsSync(join(out, 'bench.json')) ? JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as object : {});
  results.x264Offsets = rows;
}
if (!only || only === 'size') {
  // Encode to a size (issue 24): two-pass ROI against uniform at the sizes of CRF 26 and 30, and --target-size's time (`npm run bench -- --only size`).
  const { benchSize } = await import('./bench-size.js');
  const size = await benchSize(clips.filter((c) => (process.env.BENCH_SIZE_CLIPS ?? 'talking-head (sample),fast-pan').split(',').includes(c.name)), out, bins);
  if (only) Object.assign(results, existsSync(join(out, 'bench.json')) ? JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as object : {});
  results.size = size;
}
if (!only || only === 'distributed') {
  const { benchDistributed } = await import('./bench-distributed.js');
  const distributed = await benchDistributed(out, headFull);
  // Alone, it updates its part of an earlier bench.json.
  if (only) Object.assign(results, existsSync(join(out, 'bench.json')) ? JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as object : {});
  results.distributed = distributed;
}
writeFileSync(join(out, 'bench.json'), `${JSON.stringify(results, null, 2)}\n`);
console.log(`\nwrote ${join(out, 'bench.json')}`);
