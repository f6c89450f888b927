// Encode to a size (issue 24; npm run bench -- --only size). Per clip: uniform CRF 26 and CRF 30
// (x265 medium, video only) set two budgets, their video bitrates; at each, uniform two-pass
// against ROI two-pass, both judged with the same plan's face masks. Then `targetSize` at the CRF 26
// file's size (bytes against asked, passes) and its wall time against a one-pass ROI CRF 26 encode
// of the same clip, with where the time goes, from the progress events' pass labels.
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { analyze } from '../src/analysis/analyze.js';
import type { Binaries } from '../src/media/binaries.js';
import type { ProgressEvent } from '../src/media/progress.js';
import { videoStreamBytes } from '../src/media/probe.js';
import type { Plan } from '../src/plan/plan.js';
import { measureQuality } from '../src/report/metrics.js';
import { encode, type EncodeOptions, type EncodeResult } from '../src/runners/encode.js';
import { measuredEncode } from './bench-curve.js';

const CRFS = [26, 30] as const;
/** The middle value (of an odd count: the bench's 3 runs). */
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const round = (v: number, d = 2) => (Number.isFinite(v) ? Math.round(v * 10 ** d) / 10 ** d : null);

interface Measured { kbps: number; psnr: number; facePsnr: number; faceSsim: number }

/** A two-pass (or size) encode, video only, measured as measuredEncode measures a CRF one. */
async function measuredRated(source: string, file: string, judge: Plan, options: EncodeOptions, bins: Binaries): Promise<Measured & { result: EncodeResult }> {
  const result = await encode(source, file, { ...options, videoOnly: true, force: true });
  const q = await measureQuality(source, file, judge, bins);
  const { bytes } = await videoStreamBytes(file, bins);
  return { kbps: (bytes * 8) / 1000 / judge.input.durationSeconds, psnr: q.psnr, facePsnr: q.facePsnr, faceSsim: q.faceSsim, result };
}

interface Timed { result: EncodeResult; wall: number; cpu: number; phases: Record<string, number>; cpuPhases: Record<string, number> }

const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
/**
 * CPU seconds of this process and of its children that have exited (ffmpeg, ffprobe), from Linux's
 * /proc/self/stat (utime, stime, cutime, cstime): on a shared machine wall time follows the other
 * load, CPU time much less.
 */
function cpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14–17 of proc(5), counted from the state (field 3).
  return fields.slice(11, 15).reduce((a, b) => a + Number(b), 0) / ticksPerSecond;
}

const phaseName = (label: string) => (/correcting/.test(label) ? 'correction' : /^pass 1/.test(label) ? 'first pass' : /^pass 2/.test(label) ? 'second pass' : label);

/**
 * Wall and CPU seconds of one encode() and of its phases: the analysis (result.analysisSeconds) and
 * each x265 pass, named by its progress label. A pass starts where its first event says its meter
 * started (the event's time less its elapsedSeconds: the meter is made just before ffmpeg is
 * spawned) and ends at its last event (sent once ffmpeg has exited). Its CPU is the difference
 * between those events: a child's CPU is counted once it has exited, so the first event has none
 * of this pass's ffmpeg and the last all of it. 'other' is the rest: probing, reading packet sizes
 * for the budget and the result, writing the file into place (in CPU, with the analysis).
 */
async function timedEncode(source: string, file: string, options: EncodeOptions): Promise<Timed> {
  const spans = new Map<string, { start: number; end: number; cpuStart: number; cpuEnd: number }>();
  const onProgress = (e: ProgressEvent) => {
    if (e.stage !== 'encode') return;
    const now = performance.now();
    const cpuNow = cpuSeconds();
    const key = e.label ?? 'one pass';
    const span = spans.get(key) ?? { start: now - e.elapsedSeconds * 1000, end: now, cpuStart: cpuNow, cpuEnd: cpuNow };
    span.end = now;
    span.cpuEnd = cpuNow;
    spans.set(key, span);
  };
  const t = performance.now();
  const cpu0 = cpuSeconds();
  const result = await encode(source, file, { ...options, videoOnly: true, force: true, onProgress });
  const wall = (performance.now() - t) / 1000;
  const cpu = cpuSeconds() - cpu0;
  const phases: Record<string, number> = { analysis: result.analysisSeconds };
  const cpuPhases: Record<string, number> = {};
  for (const [label, { start, end, cpuStart, cpuEnd }] of spans) {
    const name = phaseName(label);
    phases[name] = (phases[name] ?? 0) + (end - start) / 1000;
    cpuPhases[name] = (cpuPhases[name] ?? 0) + cpuEnd - cpuStart;
  }
  phases.other = wall - Object.values(phases).reduce((a, b) => a + b, 0);
  cpuPhases['analysis and other'] = cpu - Object.values(cpuPhases).reduce((a, b) => a + b, 0);
  return { result, wall, cpu, phases, cpuPhases };
}

export async function benchSize(clips: { name: string; file: string }[], out: string, bins: Binaries, preset = 'medium', runs = 3) {
  const rows: Record<string, unknown>[] = [];
  const sizeRows: Record<string, unknown>[] = [];
  const speedRows: Record<string, unknown>[] = [];
  for (const clip of clips) {
    console.error(`== size: ${clip.name}`);
    const tag = clip.name.replace(/\W+/g, '-');
    const judge = await analyze(clip.file);
    const crfFiles: Record<number, string> = {};
    for (const crf of CRFS) {
      crfFiles[crf] = join(out, `size-${tag}-crf${crf}.mp4`);
      const anchor = await measuredEncode(clip.file, crfFiles[crf], judge, { roi: 'none', crf, preset }, bins);
      // x265 takes whole kbit/s; asking both two-pass encodes for the same number is what matters.
      const bitrate = Math.round(anchor.kbps) * 1000;
      const uniform = await measuredRated(clip.file, join(out, `size-${tag}-uniform-${crf}.mp4`), judge, { roi: 'none', bitrate, preset }, bins);
      const roi = await measuredRated(clip.file, join(out, `size-${tag}-roi-${crf}.mp4`), judge, { plan: judge, bitrate, preset }, bins);
      rows.push({
        clip: clip.name,
        'at size of': `CRF ${crf}`,
        'asked kbit/s': bitrate / 1000,
        'uniform kbit/s': round(uniform.kbps, 1),
        'ROI kbit/s': round(roi.kbps, 1),
        'face PSNR uniform': round(uniform.facePsnr),
        'face PSNR ROI': round(roi.facePsnr),
        'Δ face PSNR': round(roi.facePsnr - uniform.facePsnr),
        'full PSNR uniform': round(uniform.psnr),
        'full PSNR ROI': round(roi.psnr),
        'Δ full PSNR': round(roi.psnr - uniform.psnr),
        'face SSIM uniform': round(uniform.faceSsim, 4),
        'face SSIM ROI': round(roi.faceSsim, 4),
        'Δ face SSIM': round(roi.faceSsim - uniform.faceSsim, 4),
        // The CRF encode itself, for how far two-pass lands from the quality it took its rate from.
        [`CRF face PSNR`]: round(anchor.facePsnr),
        [`CRF full PSNR`]: round(anchor.psnr),
      });
    }
    // Speed: a one-pass ROI CRF 26 encode against --target-size at the CRF 26 file's size, both with
    // their own analysis (as the CLI runs them), one after the other, models loaded already.
    // The machine is shared: the pair runs `runs` times, and the pair with the median ratio is reported.
    const asked = statSync(crfFiles[26]!).size;
    // What if: the same size with x265's fast first pass (slow-firstpass=0: x265 lightens only pass 1's
    // analysis; the second pass is as before), timed in the same rounds.
    const pairs: [Timed, Timed, Timed][] = [];
    for (let i = 0; i < runs; i++) {
      const one = await timedEncode(clip.file, join(out, `size-${tag}-roi-crf26.mp4`), { crf: 26, preset });
      const sized = await timedEncode(clip.file, join(out, `size-${tag}-target.mp4`), { targetSize: asked, preset });
      pairs.push([one, sized, await timedEncode(clip.file, join(out, `size-${tag}-target-fast1.mp4`), { targetSize: asked, preset, x265Params: { 'slow-firstpass': 0 } })]);
    }
    const ratios = pairs.map(([one, sized]) => sized.wall / one.wall);
    const [one, sized, fast] = pairs[ratios.indexOf(median(ratios))]!;
    const fastRatios = pairs.map(([o, , f]) => f.wall / o.wall);
    const qFast = await measureQuality(clip.file, fast.result.output, judge, bins);
    // Every pass decodes the input again (and the analysis once more): the decode alone, for scale.
    const t = performance.now();
    execFileSync(bins.ffmpeg, ['-v', 'error', '-i', clip.file, '-map', '0:v:0', '-f', 'null', '-']);
    const decodeSeconds = (performance.now() - t) / 1000;
    const q = await measureQuality(clip.file, sized.result.output, judge, bins);
    const q26 = await measureQuality(clip.file, crfFiles[26]!, judge, bins);
    sizeRows.push({
      clip: clip.name,
      'asked B (uniform CRF 26 file)': asked,
      'came out B': sized.result.bytes,
      'share of asked': round(sized.result.bytes / asked, 4),
      passes: sized.result.passes,
      'requested kbit/s': sized.result.requestedBitrateKbps,
      'video kbit/s': round(sized.result.videoBitrateKbps, 1),
      'face PSNR uniform CRF 26': round(q26.facePsnr),
      'face PSNR target size': round(q.facePsnr),
      'Δ face PSNR': round(q.facePsnr - q26.facePsnr),
      'Δ full PSNR': round(q.psnr - q26.psnr),
      ...(sized.result.sizeShortfall ? { shortfall: sized.result.sizeShortfall } : {}),
    });
    const p = (r: Timed, k: string) => round(r.phases[k] ?? 0);
    speedRows.push({
      clip: clip.name,
      preset,
      'one-pass ROI CRF 26 s': round(one.wall),
      'target size s': round(sized.wall),
      ratio: round(sized.wall / one.wall),
      'all ratios': ratios.map((r) => round(r)).join(' '),
      'CPU ratio (median)': round(median(pairs.map(([o, s]) => s.cpu / o.cpu))),
      'decode alone (in every pass)': round(decodeSeconds),
      'one-pass: analysis': p(one, 'analysis'),
      'one-pass: x265': p(one, 'one pass'),
      'one-pass: other': p(one, 'other'),
      'size: analysis': p(sized, 'analysis'),
      'size: first pass': p(sized, 'first pass'),
      'size: second pass': p(sized, 'second pass'),
      'size: correction': p(sized, 'correction'),
      'size: other': p(sized, 'other'),
      passes: sized.result.passes,
      'one-pass CPU s': round(one.cpu),
      'size CPU s': round(sized.cpu),
      'size CPU: first pass': round(sized.cpuPhases['first pass'] ?? 0),
      'size CPU: second pass': round(sized.cpuPhases['second pass'] ?? 0),
      'size CPU: correction': round(sized.cpuPhases.correction ?? 0),
      'size CPU: analysis and other': round(sized.cpuPhases['analysis and other'] ?? 0),
      'one-pass CPU: x265': round(one.cpuPhases['one pass'] ?? 0),
      'fast 1st pass: ratio (median)': round(median(fastRatios)),
      'fast 1st pass: first pass s': p(fast, 'first pass'),
      'fast 1st pass: passes': fast.result.passes,
      'fast 1st pass: Δ face PSNR': round(qFast.facePsnr - q.facePsnr),
      'fast 1st pass: Δ full PSNR': round(qFast.psnr - q.psnr),
      'fast 1st pass: B': fast.result.bytes,
    });
  }
  console.log('\nTwo-pass at the video bitrate of uniform CRF 26 and CRF 30 (x265 medium, video only): ROI against uniform, same face masks');
  console.table(rows);
  console.log('\n--target-size at the uniform CRF 26 file\'s size (ROI, own analysis)');
  console.table(sizeRows);
  console.log(`\nWall time: --target-size against a one-pass ROI CRF 26 encode of the same clip (seconds, one process, models loaded; the median of ${runs} pairs)`);
  console.table(speedRows);
  return { twoPass: rows, targetSize: sizeRows, speed: speedRows };
}
