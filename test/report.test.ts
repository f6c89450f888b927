import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import sharp from 'sharp';
import { bdRate, measureQuality, reportSchema, type Plan, type Report } from '../src/index.js';
import { boxesAt, FaceMasks, lowPercentile, pairBoxes } from '../src/report/metrics.js';
import { resolveBinaries } from '../src/media/binaries.js';
import { crfForBitrate, matchFor, showcaseUniform } from '../src/report/matching.js';
import { heatmapImage, heatmapLegend } from '../src/report/images.js';
import { parseCrfs } from '../src/runners/compare.js';
import { overTimeSpec } from '../src/report/charts.js';
import { parseEncoderSei, readEncoderInfo } from '../src/report/encoder-info.js';
import { videoStreamBytes } from '../src/media/probe.js';
import { SsimPlane, newSsimSums } from '../src/report/ssim.js';
import { cli, fixture, SAMPLE, watchPage, workDir } from './helpers.js';

const dir = workDir('report');
const bins = resolveBinaries();

/** A hand-made plan for a 128×96 clip with one face box, and no margins (face or background only). */
function syntheticPlan(frames: number, face: { x: number; y: number; w: number; h: number }): Plan {
  return {
    version: 1,
    input: { path: 'synthetic', width: 128, height: 96, rotation: 0, frameRate: 25, frameCount: frames, durationSeconds: frames / 25 },
    settings: {},
    detections: [{ frame: 0, time: 0, faces: [{ ...face, score: 1 }] }],
    cuts: [],
    segments: [{ startFrame: 0, endFrame: frames, regions: [{ x: 0, y: 0, w: 128, h: 96, qpOffset: 0, kind: 'background' }] }],
    zones: [],
  };
}

// Mid-grey texture with no sample near 0 or 255, so offsets below never clip. Lossless FFV1.
const source = fixture(dir, 'source.mkv', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=128x96:rate=25:duration=0.4', '-vf', 'format=yuv420p,lutyuv=y=64+val/2:u=64+val/2:v=64+val/2', '-c:v', 'ffv1', out]);
const FACE = { x: 32, y: 16, w: 48, h: 48 };

describe('quality metrics on synthetic pairs with known answers', () => {
  it('identical clips: PSNR is Infinity (null in JSON) and SSIM is 1, everywhere', async () => {
    const q = await measureQuality(source, source, syntheticPlan(10, FACE), bins);
    assert.equal(q.frames, 10);
    assert.equal(q.psnr, Infinity);
    assert.equal(q.facePsnr, Infinity);
    assert.equal(q.backgroundPsnr, Infinity);
    assert.equal(q.ssim, 1);
    assert.equal(q.faceSsim, 1);
    assert.equal(q.backgroundSsim, 1);
  });

  it('a known error gives the expected PSNR: every sample off by 4 is 10·log10(255²/16) dB', async () => {
    const shifted = fixture(dir, 'shifted.mkv', (out) => ['-i', source, '-vf', 'lutyuv=y=val+4:u=val+4:v=val+4', '-c:v', 'ffv1', out]);
    const q = await measureQuality(source, shifted, syntheticPlan(10, FACE), bins);
    const expected = 10 * Math.log10((255 * 255) / 16);
    assert.ok(Math.abs(q.psnr - expected) < 0.01, `PSNR ${q.psnr} expected ${expected}`);
    assert.ok(Math.abs(q.facePsnr - expected) < 0.01, `face PSNR ${q.facePsnr}`);
    assert.ok(Math.abs(q.backgroundPsnr - expected) < 0.01, `background PSNR ${q.backgroundPsnr}`);
    assert.ok(Math.abs(q.check.psnr - expected) < 0.01, 'our own full-frame PSNR agrees');
    // Every luma sample off by 4 in every frame: Y-PSNR, the mean of per-frame luma PSNR, is the same.
    for (const v of [q.psnrY, q.facePsnrY, q.backgroundPsnrY]) assert.ok(Math.abs(v - expected) < 1e-9, `Y-PSNR ${v}`);
    // A constant shift leaves structure intact: SSIM drops only through the luminance term.
    assert.ok(q.faceSsim < 1 && q.faceSsim > 0.99, `face SSIM ${q.faceSsim}`);
  });

  it('a degraded face lowers face PSNR and SSIM and leaves the background untouched', async () => {
    const blurred = fixture(dir, 'face-blur.mkv', (out) => ['-i', source, '-filter_complex', `[0:v]split[a][b];[b]crop=${FACE.w}:${FACE.h}:${FACE.x}:${FACE.y},boxblur=4[f];[a][f]overlay=${FACE.x}:${FACE.y}`, '-c:v', 'ffv1', out]);
    const q = await measureQuality(source, blurred, syntheticPlan(10, FACE), bins);
    assert.equal(q.backgroundPsnr, Infinity, 'background pixels are unchanged');
    assert.equal(q.backgroundSsim, 1);
    assert.ok(q.facePsnr < 35, `face PSNR ${q.facePsnr}`);
    assert.ok(q.faceSsim < 0.9, `face SSIM ${q.faceSsim}`);
    assert.ok(q.facePsnrPerFrame.every((v) => Math.abs(v - q.facePsnr) < 3), 'every frame has the face');
  });

  it('a degraded salient region lowers salient PSNR, and without faces face PSNR is undefined', async () => {
    const blurred = fixture(dir, 'face-blur.mkv', (out) => ['-i', source, '-filter_complex', `[0:v]split[a][b];[b]crop=${FACE.w}:${FACE.h}:${FACE.x}:${FACE.y},boxblur=4[f];[a][f]overlay=${FACE.x}:${FACE.y}`, '-c:v', 'ffv1', out]);
    const plan = syntheticPlan(10, FACE);
    plan.detections = [{ frame: 0, time: 0, faces: [], salient: [{ ...FACE, score: 1 }] }];
    const q = await measureQuality(source, blurred, plan, bins);
    assert.ok(Number.isNaN(q.facePsnr), `face PSNR ${q.facePsnr}`);
    assert.ok(q.salientPsnr < 35, `salient PSNR ${q.salientPsnr}`);
    assert.ok(q.salientSsim < 0.9, `salient SSIM ${q.salientSsim}`);
    assert.equal(q.backgroundPsnr, Infinity, 'background pixels are unchanged');
  });

  it('measures a moving face where it is: boxes interpolated between samples, held across a cut', () => {
    const plan = syntheticPlan(20, FACE);
    plan.detections = [
      { frame: 0, time: 0, faces: [{ x: 0, y: 10, w: 20, h: 20, score: 1 }] },
      { frame: 8, time: 0.32, faces: [{ x: 32, y: 10, w: 20, h: 20, score: 1 }, { x: 100, y: 60, w: 20, h: 20, score: 1 }] },
      { frame: 16, time: 0.64, faces: [{ x: 10, y: 10, w: 20, h: 20, score: 1 }] },
    ];
    plan.cuts = [12];
    const masks = new FaceMasks(plan, 128, 96);
    assert.deepEqual(masks.facesAt(0), [{ x: 0, y: 10, w: 20, h: 20, score: 1 }]);
    // Frame 2: a quarter of the way; the face that only the next sample has is not there yet.
    assert.deepEqual(masks.facesAt(2), [{ x: 8, y: 10, w: 20, h: 20 }]);
    // Frame 6: three quarters; the new face has appeared.
    assert.deepEqual(masks.facesAt(6).map((b) => b.x), [24, 100]);
    // A scene cut at 12: frames before it keep the earlier sample's faces, frames after take the later ones.
    assert.deepEqual(masks.facesAt(11).map((b) => b.x), [32, 100]);
    assert.deepEqual(masks.facesAt(12).map((b) => b.x), [10]);
  });

  it('pairs boxes by track first, so a small fast face is followed however far it moves', () => {
    const box = (x: number, track?: number) => ({ x, y: 0, w: 20, h: 20, ...(track === undefined ? {} : { track }) });
    // Track 1 moves 100 px (5 widths) between samples; track 2 ends where track 3 begins (a face the
    // tracker lost and found again) and they pair by distance; track 4 ends far from anything.
    const pairing = pairBoxes([box(0, 1), box(200, 2), box(400, 4)], [box(100, 1), box(230, 3)]);
    assert.deepEqual(boxesAt(pairing, 0.5).map((b) => b.x), [50, 215]);
    assert.deepEqual(boxesAt(pairing, 0.25).map((b) => b.x), [25, 207.5, 400]);
    // Untracked boxes pair by distance, within twice the width.
    assert.equal(pairBoxes([box(0)], [box(30)]).pairs.length, 1);
    assert.equal(pairBoxes([box(0)], [box(50)]).pairs.length, 0);
  });

  it('Y-PSNR is the mean over frames of ffmpeg’s per-frame luma PSNR, not the pooled figure', async () => {
    // Frames of very different quality (a clean half, a noisy half) make the two conventions differ.
    const mixed = fixture(dir, 'mixed.mkv', (out) => ['-i', source, '-vf', "noise=alls=30:allf=t:enable='gte(n,5)'", '-c:v', 'ffv1', out]);
    const q = await measureQuality(source, mixed, syntheticPlan(10, FACE), bins);
    const statsFile = join(dir, 'psnr-stats.log');
    spawnSync('ffmpeg', ['-hide_banner', '-nostats', '-i', mixed, '-i', source, '-lavfi', `psnr=stats_file=${statsFile}`, '-f', 'null', '-'], { encoding: 'utf8' });
    const perFrame = readFileSync(statsFile, 'utf8').trim().split('\n').map((l) => /psnr_y:(inf|[\d.]+)/.exec(l)![1]!).map((v) => (v === 'inf' ? Infinity : Number(v)));
    assert.equal(perFrame.length, 10);
    assert.ok(perFrame.slice(0, 5).every((v) => v === Infinity), 'the first five frames are untouched');
    // Five identical frames: the per-frame mean is infinite (null in JSON), the pooled PSNR is not.
    assert.equal(q.psnrY, Infinity);
    assert.ok(Number.isFinite(q.psnr));
    const lossy = fixture(dir, 'lossy.mp4', (out) => ['-i', source, '-c:v', 'libx264', '-crf', '35', out]);
    const q2 = await measureQuality(source, lossy, syntheticPlan(10, FACE), bins);
    spawnSync('ffmpeg', ['-hide_banner', '-nostats', '-i', lossy, '-i', source, '-lavfi', `psnr=stats_file=${statsFile}`, '-f', 'null', '-'], { encoding: 'utf8' });
    const lossyFrames = readFileSync(statsFile, 'utf8').trim().split('\n').map((l) => Number(/psnr_y:([\d.]+)/.exec(l)![1]));
    const mean = lossyFrames.reduce((a, b) => a + b, 0) / lossyFrames.length;
    assert.ok(Math.abs(q2.psnrY - mean) < 0.01, `ours ${q2.psnrY} vs mean of ffmpeg's per-frame psnr_y ${mean}`);
    assert.ok(Math.abs(q2.psnrY - q2.psnr) > 0.01, `the conventions differ: Y-PSNR ${q2.psnrY}, pooled YUV ${q2.psnr}`);
  });

  it('our luma SSIM equals ffmpeg’s ssim filter on a real encode', async () => {
    const encoded = fixture(dir, 'lossy.mp4', (out) => ['-i', source, '-c:v', 'libx264', '-crf', '35', out]);
    const q = await measureQuality(source, encoded, syntheticPlan(10, FACE), bins);
    assert.ok(q.check.ffmpegSsimY < 0.99, 'the encode is lossy enough to matter');
    assert.ok(Math.abs(q.check.ssimY - q.check.ffmpegSsimY) < 5e-4, `ours ${q.check.ssimY} vs ffmpeg ${q.check.ffmpegSsimY}`);
    assert.ok(Math.abs(q.check.psnr - q.psnr) < 0.01, `ours ${q.check.psnr} vs ffmpeg ${q.psnr}`);
  });

  it('SSIM windows are credited by class: a mask that splits the frame splits the windows', () => {
    const w = 32, h = 16;
    const a = new Uint8Array(w * h).map((_, i) => (i * 37) % 251);
    const b = a.map((v, i) => (i % w < 16 ? v : 255 - v));
    const mask = new Uint8Array(w * h).map((_, i) => (i % w < 16 ? 1 : 2));
    const sums = newSsimSums(3);
    const mean = new SsimPlane(w, h).accumulate(a, b, sums, mask);
    // 7 × 3 windows at x = 0, 4, …, 24: three columns lie wholly left of x = 16, three wholly right,
    // and the one at x = 12 straddles the boundary (class 0).
    assert.deepEqual([...sums.count], [3, 9, 9]);
    assert.ok(Math.abs(sums.sum[1]! / sums.count[1]! - 1) < 1e-12, 'windows wholly on the untouched half have SSIM 1');
    assert.ok(sums.sum[2]! / sums.count[2]! < 0.5, 'inverted half has low SSIM');
    assert.ok(Math.abs(mean - (sums.sum[0]! + sums.sum[1]! + sums.sum[2]!) / 21) < 1e-12);
  });
});

describe('report details', () => {
  it('the heatmap legend lists the kinds and signed offsets the frame has, margins included, and no salient region without one', () => {
    const regions = [
      { x: 0, y: 0, w: 32, h: 32, qpOffset: -4, kind: 'face' as const },
      { x: 0, y: 32, w: 32, h: 16, qpOffset: 2, kind: 'face' as const },
      { x: 0, y: 0, w: 96, h: 64, qpOffset: 4, kind: 'background' as const },
    ];
    const legend = heatmapLegend(regions);
    assert.deepEqual(legend.map((e) => e.label), ['face −4 QP (more bits)', 'face margin +2 QP (fewer bits)', 'background +4 QP (fewer bits)']);
    // The margin is painted a faint blue: nearer grey than the background's blue.
    const rgb = (c: string) => c.match(/\d+/g)!.map(Number);
    const [mr, , mb] = rgb(legend[1]!.colour);
    const [br, , bb] = rgb(legend[2]!.colour);
    assert.ok(mb! - mr! > 0 && mb! - mr! < bb! - br!, `${legend[1]!.colour} vs ${legend[2]!.colour}`);
    assert.ok(heatmapLegend([...regions, { x: 40, y: 0, w: 8, h: 8, qpOffset: 0, kind: 'saliency' }]).some((e) => e.label.startsWith('salient region 0 QP')));
  });

  it('the per-frame chart ends where the clip does', () => {
    const spec = overTimeSpec('t', 'y', [{ series: 'a', x: 0, y: 1 }, { series: 'a', x: 9.96, y: 2 }], {}, 1500, 10) as unknown as { encoding: { x: { scale: { domain: number[]; nice: boolean } } } };
    assert.deepEqual(spec.encoding.x.scale, { domain: [0, 10], nice: false });
  });

  it('names the CRF option as the library caller typed it: crfs (the CLI says --crf, checked below)', () => {
    assert.throws(() => parseCrfs([30]), /^RoiError: Expected at least two different CRFs.* for crfs but received \[30\]$/);
    assert.throws(() => parseCrfs([22, 'abc' as unknown as number]), /^RoiError: Expected number 0–51 for crfs but received 'abc'$/);
    assert.deepEqual(parseCrfs('30,22'), [22, 30]);
  });

  it('reads the encoder, its version and its full parameter string from the stream', async () => {
    const sei = 'x265 (build 199) - 3.5+1-f0c1022b6:[Linux][GCC 12.2.0][64 bit] 8bit+10bit+12bit - H.265/HEVC codec - Copyright 2013-2018 (c) Multicoreware, Inc - http://x265.org - options: cpuid=1111039 aq-mode=2 crf=30.0\0\x80';
    assert.deepEqual(parseEncoderSei(`junk${sei}`), { encoder: 'x265 3.5+1-f0c1022b6', options: 'cpuid=1111039 aq-mode=2 crf=30.0' });
    const lossy = fixture(dir, 'lossy.mp4', (out) => ['-i', source, '-c:v', 'libx264', '-crf', '35', out]);
    const info = await readEncoderInfo(lossy);
    assert.match(info!.encoder, /^x264 core \d+/);
    assert.match(info!.options, /\bcrf=35\.0\b/);
  });

  it('video stream bytes are the sum of the packets, less than the file by the container', async () => {
    const lossy = fixture(dir, 'lossy.mp4', (out) => ['-i', source, '-c:v', 'libx264', '-crf', '35', out]);
    const { bytes, packets } = await videoStreamBytes(lossy, bins);
    assert.equal(packets, 10);
    const sizes = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=size', '-of', 'json', lossy], { encoding: 'utf8' }).stdout;
    assert.equal(bytes, (JSON.parse(sizes) as { packets: { size: string }[] }).packets.reduce((n, p) => n + Number(p.size), 0));
    assert.ok(bytes < statSync(lossy).size);
  });
});

describe('report heatmap', () => {
  it('paints faces red, the background blue, and salient regions amber even at offset 0', async () => {
    const width = 96, height = 64;
    const frame = { data: Buffer.alloc(width * height * 3, 128), width, height };
    const heat = await heatmapImage(frame, [
      { x: 0, y: 0, w: 32, h: 32, qpOffset: -4, kind: 'face' },
      { x: 32, y: 0, w: 32, h: 32, qpOffset: 0, kind: 'saliency' },
      { x: 0, y: 0, w: width, h: height, qpOffset: 4, kind: 'background' },
    ], [], 0);
    const { data, info } = await sharp(heat).raw().toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
    const [fr, , fb] = at(16, 16);
    const [sr, sg, sb] = at(48, 16);
    const [br, , bb] = at(80, 48);
    assert.ok(fr! > 150 && fb! < 110, `face ${at(16, 16)}`);
    assert.ok(sr! > 150 && sg! > 120 && sb! < 100, `salient ${at(48, 16)}`);
    assert.ok(bb! > 150 && br! < 110, `background ${at(80, 48)}`);
  });
});

describe('BD-rate', () => {
  it('a curve 20% cheaper at every quality is −20%', () => {
    const anchor = [30, 33, 36, 39].map((q, i) => ({ quality: q, rate: 100 * 1.6 ** i }));
    const test = anchor.map((p) => ({ quality: p.quality, rate: p.rate * 0.8 }));
    assert.ok(Math.abs(bdRate(anchor, test) + 20) < 1e-9);
  });

  it('matches a hand-computed integral over the shared quality range', () => {
    // Anchor log10(rate) = q/10 on q ∈ [30, 40]; test = q/10 + (q − 35)²/100 on q ∈ [30, 42].
    // Shared range [30, 40]: mean difference = (1/10)·∫(q − 35)²/100 dq = (1/10)·(250/3)/100 = 1/12,
    // so BD-rate = (10^(1/12) − 1)·100 = 21.15%. Four points fit the quadratic exactly.
    const anchor = [30, 33, 37, 40].map((q) => ({ quality: q, rate: 10 ** (q / 10) }));
    const test = [30, 34, 38, 42].map((q) => ({ quality: q, rate: 10 ** (q / 10 + (q - 35) ** 2 / 100) }));
    const expected = (10 ** (1 / 12) - 1) * 100;
    assert.ok(Math.abs(bdRate(anchor, test) - expected) < 1e-6, `${bdRate(anchor, test)} vs ${expected}`);
  });

  it('is NaN when the curves share no quality range', () => {
    assert.ok(Number.isNaN(bdRate([{ quality: 30, rate: 1 }, { quality: 31, rate: 2 }], [{ quality: 40, rate: 1 }, { quality: 41, rate: 2 }])));
  });
});

describe('bitrate matching for the side-by-side', () => {
  it('interpolates log bitrate linearly in CRF between the nearest encodes, to 0.1', () => {
    // 40 kbit/s at CRF 26, 20 at CRF 30: 28.28 kbit/s is the geometric mean, so CRF 28.
    const pts = [{ crf: 22, bitrateKbps: 80 }, { crf: 26, bitrateKbps: 40 }, { crf: 30, bitrateKbps: 20 }];
    assert.equal(crfForBitrate(pts, Math.sqrt(40 * 20)), 28);
    assert.equal(crfForBitrate(pts, 40), 26);
    // Beyond the last encode it extrapolates, at most 4 CRF from the nearest encode.
    assert.equal(crfForBitrate(pts, 10), 34);
    assert.equal(crfForBitrate(pts, 1e-9), 34);
    // Two near-identical encodes must not send the search to a CRF near 0 or 51.
    assert.equal(crfForBitrate([{ crf: 30, bitrateKbps: 40 }, { crf: 30.5, bitrateKbps: 39.9 }], 30), 34.5);
  });

  it('brackets the target when encodes lie on both sides of it, instead of extrapolating from one side', () => {
    // A first try at 31.2 fell short (35.1 against 37.4 wanted); the next must lie between 30 and 31.2.
    const crf = crfForBitrate([{ crf: 30, bitrateKbps: 42 }, { crf: 34, bitrateKbps: 33 }, { crf: 31.2, bitrateKbps: 35.1 }, { crf: 31.5, bitrateKbps: 34.9 }], 37.4);
    assert.ok(crf > 30 && crf < 31.2, `crf ${crf}`);
  });

  it('takes the 5th-percentile frame by nearest rank, ignoring frames without a face', () => {
    const values = [...Array.from({ length: 19 }, (_, i) => 40 + i), 30, NaN, NaN];
    assert.equal(lowPercentile(values, 0.05), 30);
    assert.equal(lowPercentile(values, 0.1), 40);
    assert.ok(Number.isNaN(lowPercentile([NaN], 0.05)));
  });

  it('matches against the uniform encode two thirds down the CRF list, never preferring a dearer ROI encode', () => {
    const point = (crf: number, mode: 'uniform' | 'roi' = 'uniform', bitrateKbps = 100 / crf) => ({ mode, codec: 'hevc' as const, crf, targetBitrateKbps: null, file: `${mode}${crf}`, bytes: 1, videoBytes: 1, bitrateKbps, encodeSeconds: 0, psnr: null, psnrY: null, ssim: null, facePsnr: null, facePsnrY: null, facePsnrP5: null, faceSsim: null, backgroundPsnr: null, backgroundPsnrY: null, backgroundSsim: null, salientPsnr: null, salientPsnrY: null, salientSsim: null, encoder: null, encoderOptions: null, command: null, encoderParams: {}, picture: null });
    assert.equal(showcaseUniform([22, 26, 30, 34].map((c) => point(c))).crf, 30);
    assert.equal(showcaseUniform([24, 32].map((c) => point(c))).crf, 32);
    const uniform = point(30, 'uniform', 100);
    // 89% beats 106% (ROI must not look better by spending more); 102% beats 70%.
    assert.equal(matchFor(uniform, [point(29, 'roi', 106), point(31, 'roi', 89)]).crf, 31);
    assert.equal(matchFor(uniform, [point(29, 'roi', 102), point(33, 'roi', 70)]).crf, 29);
  });
});

describe('compare on a short sample (CLI, real encodes)', () => {
  // Two seconds of the sample with a 128 kbit/s audio track, which must not count in any bitrate.
  const short = fixture(dir, 'short.mp4', (out) => ['-i', SAMPLE, '-f', 'lavfi', '-i', 'sine=frequency=440:duration=2', '-t', '2', '-map', '0:v', '-map', '1:a', '-c:v', 'copy', '-c:a', 'aac', '-b:a', '128k', out]);
  const out = join(dir, 'report');
  let report: Report;
  let browser: Browser;

  before(async () => {
    const r = cli(['compare', short, '-o', out, '--json', '--match-crf', '26']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const done = lines.at(-1)!;
    assert.equal(done.type, 'done');
    assert.ok(lines.some((l) => l.type === 'progress' && String(l.label).includes('roi crf')), 'progress names the encode');
    report = reportSchema.parse(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-default-apps', '--no-first-run'] });
  });
  after(async () => browser?.close());

  it('writes a report.json that validates, with every encode on disk at its stated size', () => {
    assert.deepEqual(report.settings.crfs, [22, 26, 30, 34]);
    const grid = report.points.filter((p) => !p.matching && !p.target);
    assert.deepEqual(grid.map((p) => `${p.mode}${p.crf}`).sort(), ['roi22', 'roi26', 'roi30', 'roi34', 'uniform22', 'uniform26', 'uniform30', 'uniform34']);
    assert.ok(report.points.filter((p) => p.matching).length <= 1, 'at most one bitrate-matching encode is kept');
    for (const p of report.points) {
      assert.equal(statSync(join(out, p.file)).size, p.bytes, p.file);
    }
    assert.deepEqual(readdirSync(join(out, 'encodes')).sort(), report.points.map((p) => p.file.replace('encodes/', '')).sort());
    assert.ok(existsSync(join(out, 'plan.json')));
    // Video alone: the input's audio would swamp these bitrates (about 100 kbit/s of video at CRF 22).
    for (const p of report.points) {
      const { streams } = JSON.parse(spawnSync('ffprobe', ['-v', 'error', '-show_streams', '-of', 'json', join(out, p.file)], { encoding: 'utf8' }).stdout) as { streams: { codec_type: string }[] };
      assert.deepEqual(streams.map((x) => x.codec_type), ['video'], p.file);
      assert.ok(p.bitrateKbps < 120, `${p.file}: ${p.bitrateKbps} kbit/s`);
    }
    assert.ok(!readdirSync(dir).some((f) => f.includes('.partial')), 'no temporary directory left');
  });

  it('bitrates are the video stream’s packets over the duration, and the file size is reported beside them', () => {
    for (const p of report.points) {
      const { packets } = JSON.parse(spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=size', '-of', 'json', join(out, p.file)], { encoding: 'utf8' }).stdout) as { packets: { size: string }[] };
      const videoBytes = packets.reduce((n, x) => n + Number(x.size), 0);
      assert.equal(p.videoBytes, videoBytes, p.file);
      assert.ok(Math.abs(p.bitrateKbps - (videoBytes * 8) / 1000 / report.input.durationSeconds) < 0.01, p.file);
      // The MP4 container costs kilobytes per file, which the bitrate no longer counts.
      assert.ok(p.bytes - p.videoBytes > 500, `${p.file}: ${p.bytes} vs ${p.videoBytes}`);
    }
  });

  it('names ffmpeg and x265 with their versions, and each encode’s x265 settings and command line', () => {
    const ffmpegVersion = /ffmpeg version (\S+)/.exec(spawnSync('ffmpeg', ['-version'], { encoding: 'utf8' }).stdout)![1];
    assert.equal(report.tools.ffmpeg, ffmpegVersion);
    assert.match(report.tools.x265!, /^x265 \d+\.\d+/);
    assert.equal(report.tools.x264, null);
    for (const p of report.points) {
      assert.equal(p.encoder, report.tools.x265, p.file);
      // x265's own record of what it ran: the CRF asked for, and adaptive quantisation on (ROI needs it).
      assert.match(p.encoderOptions!, new RegExp(`\\bcrf=${p.crf!.toFixed(1)}\\b`), p.file);
      assert.match(p.encoderOptions!, /\baq-mode=2\b/, p.file);
      assert.match(p.command!, /^ffmpeg .*-c:v libx265 .*-crf \S+ .*-x265-params \S*aq-mode=2/, p.file);
    }
    const roi = report.points.find((p) => p.mode === 'roi' && !p.matching)!;
    assert.match(roi.command!, /-filter_complex_script /);
  });

  it('reports Y-PSNR beside the pooled PSNR, with BD-rates on both', () => {
    for (const p of report.points) {
      assert.ok(p.psnrY! > 20 && p.facePsnrY! > 20 && p.backgroundPsnrY! > 20, p.file);
      assert.notEqual(p.psnrY, p.psnr);
    }
    assert.ok(report.bdRate.facePsnrY! < -10, `face Y-PSNR BD-rate ${report.bdRate.facePsnrY}`);
    assert.ok(report.bdRate.psnrY !== null);
  });

  it('shows the side-by-side at matched bitrate: ROI spends 95–101% of what uniform CRF 30 spends', () => {
    const uniform = report.points.find((p) => p.file === report.matched.uniform)!;
    const roi = report.points.find((p) => p.file === report.matched.roi)!;
    assert.equal(uniform.mode, 'uniform');
    assert.equal(uniform.crf, 30);
    assert.equal(roi.mode, 'roi');
    const ratio = roi.bitrateKbps / uniform.bitrateKbps;
    assert.ok(ratio >= 0.95 && ratio <= 1.01, `ROI ${roi.bitrateKbps} kbit/s (crf ${roi.crf}) against uniform ${uniform.bitrateKbps}`);
    if (roi.matching) assert.equal(roi.matching, uniform.file);
    // The face is visibly better at the same size: that is what the crops show.
    assert.ok(roi.facePsnr! > uniform.facePsnr! + 0.5, `face ${roi.facePsnr} vs ${uniform.facePsnr}`);
    // The headline's same-size pair is this one, its differences measured on the two files.
    assert.equal(report.sameSize.length, 1);
    const same = report.sameSize[0]!;
    assert.deepEqual([same.uniform, same.roi], [uniform.file, roi.file]);
    assert.ok(Math.abs(same.facePsnr! - (roi.facePsnr! - uniform.facePsnr!)) < 0.01);
    assert.ok(same.backgroundPsnr! < 0, `background ${same.backgroundPsnr} dB`);
    // HEVC: no browser here plays it, so the page links the files instead of embedding them.
    assert.equal(report.matched.video, 'not web-playable');
  });

  it('full PSNR agrees with ffmpeg’s psnr filter run on its own', () => {
    const p = report.points.find((x) => x.mode === 'roi' && x.crf === 30)!;
    // ffmpeg prints the summary on stderr; spawnSync keeps it.
    const { stderr } = spawnSync('ffmpeg', ['-hide_banner', '-nostats', '-i', join(out, p.file), '-i', short, '-lavfi', 'psnr', '-f', 'null', '-'], { encoding: 'utf8' });
    const average = Number(/average:([\d.]+)/.exec(stderr)![1]);
    assert.ok(Math.abs(average - p.psnr!) < 0.01, `report ${p.psnr} vs ffmpeg ${average}`);
  });

  it('measures what ROI is for: higher face PSNR at each CRF, lower background PSNR, a negative face BD-rate', () => {
    for (const crf of report.settings.crfs) {
      const u = report.points.find((p) => p.mode === 'uniform' && p.crf === crf)!;
      const r = report.points.find((p) => p.mode === 'roi' && p.crf === crf)!;
      assert.ok(r.facePsnr! > u.facePsnr!, `crf ${crf}: face ${r.facePsnr} vs ${u.facePsnr}`);
      assert.ok(r.backgroundPsnr! < u.backgroundPsnr!, `crf ${crf}: background`);
    }
    assert.ok(report.bdRate.facePsnr! < -10, `face BD-rate ${report.bdRate.facePsnr}`);
    assert.ok(report.bdRate.faceSsim! < 0, `face SSIM BD-rate ${report.bdRate.faceSsim}`);
    const frames = report.perFrame.facePsnr[report.matched.roi]!;
    assert.equal(frames.length, report.input.frameCount);
  });

  it('shows --match-crf 26: faces within 0.3 dB of uniform CRF 26’s (measured on both), a smaller file, a point and a level line on the face chart', () => {
    const target = report.points.filter((p) => p.target);
    assert.equal(target.length, 1);
    const t = target[0]!;
    const u = report.points.find((p) => p.mode === 'uniform' && p.crf === 26 && !p.matching)!;
    assert.equal(t.target!.matchCrf, 26);
    assert.ok(t.crf! > 26, `chosen CRF ${t.crf}`);
    assert.ok(t.facePsnr! >= u.facePsnr! - 0.3, `faces ${t.facePsnr} dB vs uniform ${u.facePsnr} dB`);
    assert.ok(t.videoBytes < u.videoBytes, `${t.videoBytes} vs ${u.videoBytes} bytes`);
    // Not a curve point: the BD-rates come from the grid alone.
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    assert.ok(html.includes(`--match-crf 26 (ROI, CRF ${t.crf})`), 'no target point on the face chart');
    assert.ok(html.includes('uniform CRF 26&#39;s faces') || html.includes("uniform CRF 26's faces"), 'no level line on the face chart');
    assert.ok(html.includes('(faces as good as uniform CRF 26)'), 'no table row');
  });

  it('index.html renders offline in Chromium: charts drawn, pictures decoded, no console errors', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const { errors, requests } = watchPage(page);
    await page.goto(`file://${join(out, 'index.html')}`);
    const charts = await page.$$eval('svg.marks', (svgs) => svgs.map((s) => ({ w: s.getBoundingClientRect().width, marks: s.querySelectorAll('path').length })));
    assert.ok(charts.length >= 5, `${charts.length} charts`);
    for (const c of charts) assert.ok(c.w > 100 && c.marks > 3, JSON.stringify(c));
    const images = await page.$$eval('img', (imgs) => imgs.map((i) => (i as unknown as { naturalWidth: number }).naturalWidth));
    assert.ok(images.length >= 7 && images.every((w) => w > 0), `images ${images}`);
    const text = await page.textContent('body');
    assert.match(text ?? '', /At the same file size: faces \+\d+\.\d\d dB PSNR and \+0\.\d{4} SSIM, the rest of the frame \u2212\d+\.\d\d dB PSNR \(ROI spending \d+\.\d% of uniform's bits\)/);
    assert.equal(await page.$$eval('video', (v) => v.length), 0, 'HEVC is not embedded as video');
    assert.match(text ?? '', /smaller at the same face quality \(PSNR\)/);
    assert.match(text ?? '', /at the same face quality \(Y-PSNR\)/);
    assert.match(text ?? '', /face \u22122, background \+4 \(keyframes at most 0\)/);
    assert.match(text ?? '', /ffmpeg \S+, x265 \d/);
    // The legend lists what the frame has: the face, its margins, the background; no salient region here.
    const legend = await page.$$eval('p.notes', (ps) => ps.map((p) => p.textContent ?? '').find((t) => t.includes('with the plan drawn')) ?? '');
    assert.match(legend, /face \u22122 QP \(more bits\)face margin \+[\d.]+ QP \(fewer bits\)background \+4 QP \(fewer bits\)detected face/);
    assert.doesNotMatch(legend, /salient/);
    // Header cells stay on one line.
    const wrapped = await page.$$eval('th', (ths) => ths.filter((th) => {
      // A text that wraps has one client rect per line.
      type Node = { nodeType: number; childNodes: ArrayLike<Node>; ownerDocument: unknown };
      type Range = { selectNodeContents(node: Node): void; getClientRects(): ArrayLike<unknown> };
      const doc = th.ownerDocument as unknown as { createRange(): Range };
      // No named inner functions: the page would not know the bundler's __name helper.
      const stack: Node[] = [th as unknown as Node];
      let wraps = false;
      while (stack.length) {
        const n = stack.pop()!;
        if (n.nodeType !== 3) stack.push(...Array.from(n.childNodes));
        else {
          const range = doc.createRange();
          range.selectNodeContents(n);
          if (range.getClientRects().length > 1) wraps = true;
        }
      }
      return wraps;
    }).map((th) => th.textContent));
    assert.deepEqual(wrapped, []);
    mkdirSync(join(dir, 'screenshots'), { recursive: true });
    await page.screenshot({ path: join(dir, 'screenshots', 'report.png'), fullPage: true });
    assert.ok(statSync(join(dir, 'screenshots', 'report.png')).size > 10_000);
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, []);
  });

  it('refuses to overwrite the report without --force, and to replace a directory it did not write', () => {
    const again = cli(['compare', short, '-o', out]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^roi-encode: .*already exists.*--force/);
    const foreign = join(dir, 'foreign');
    mkdirSync(foreign, { recursive: true });
    writeFileSync(join(foreign, 'keep.txt'), 'mine');
    const r = cli(['compare', short, '-o', foreign, '--force']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refusing to replace/);
    assert.equal(readFileSync(join(foreign, 'keep.txt'), 'utf8'), 'mine');
    const bad = cli(['compare', short, '-o', join(dir, 'x'), '--crf', '22']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^roi-encode: Expected at least two different CRFs.* for --crf but received '22'$/m);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
  });
});
