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
import { heatmapImage } from '../src/report/images.js';
import { SsimPlane, newSsimSums } from '../src/report/ssim.js';
import { cli, fixture, SAMPLE, workDir } from './helpers.js';

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
    const point = (crf: number, mode: 'uniform' | 'roi' = 'uniform', bitrateKbps = 100 / crf) => ({ mode, codec: 'hevc' as const, crf, file: `${mode}${crf}`, bytes: 1, bitrateKbps, encodeSeconds: 0, psnr: null, ssim: null, facePsnr: null, facePsnrP5: null, faceSsim: null, backgroundPsnr: null, backgroundSsim: null, salientPsnr: null, salientSsim: null });
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
    const r = cli(['compare', short, '-o', out, '--json']);
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
    const grid = report.points.filter((p) => !p.matching);
    assert.deepEqual(grid.map((p) => `${p.mode}${p.crf}`).sort(), ['roi22', 'roi26', 'roi30', 'roi34', 'uniform22', 'uniform26', 'uniform30', 'uniform34']);
    assert.ok(report.points.length <= 9, 'at most one bitrate-matching encode is kept');
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

  it('index.html renders offline in Chromium: charts drawn, pictures decoded, no console errors', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => {
      if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url());
    });
    await page.goto(`file://${join(out, 'index.html')}`);
    const charts = await page.$$eval('svg.marks', (svgs) => svgs.map((s) => ({ w: s.getBoundingClientRect().width, marks: s.querySelectorAll('path').length })));
    assert.ok(charts.length >= 5, `${charts.length} charts`);
    for (const c of charts) assert.ok(c.w > 100 && c.marks > 3, JSON.stringify(c));
    const images = await page.$$eval('img', (imgs) => imgs.map((i) => (i as unknown as { naturalWidth: number }).naturalWidth));
    assert.ok(images.length >= 7 && images.every((w) => w > 0), `images ${images}`);
    const text = await page.textContent('body');
    assert.match(text ?? '', /smaller at the same face quality \(PSNR\)/);
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
    assert.match(bad.stderr, /^roi-encode: Expected at least two different CRFs/);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
  });
});
