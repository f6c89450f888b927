import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { analyze, encode, measureQuality, MAX_SAMPLE_TRIES, TARGET_TOLERANCE_DB, type Plan } from '../src/index.js';
import { chooseStretches, samplePlans } from '../src/strategies/face-target.js';
import { resolveBinaries } from '../src/media/binaries.js';
import { faceRegions, measureFaces } from '../src/report/metrics.js';
import { videoStreamBytes } from '../src/media/probe.js';
import { cli, fixture, SAMPLE, STREET, workDir } from './helpers.js';

const dir = workDir('target');
const bins = resolveBinaries();
// 5 s of the talking head (125 frames), video only; preset fast keeps the file short.
const clip = fixture(dir, 'head-5s.mp4', (out) => ['-i', SAMPLE, '-t', '5', '-an', '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '12', out]);
const PRESET = 'fast';
let plan: Plan | undefined;
const planOf = async () => (plan ??= await analyze(clip));

describe('face-quality target', () => {
  it('--match-crf: faces within the tolerance of the uniform reference (both measured on the whole video), smaller, bounded tries', async () => {
    const p = await planOf();
    const out = join(dir, 'match.mp4');
    const r = await encode(clip, out, { matchCrf: 23, preset: PRESET, plan: p, force: true });
    const t = r.target!;
    assert.equal(t.applied, true);
    assert.equal(t.referenceCrf, 23);
    assert.ok(t.sampleTries >= 1 && t.sampleTries <= MAX_SAMPLE_TRIES, `${t.sampleTries} sample tries`);
    assert.ok(t.tries.filter((x) => x.on === 'whole').length <= 2, 'at most one correction');
    // The reference, encoded and measured here on the whole clip.
    const ref = await encode(clip, join(dir, 'ref-23.mp4'), { roi: 'none', crf: 23, preset: PRESET, force: true });
    const qRef = await measureQuality(clip, ref.output, p, bins);
    const qOut = await measureQuality(clip, out, p, bins);
    // Measured against the source frames the final encode decoded (a yuv420p source): measureQuality's figures.
    assert.equal(t.sourceDecodedOnce, true);
    assert.ok(Math.abs(qOut.facePsnr - t.facePsnr) < 1e-9, 'the reported face PSNR is the whole output\'s');
    assert.ok(Math.abs(qOut.faceSsim - t.faceSsim) < 1e-9, 'the reported face SSIM is the whole output\'s');
    // The faces-only measurement the search and the check use gives measureQuality's face figures.
    const faces = await measureFaces(clip, out, p, bins);
    assert.ok(Math.abs(faces.facePsnr - qOut.facePsnr) < 1e-9 && Math.abs(faces.facePsnrY - qOut.facePsnrY) < 1e-9, `faces-only ${faces.facePsnr} vs ${qOut.facePsnr}`);
    assert.ok(Math.abs(faces.faceSsim - qOut.faceSsim) < 1e-9, `faces-only SSIM ${faces.faceSsim} vs ${qOut.faceSsim}`);
    assert.equal(faces.frames, qOut.frames);
    faces.facePsnrPerFrame.forEach((v, i) => assert.ok(Object.is(v, qOut.facePsnrPerFrame[i]) || Math.abs(v - qOut.facePsnrPerFrame[i]!) < 1e-9, `frame ${i}`));
    const diff = qOut.facePsnr - qRef.facePsnr;
    assert.ok(diff >= -TARGET_TOLERANCE_DB, `faces ${qOut.facePsnr.toFixed(2)} dB vs reference ${qRef.facePsnr.toFixed(2)} dB (${diff.toFixed(2)})`);
    const [outBytes, refBytes] = [(await videoStreamBytes(out, bins)).bytes, (await videoStreamBytes(ref.output, bins)).bytes];
    assert.ok(outBytes < refBytes * 0.9, `output ${outBytes} B vs reference ${refBytes} B`);
    console.log(`match-crf 23: CRF ${t.crf}, faces ${qOut.facePsnr.toFixed(2)} vs ${qRef.facePsnr.toFixed(2)} dB (estimated ${t.reference!.facePsnr.toFixed(2)}), size ${(outBytes / refBytes).toFixed(3)} (predicted ${t.predicted.sizeRatio!.toFixed(3)}), ${t.sampleTries} tries`);
  });

  it('--match-crf at 30 fps from a 4:2:2 source into Matroska: samples and the whole output pair frame by frame; the check decodes the source again, with the same figures', async () => {
    // At 25 fps every frame time is a whole millisecond, so only other rates show a mismatch between
    // the sample file's timestamps and its sample encodes'. A 4:2:2 source cannot lend the check its
    // decoded frames (they would need converting), so the source is decoded again to measure.
    const clip30 = fixture(dir, 'head-30fps-422.mp4', (out) => ['-i', SAMPLE, '-t', '3', '-an', '-vf', 'fps=30,format=yuv422p', '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '12', out]);
    // Matroska keeps millisecond timestamps, which at 30 fps do not match the source's: the check
    // pairs the output's frames with the source's by index.
    const out = join(dir, 'match-30fps.mkv');
    const r = await encode(clip30, out, { matchCrf: 26, preset: 'veryfast', force: true });
    assert.equal(r.target!.applied, true);
    assert.equal(r.target!.sourceDecodedOnce, false);
    assert.equal(r.frames, 90);
    assert.ok(r.target!.met, `faces ${r.target!.facePsnr} dB against ${r.target!.targetFacePsnr} dB`);
    const q = await measureFaces(clip30, out, r.plan!, bins);
    assert.ok(Math.abs(q.facePsnr - r.target!.facePsnr) < 1e-9, `${q.facePsnr} vs ${r.target!.facePsnr}`);
  });

  it('--target-face-psnr: the whole output reaches the target within the tolerance; an unreachable target is one clear error', async () => {
    const p = await planOf();
    const out = join(dir, 'target.mp4');
    const r = await encode(clip, out, { targetFacePsnr: 42, preset: PRESET, plan: p, force: true });
    const q = await measureQuality(clip, out, p, bins);
    assert.ok(q.facePsnr >= 42 - TARGET_TOLERANCE_DB, `faces ${q.facePsnr.toFixed(2)} dB`);
    assert.ok(r.target!.sampleTries <= MAX_SAMPLE_TRIES);
    assert.ok(r.crf !== undefined && r.crf > 23 && r.crf < 40, `CRF ${r.crf}`);
    const far = join(dir, 'unreachable.mp4');
    await assert.rejects(encode(clip, far, { targetFacePsnr: 90, preset: PRESET, plan: p }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'TARGET_UNREACHABLE');
      assert.match(e.message, /face PSNR 90\.0 dB is out of reach .*even CRF 0 gives its faces \d+\.\d dB/);
      return true;
    });
    assert.equal(existsSync(far), false, 'nothing written');
  });

  it('a video without faces: the target cannot apply, the encode runs at the reference CRF and says so', async () => {
    const street = fixture(dir, 'street.mp4', (o) => ['-loop', '1', '-i', STREET, '-t', '1', '-r', '25', '-vf', 'scale=320:240,format=yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast', o]);
    const notices: string[] = [];
    const r = await encode(street, join(dir, 'street-out.mp4'), { matchCrf: 25, preset: 'veryfast', force: true, onNotice: (m) => notices.push(m) });
    assert.equal(r.target!.applied, false);
    assert.equal(r.crf, 25);
    assert.match(notices[0] ?? '', /no faces found .* cannot apply: encoded at CRF 25 instead/);
  });

  it('validates targets early, sharp-style', async () => {
    const out = join(dir, 'never.mp4');
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ matchCrf: 52 }, /Expected number 0–51 for matchCrf but received 52/],
      [{ matchCrf: 'abc' }, /Expected number 0–51 for matchCrf but received 'abc'/],
      [{ targetFacePsnr: 5 }, /Expected number 10–100 for targetFacePsnr but received 5/],
      [{ matchCrf: 23, crf: 23 }, /for crf but received 23/],
      [{ matchCrf: 23, targetFacePsnr: 40 }, /for targetFacePsnr/],
      [{ matchCrf: 23, roi: 'none' }, /for roi but received 'none'/],
    ];
    for (const [options, message] of cases) await assert.rejects(encode('missing-input.mp4', out, options), message);
  });

  it('faceRegions: face boxes widened to the 4-pixel SSIM grid, boxes within a block of each other merged, clamped to the frame', () => {
    assert.deepEqual(faceRegions([{ x: 10.5, y: 21, w: 20, h: 10 }], 640, 360), [{ x0: 8, y0: 20, x1: 32, y1: 32 }]);
    // Overlapping, and 4 px apart on the grid: one region; far apart: two.
    assert.deepEqual(faceRegions([{ x: 0, y: 0, w: 16, h: 16 }, { x: 20, y: 8, w: 8, h: 8 }], 640, 360), [{ x0: 0, y0: 0, x1: 28, y1: 16 }]);
    assert.equal(faceRegions([{ x: 0, y: 0, w: 16, h: 16 }, { x: 200, y: 200, w: 16, h: 16 }], 640, 360).length, 2);
    assert.deepEqual(faceRegions([{ x: 630, y: 350, w: 30, h: 30 }, { x: 700, y: 0, w: 5, h: 5 }], 642, 362), [{ x0: 628, y0: 348, x1: 642, y1: 362 }]);
  });

  it('chooseStretches: a stretch at frame 0 needs no warm-up, so it beats a slightly richer one later, not a much richer one', async () => {
    const p = await planOf();
    // 125 frames at 25 fps: one stretch of 25 measured frames, 10 frames of warm-up where one is needed.
    const withFaces = (later: number) => ({
      ...p,
      detections: Array.from({ length: p.input.frameCount }, (_, frame) => {
        const side = frame < 25 ? 100 : frame >= 60 && frame < 85 ? later : 0;
        return { frame, time: frame / 25, faces: side ? [{ x: 10, y: 10, w: side, h: side, score: 0.9 }] : [] };
      }),
    });
    // 4% more face area later: 25 frames of faces for 25 encoded at frame 0, against 35 later.
    assert.deepEqual(chooseStretches(withFaces(102)), [{ warmStart: 0, start: 0, end: 25 }]);
    // 69% more: worth its warm-up.
    assert.deepEqual(chooseStretches(withFaces(130)), [{ warmStart: 50, start: 60, end: 85 }]);
  });

  it('samples: face-rich stretches with warm-ups, plans that line up with them', async () => {
    const p = await planOf();
    const stretches = chooseStretches(p);
    assert.ok(stretches.length >= 1);
    for (const s of stretches) assert.ok(s.warmStart <= s.start && s.start < s.end && s.end <= p.input.frameCount);
    const times = Float64Array.from({ length: p.input.frameCount }, (_, i) => i / p.input.frameRate);
    const sp = samplePlans(p, stretches, times);
    assert.equal(sp.encode.segments.at(-1)!.endFrame, sp.frames);
    const warm = stretches[0]!.start - stretches[0]!.warmStart;
    // The judge plan has no faces in the warm-up.
    if (warm > 0) assert.deepEqual(sp.judge.detections[0]!.faces, []);
  });

  it('CLI: --match-crf prints what was reached; --json done carries the fields; a bad target is one line', () => {
    const out = join(dir, 'cli.mp4');
    const r = cli([clip, '-o', out, '--match-crf', '24', '--preset', PRESET, '--force', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const done = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.type === 'done')!;
    const t = done.target as Record<string, unknown>;
    assert.equal(t.kind, 'matchCrf');
    assert.equal(done.crf, t.crf);
    for (const key of ['facePsnr', 'faceSsim', 'reference', 'predicted', 'sizeRatio', 'sizeRatioMeasuredOn', 'sampleTries', 'tries', 'samples', 'tolerance', 'met']) assert.ok(key in t, key);
    assert.equal((t.reference as { measuredOn: string }).measuredOn, 'samples');
    const bad = cli([clip, '-o', join(dir, 'bad.mp4'), '--match-crf', '60']);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr.trim(), "roi-encode: Expected number 0–51 for --match-crf but received 60");
  });
});
