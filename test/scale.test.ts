import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { encode, measureFaces } from '../src/index.js';
import { buildRoiFilterGraph, buildVideoGraph } from '../src/encode/filtergraph.js';
import { resolveScale, roundEven, scaledSize, scalePlan, scaleRegion } from '../src/encode/scale.js';
import { resolveBinaries } from '../src/media/binaries.js';
import type { Plan, PlanRegion } from '../src/plan/plan.js';
import { cli, ffprobeJson, fixture, frameTimes, SAMPLE, workDir } from './helpers.js';

/** `height` / `width`: a smaller output, the plan made on the source and its regions moved to the output's blocks. */

const dir = workDir('scale');

const face = (x: number, y: number, w: number, h: number, qpOffset: number): PlanRegion => ({ x, y, w, h, qpOffset, kind: 'face' });
const background = (w: number, h: number, qpOffset: number): PlanRegion => ({ x: 0, y: 0, w, h, qpOffset, kind: 'background' });
const times = (n: number, fps = 25) => Float64Array.from({ length: n }, (_, i) => i / fps);

function plan(width: number, height: number, segments: Plan['segments']): Plan {
  const frameCount = segments.at(-1)!.endFrame;
  return { version: 1, input: { path: 'in.mp4', width, height, frameRate: 25, frameCount, durationSeconds: frameCount / 25 }, settings: {}, detections: [], segments, zones: [] };
}

describe('scale builders (pure)', () => {
  it('takes one even integer side from 16, sharp-style, and refuses both sides', () => {
    assert.equal(resolveScale({}), undefined);
    assert.deepEqual(resolveScale({ height: 720 }), { dimension: 'height', value: 720 });
    assert.deepEqual(resolveScale({ width: '1280' }), { dimension: 'width', value: 1280 });
    assert.throws(() => resolveScale({ height: 0 }), { message: 'Expected integer 16–16384 for height but received 0' });
    assert.throws(() => resolveScale({ height: 'abc' }), { message: "Expected integer 16–16384 for height but received 'abc'" });
    assert.throws(() => resolveScale({ width: 720.5 }), { message: 'Expected integer 16–16384 for width but received 720.5' });
    assert.throws(() => resolveScale({ height: 14 }), /Expected integer 16–16384 for height but received 14/);
    assert.throws(() => resolveScale({ height: 721 }), { message: 'Expected even integer 16–16384 (4:2:0 video needs even sides) for height but received 721' });
    assert.throws(() => resolveScale({ height: 720, width: 1280 }), /^RoiError: Expected height or width, not both/);
  });

  it('keeps the aspect ratio, rounding the other side to the nearest even (as ffmpeg\'s -2)', () => {
    const hd = { width: 1920, height: 1080 };
    assert.deepEqual(scaledSize(hd, { dimension: 'height', value: 720 }), { width: 1280, height: 720 });
    assert.deepEqual(scaledSize(hd, { dimension: 'width', value: 1280 }), { width: 1280, height: 720 });
    // 480 × 16/9 = 853.3: 854, which ffmpeg's scale=-2:480 gives too.
    assert.deepEqual(scaledSize(hd, { dimension: 'height', value: 480 }), { width: 854, height: 480 });
    assert.deepEqual(scaledSize({ width: 400, height: 300 }, { dimension: 'height', value: 150 }), { width: 200, height: 150 });
    // An odd source scales to an even output: 120 × 321/241 = 159.8.
    assert.deepEqual(scaledSize({ width: 321, height: 241 }, { dimension: 'height', value: 120 }), { width: 160, height: 120 });
    assert.equal(roundEven(853.33), 854);
    assert.equal(roundEven(159.8), 160);
    // The source's own size: nothing to scale.
    assert.equal(scaledSize(hd, { dimension: 'height', value: 1080 }), undefined);
    assert.throws(() => scaledSize({ ...hd, path: 'in.mp4' }, { dimension: 'height', value: 2160 }), { message: "height 2160 is above the source's 1080 (in.mp4 is 1920x1080): roi-encoder scales down only, as upscaling adds pixels without detail" });
    assert.throws(() => scaledSize(hd, { dimension: 'width', value: 16 }), { message: 'width 16 makes the 1920x1080 input 16x10, too small to encode: x265 needs at least 16x16 pixels' });
  });

  it('moves regions to output pixels, grown outward to whole 16-pixel blocks, clamped to the frame', () => {
    const src = { width: 1920, height: 1080 };
    const out = { width: 1280, height: 720 };
    // Block-aligned at 1080p, 2/3 of it is aligned again: exact.
    assert.deepEqual(scaleRegion(face(48, 96, 48, 48, -2), src, out, 16), face(32, 64, 32, 32, -2));
    // 160 × 2/3 = 106.7 → 96; (160+80) × 2/3 = 160 → 160.
    assert.deepEqual(scaleRegion(face(160, 160, 80, 80, -2), src, out, 16), face(96, 96, 64, 64, -2));
    // A region smaller than an output block still gets one.
    assert.deepEqual(scaleRegion(face(1000, 500, 8, 8, -2), src, out, 16), face(656, 320, 16, 32, -2));
    // The frame's edge: 720 is 45 blocks; 854 is not a multiple of 16, so the last column is clamped.
    assert.deepEqual(scaleRegion(background(1920, 1080, 4), src, out, 16), background(1280, 720, 4));
    assert.deepEqual(scaleRegion(face(1800, 1000, 120, 80, 0), src, { width: 854, height: 480 }, 16), face(800, 432, 54, 48, 0));
    const p = scalePlan(plan(1920, 1080, [{ startFrame: 0, endFrame: 10, regions: [face(48, 96, 48, 48, -2), background(1920, 1080, 4)] }]), out, 16);
    assert.deepEqual(p.input, { path: 'in.mp4', width: 1280, height: 720, frameRate: 25, frameCount: 10, durationSeconds: 0.4 });
    assert.deepEqual(p.segments[0]!.regions, [face(32, 64, 32, 32, -2), background(1280, 720, 4)]);
    // Detections (what a face measurement masks) are scaled exactly, not to blocks.
    const withFaces = { ...plan(1920, 1080, [{ startFrame: 0, endFrame: 10, regions: [] }]), detections: [{ frame: 0, time: 0, faces: [{ x: 150, y: 300, w: 90, h: 120, score: 0.9 }], salient: [{ x: 0, y: 3, w: 30, h: 6, score: 0.5 }] }] };
    assert.deepEqual(scalePlan(withFaces, out, 16).detections, [{ frame: 0, time: 0, faces: [{ x: 100, y: 200, w: 60, h: 80, score: 0.9 }], salient: [{ x: 0, y: 2, w: 20, h: 4, score: 0.5 }] }]);
  });

  it('builds scale first, then the ROI in output pixels; a uniform scaled encode gets the scale alone', () => {
    const p = plan(400, 300, [{ startFrame: 0, endFrame: 50, regions: [face(144, 128, 128, 128, -2), background(400, 300, 4)] }]);
    const size = { width: 200, height: 150 };
    const opts = { strength: 1, frameTimes: times(50), outputLabel: 'v', blockSize: 16 };
    assert.equal(buildVideoGraph(undefined, opts), undefined);
    assert.equal(buildVideoGraph(p, opts), buildRoiFilterGraph(p, opts));
    assert.equal(buildVideoGraph(undefined, { ...opts, size }), '[0:v:0]scale=200:150:flags=lanczos[v]');
    // 144/2 = 72 → block 64; (144+128)/2 = 136 → 144.
    assert.equal(buildVideoGraph(p, { ...opts, size }), '[0:v:0]scale=200:150:flags=lanczos[scaled];\n[scaled]addroi=x=64:y=64:w=80:h=64:qoffset=-0.039216:clear=0,addroi=x=0:y=0:w=200:h=150:qoffset=0.078431:clear=0[v]');
    assert.equal(buildVideoGraph(undefined, { ...opts, size, inputLabel: 'c' }), '[c]scale=200:150:flags=lanczos[v]');
    // The face-quality target's tap: the scaled frames, before any ROI.
    assert.equal(buildVideoGraph(undefined, { ...opts, size, tapLabel: 'tap' }), '[0:v:0]scale=200:150:flags=lanczos,split=2[v][tap]');
    assert.match(buildVideoGraph(p, { ...opts, size, tapLabel: 'tap' })!, /^\[0:v:0\]scale=200:150:flags=lanczos,split=2\[scaled\]\[tap\];\n\[scaled\]addroi=x=64:/);
  });

  it('gives ffmpeg a graph whose frames are the output size, with ROI at output pixels on every frame (split segments too)', () => {
    const segs = [
      { startFrame: 0, endFrame: 5, regions: [face(32, 32, 32, 32, -4), background(128, 128, 4)] },
      { startFrame: 5, endFrame: 10, regions: [face(64, 64, 32, 32, -4), background(128, 128, 4)] },
    ];
    const script = join(dir, 'scaled.filter');
    writeFileSync(script, `${buildVideoGraph(plan(128, 128, segs), { strength: 1, frameTimes: times(10), outputLabel: 'v', blockSize: 16, size: { width: 64, height: 64 } })};\n[v]showinfo`);
    const r = spawnSync(resolveBinaries().ffmpeg, ['-hide_banner', '-f', 'lavfi', '-i', 'testsrc2=s=128x128:r=25:d=0.4', '-filter_complex_script', script, '-f', 'null', '-'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    const frames: { n: number; size: string; face?: string }[] = [];
    for (const line of r.stderr.split('\n')) {
      const f = /\bn:\s*(\d+) pts:.* s:(\d+x\d+)/.exec(line);
      if (f) frames.push({ n: Number(f[1]), size: f[2]! });
      const roi = /index: 0, region: (\(\d+, \d+\) -> \(\d+, \d+\))/.exec(line);
      if (roi) frames.at(-1)!.face = roi[1];
    }
    assert.equal(frames.length, 10);
    for (const f of frames) {
      assert.equal(f.size, '64x64');
      assert.equal(f.face, f.n < 5 ? '(16, 16) -> (32, 32)' : '(32, 32) -> (48, 48)', `frame ${f.n}`);
    }
  });

  it('needs the scale before addroi: ffmpeg\'s scale passes ROI side data on in source pixels', () => {
    // The reason for the order above, measured: addroi then scale leaves the region where it was on
    // the 128x128 source, now the bottom-right quarter of the 64x64 frame instead of its centre.
    const r = spawnSync(resolveBinaries().ffmpeg, ['-hide_banner', '-f', 'lavfi', '-i', 'testsrc2=s=128x128:r=25:d=0.04', '-vf', 'addroi=x=32:y=32:w=64:h=64:qoffset=-0.1,scale=64:64:flags=lanczos,showinfo', '-f', 'null', '-'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    assert.match(r.stderr, /s:64x64/);
    assert.match(r.stderr, /index: 0, region: \(32, 32\) -> \(96, 96\)/);
  });
});

/** PSNR (pooled Y, U, V, as ffmpeg's psnr filter's "average") of a crop of `encoded` against the same crop of `source` scaled to `size` with lanczos. */
function cropPsnr(source: string, encoded: string, size: { width: number; height: number }, crop: { x: number; y: number; w: number; h: number }): number {
  const c = `crop=${crop.w}:${crop.h}:${crop.x}:${crop.y}`;
  const r = spawnSync('ffmpeg', ['-hide_banner', '-nostdin', '-i', source, '-i', encoded, '-filter_complex', `[0:v]scale=${size.width}:${size.height}:flags=lanczos,${c}[r];[1:v]${c}[d];[d][r]psnr`, '-f', 'null', '-'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  return Number(/average:([\d.]+)/.exec(r.stderr)![1]);
}

function probedSize(file: string): { width: number; height: number; frames: number } {
  const s = (ffprobeJson(file, ['-select_streams', 'v:0', '-count_frames', '-show_entries', 'stream=width,height,nb_read_frames']) as { streams: { width: number; height: number; nb_read_frames: string }[] }).streams[0]!;
  return { width: s.width, height: s.height, frames: Number(s.nb_read_frames) };
}

/** The source at `size` as the encode scales it, losslessly: an independent reference for face measurements. */
function scaledReference(source: string, size: { width: number; height: number }): string {
  return fixture(dir, `${source.split('/').at(-1)}-${size.width}x${size.height}.mkv`, (out) => ['-i', source, '-vf', `scale=${size.width}:${size.height}:flags=lanczos`, '-c:v', 'ffv1', out]);
}

const outputs = () => readdirSync(dir).filter((f) => f.startsWith('out') || f.includes('.partial'));

describe('scaled encodes', () => {
  // The talking head's first 3 s (400x300, 75 frames), its face in the centre.
  const head = () => fixture(dir, 'head3.mp4', (out) => ['-i', SAMPLE, '-t', '3', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '12', '-an', out]);

  it('encodes the talking head at --height 150 with the ROI on the face: faces better, background worse than uniform at the same CRF', () => {
    const src = head();
    const planFile = join(dir, 'head3.plan.json');
    const a = cli(['analyze', src, '-o', planFile, '--force']);
    assert.equal(a.code, 0, a.stderr);
    const roiOut = join(dir, 'roi-150.mp4');
    const uniOut = join(dir, 'uniform-150.mp4');
    const roi = cli([src, '-o', roiOut, '--plan', planFile, '--height', '150', '--crf', '30', '--preset', 'fast', '--force']);
    assert.equal(roi.code, 0, roi.stderr);
    assert.match(roi.stderr, /^wrote .*roi-150\.mp4: .*, 75 frames at 200x150 \(scaled from 400x300\), x265, roi plan,/m);
    const uni = cli([src, '-o', uniOut, '--roi', 'none', '--height', '150', '--crf', '30', '--preset', 'fast', '--force', '--json']);
    assert.equal(uni.code, 0, uni.stderr);
    const done = uni.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.type === 'done')!;
    assert.equal(done.width, 200);
    assert.equal(done.height, 150);
    assert.deepEqual(done.scaledFrom, { width: 400, height: 300 });
    const sourceTimes = frameTimes(src);
    for (const out of [roiOut, uniOut]) {
      assert.deepEqual(probedSize(out), { width: 200, height: 150, frames: 75 });
      assert.deepEqual(frameTimes(out), sourceTimes);
    }
    // Measured where the plan put its regions: the face core (its strongest offset) at output pixels,
    // and the strip left of every face region (background alone).
    const p = JSON.parse(readFileSync(planFile, 'utf8')) as Plan;
    const faces = p.segments[0]!.regions.filter((r) => r.kind === 'face');
    const core = faces.reduce((a, b) => (b.qpOffset < a.qpOffset ? b : a));
    const size = { width: 200, height: 150 };
    const half = (v: number) => roundEven(v / 2);
    const faceCrop = { x: half(core.x), y: half(core.y), w: half(core.w), h: half(core.h) };
    const bgWidth = Math.min(...faces.map((r) => scaleRegion(r, p.input, size, 16).x));
    assert.ok(bgWidth >= 16, `background strip ${bgWidth} px wide`);
    const bgCrop = { x: 0, y: 0, w: bgWidth, h: 150 };
    const roiFace = cropPsnr(src, roiOut, size, faceCrop);
    const uniFace = cropPsnr(src, uniOut, size, faceCrop);
    const roiBg = cropPsnr(src, roiOut, size, bgCrop);
    const uniBg = cropPsnr(src, uniOut, size, bgCrop);
    // Measured: face 39.06 dB against 38.01 uniform, background 39.77 against 41.13 (CRF 30, fast).
    assert.ok(roiFace > uniFace + 0.4, `face PSNR ROI ${roiFace} dB, uniform ${uniFace} dB`);
    assert.ok(roiBg < uniBg - 0.4, `background PSNR ROI ${roiBg} dB, uniform ${uniBg} dB`);
  });

  it('scales a two-pass encode (--bitrate): both passes see the scaled frames', async () => {
    const out = join(dir, 'twopass-150.mp4');
    const r = await encode(head(), out, { roi: 'none', height: 150, bitrate: '60k', preset: 'fast', force: true });
    assert.equal(r.passes, 2);
    assert.deepEqual({ width: r.width, height: r.height, scaledFrom: r.scaledFrom }, { width: 200, height: 150, scaledFrom: { width: 400, height: 300 } });
    assert.deepEqual(probedSize(out), { width: 200, height: 150, frames: 75 });
    // Measured 60.1 kbit/s of video for 60k asked.
    assert.ok(Math.abs(r.videoBitrateKbps - 60) < 6, `${r.videoBitrateKbps} kbit/s`);
  });

  it('encodes an odd-sized source when scaling makes it even; the source\'s own size is no scale at all', async () => {
    // 4:4:4, which H.264 and HEVC code at odd sizes; x265's 4:2:0 would need even ones.
    const odd = fixture(dir, 'odd.mp4', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=0.4', '-vf', 'format=yuv444p,scale=321:241', '-c:v', 'libx264', '-preset', 'ultrafast', out]);
    const out = join(dir, 'odd-120.mp4');
    const r = await encode(odd, out, { roi: 'none', height: 120, preset: 'ultrafast', force: true });
    assert.deepEqual(probedSize(out), { width: 160, height: 120, frames: 10 });
    assert.deepEqual({ width: r.width, height: r.height }, { width: 160, height: 120 });
    await assert.rejects(encode(odd, join(dir, 'odd-same.mp4'), { roi: 'none', preset: 'ultrafast' }), /x265 needs even dimensions/);
    const same = await encode(head(), join(dir, 'same.mp4'), { roi: 'none', height: 300, preset: 'ultrafast', force: true });
    assert.deepEqual({ width: same.width, height: same.height, scaledFrom: same.scaledFrom }, { width: 400, height: 300, scaledFrom: undefined });
    assert.doesNotMatch(same.command!, /scale=/);
  });

  it('takes sizes as stored: a source rotated for display keeps its rotation, its stored height is --height', async () => {
    const rotated = fixture(dir, 'rotated.mp4', (out) => ['-i', head(), '-c', 'copy', '-metadata:s:v:0', 'rotate=90', out]);
    const r = await encode(rotated, join(dir, 'rotated-150.mp4'), { roi: 'none', height: 150, preset: 'ultrafast', force: true });
    const s = (ffprobeJson(r.output, ['-select_streams', 'v:0', '-show_entries', 'stream=width,height:stream_side_data=rotation']) as { streams: { width: number; height: number; side_data_list?: { rotation?: number }[] }[] }).streams[0]!;
    const before = (ffprobeJson(rotated, ['-select_streams', 'v:0', '-show_entries', 'stream_side_data=rotation']) as { streams: { side_data_list?: { rotation?: number }[] }[] }).streams[0]!;
    assert.deepEqual({ width: s.width, height: s.height }, { width: 200, height: 150 });
    assert.equal(s.side_data_list?.[0]?.rotation, before.side_data_list?.[0]?.rotation);
    assert.ok(Math.abs(s.side_data_list?.[0]?.rotation ?? 0) === 90);
  });

  it('scales for x264 with the ROI, and keeps 10-bit HDR10 (colour tags, mastering display, MaxCLL) through the scale', async () => {
    const x264 = await encode(head(), join(dir, 'x264-150.mp4'), { codec: 'x264', height: 150, preset: 'fast', force: true });
    assert.deepEqual(probedSize(x264.output), { width: 200, height: 150, frames: 75 });
    assert.equal(x264.codec, 'x264');
    assert.ok(x264.plan!.segments.some((seg) => seg.regions.some((r) => r.kind === 'face')), 'the analysis found the face');
    const master = 'G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)';
    const hdr = fixture(dir, 'hdr10.mp4', (out) => [
      '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25:duration=0.4', '-vf', 'format=yuv420p10le',
      '-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', `log-level=error:hdr10=1:repeat-headers=1:master-display=${master}:max-cll=1000,400`,
      '-color_primaries', 'bt2020', '-color_trc', 'smpte2084', '-colorspace', 'bt2020nc', '-color_range', 'tv', out]);
    const r = await encode(hdr, join(dir, 'hdr10-180.mp4'), { roi: 'none', height: 180, preset: 'ultrafast', force: true });
    assert.deepEqual(probedSize(r.output), { width: 320, height: 180, frames: 10 });
    assert.deepEqual(
      { pixelFormat: r.picture!.pixelFormat, primaries: r.picture!.colorPrimaries, transfer: r.picture!.colorTransfer, space: r.picture!.colorSpace, range: r.picture!.colorRange, maxCll: r.picture!.contentLightLevel?.maxContent, mastering: r.picture!.masteringDisplay !== undefined },
      { pixelFormat: 'yuv420p10le', primaries: 'bt2020', transfer: 'smpte2084', space: 'bt2020nc', range: 'tv', maxCll: 1000, mastering: true },
    );
  });

  it('meets --match-crf at --height 150, measured against the source scaled as the encode scales it', async () => {
    const out = join(dir, 'match-150.mp4');
    const r = await encode(head(), out, { matchCrf: 28, height: 150, preset: 'fast', force: true });
    const t = r.target!;
    assert.equal(t.applied, true);
    assert.deepEqual(probedSize(out), { width: 200, height: 150, frames: 75 });
    // The whole-output figure came from the final encode's own (scaled) tap; measured again here
    // from an FFV1 copy of the scaled source, it is the same to the last digit.
    assert.equal(t.sourceDecodedOnce, true);
    const size = { width: 200, height: 150 };
    const q = await measureFaces(scaledReference(head(), size), out, scalePlan(r.plan!, size, 16), resolveBinaries(), { pairBy: 'index' });
    assert.equal(q.facePsnr, t.facePsnr);
    assert.equal(q.faceSsim, t.faceSsim);
    // Measured: CRF 29.5, faces 38.56 dB against the reference's 38.54 (estimated from the samples).
    assert.ok(t.met, `faces ${t.facePsnr} dB, target ${t.targetFacePsnr} dB`);
    assert.ok(t.crf > 28, `CRF ${t.crf}`);
  });

  it('measures a scaled --match-crf by decoding a scaled copy when the tap cannot serve (full-range source), and verifies the reference at the output size', async () => {
    const full = fixture(dir, 'head3-full-range.mp4', (out) => ['-i', head(), '-vf', 'format=yuvj420p', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '12', out]);
    const out = join(dir, 'match-full-150.mp4');
    const r = await encode(full, out, { matchCrf: 28, height: 150, preset: 'fast', verifyReference: true, force: true });
    const t = r.target!;
    assert.equal(t.sourceDecodedOnce, false);
    assert.equal(t.reference!.measuredOn, 'whole');
    const size = { width: 200, height: 150 };
    const q = await measureFaces(scaledReference(full, size), out, scalePlan(r.plan!, size, 16), resolveBinaries(), { pairBy: 'index' });
    assert.equal(q.facePsnr, t.facePsnr);
    // The uniform reference's whole-video face PSNR, at 200x150 too. Measured: output CRF 29.3, faces
    // 39.13 dB, reference 39.10; unscaled, the same reference's faces are 41.85 dB, 2.75 dB away.
    assert.ok(Math.abs(t.reference!.facePsnr - t.facePsnr) < 1, `reference ${t.reference!.facePsnr} dB, output ${t.facePsnr} dB`);
  });

  it('refuses bad values in one line, exit 1, nothing written', () => {
    const src = head();
    const cases: [string[], RegExp][] = [
      [['--height', '0'], /^roi-encode: Expected integer 16–16384 for --height but received 0$/],
      [['--height', 'abc'], /^roi-encode: Expected integer 16–16384 for --height but received 'abc'$/],
      [['--width', '-2'], /^roi-encode: Expected integer 16–16384 for --width but received -2$/],
      [['--height', '151'], /^roi-encode: Expected even integer 16–16384 \(4:2:0 video needs even sides\) for --height but received 151$/],
      [['--height', '150', '--width', '200'], /^roi-encode: Expected --height or --width, not both \(.*\): drop one$/],
      [['--height', '600'], /^roi-encode: --height 600 is above the source's 300 \(.*head3\.mp4 is 400x300\): roi-encoder scales down only/],
      [['--width', '16'], /^roi-encode: --width 16 makes the 400x300 input 16x12, too small to encode/],
      // Validated before Redis is reached: a bad size with --redis fails at once, without a connection.
      [['--height', '151', '--redis', 'redis://127.0.0.1:1'], /^roi-encode: Expected even integer 16–16384 .* for --height but received 151$/],
    ];
    for (const [args, message] of cases) {
      const out = join(dir, 'out-bad.mp4');
      const r = cli([src, '-o', out, ...(args.includes('--roi') ? [] : ['--roi', 'none']), ...args]);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr.trim(), message);
      assert.ok(!existsSync(out), `${args.join(' ')} wrote ${out}`);
    }
    assert.deepEqual(outputs(), []);
  });
});
