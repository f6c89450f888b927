import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { ScoredBox } from '../src/analysis/boxes.js';
import { MEDIAPIPE_FULL_MODEL, MediaPipeFullDetector, pyramidWindows } from '../src/analysis/mediapipe-detector.js';
import { RoiError } from '../src/media/errors.js';
import { analyze } from '../src/index.js';
import { centre, devComposite, SAMPLE, STREET, workDir } from './helpers.js';

const dir = workDir('mediapipe');
/** Between the lowest verified face score on the 200 dev-composite frames (0.78) and street texture's best (0.39). */
const MIN_SCORE = 0.6;

/** Decodes one frame, at `time` seconds (or the only frame of a still), to packed RGB24 at the input's size. */
function rgbFrame(input: string, width: number, height: number, time?: number): Uint8Array {
  // Seeking before -i is frame-exact here: ffmpeg decodes from the previous keyframe and drops up to `time`.
  const seek = time === undefined ? [] : ['-ss', String(time)];
  const out = execFileSync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', ...seek, '-i', input, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { maxBuffer: 1 << 26 });
  assert.equal(out.length, width * height * 3, `ffmpeg gave ${out.length} bytes for a ${width}x${height} frame`);
  return out;
}

function near(a: [number, number], b: [number, number], tolerance: number): boolean {
  return Math.hypot(a[0] - b[0], a[1] - b[1]) <= tolerance;
}

/** Sampled frames of the dev composite (1280x720, 25 fps), by frame index; built and decoded once. */
const DEV_FRAMES = [0, 50, 100, 150, 199];
let devFrames: Uint8Array[] | undefined;
function devCompositeFrames(): Uint8Array[] {
  const clip = devComposite(dir);
  devFrames ??= DEV_FRAMES.map((n) => rgbFrame(clip, 1280, 720, n / 25));
  return devFrames;
}

const show = (faces: ScoredBox[]) => faces.map((f) => `${f.score.toFixed(2)}@(${centre(f).map(Math.round).join(',')}) w${Math.round(f.w)}`).join(' ');

describe('MediaPipe full-range detector', () => {
  it('loads on the wasm backend and leaves the process error handlers alone', async () => {
    const count = () => [process.listenerCount('uncaughtException'), process.listenerCount('unhandledRejection')];
    const before = count();
    const detector = await MediaPipeFullDetector.create({ minScore: MIN_SCORE });
    assert.equal(detector.backend, 'wasm');
    assert.deepEqual(count(), before);
    // Cached: a second detector reuses the loaded model.
    await MediaPipeFullDetector.create({ minScore: 0.9 });
  });

  it('finds all three faces of the dev composite, the smallest (about 30 px) within 15 px', async () => {
    const detector = await MediaPipeFullDetector.create({ minScore: MIN_SCORE });
    for (const [k, rgb] of devCompositeFrames().entries()) {
      const t = DEV_FRAMES[k]! / 25;
      // Where make-dev-composite.sh puts each picture-in-picture, and where the face sits inside it.
      const expected = [
        { x: 80 + 40 * t, y: 300, w: 360, h: 270, flip: false },
        { x: 1000 - 60 * t, y: 80 + 12 * t, w: 200, h: 150, flip: true },
        { x: 700, y: 560, w: 120, h: 90, flip: false },
      ].map((p) => ({ at: [p.x + p.w * (p.flip ? 1 - 0.515 : 0.515), p.y + p.h * 0.625] as [number, number], w: p.w }));
      const faces = await detector.detect(rgb, 1280, 720);
      for (const [i, e] of expected.entries()) {
        const tolerance = i === 2 ? 15 : e.w * 0.1;
        const match = faces.find((f) => near(centre(f), e.at, tolerance));
        assert.ok(match, `t=${t}s: no face near (${e.at.map(Math.round).join(',')}); found ${show(faces)}`);
        assert.ok(match.w > 0.15 * e.w && match.w < 0.35 * e.w, `t=${t}s: face ${i + 1} is ${Math.round(match.w)} px wide`);
      }
      const stray = faces.filter((f) => !expected.some((e) => near(centre(f), e.at, e.w * 0.15)));
      assert.equal(stray.length, 0, `t=${t}s: detections away from the faces: ${show(stray)}`);
    }
  });

  it('finds no faces in a street photo without people', async () => {
    const detector = await MediaPipeFullDetector.create({ minScore: MIN_SCORE });
    const faces = await detector.detect(rgbFrame(STREET, 751, 563), 751, 563);
    assert.deepEqual(faces, [], `found ${show(faces)}`);
  });

  it('finds the talking head near (205, 188)', async () => {
    const detector = await MediaPipeFullDetector.create({ minScore: MIN_SCORE });
    for (const time of [0, 4, 8]) {
      const rgb = rgbFrame(SAMPLE, 400, 300, time);
      const faces = await detector.detect(rgb, 400, 300);
      assert.equal(faces.length, 1, `found ${show(faces)}`);
      const face = faces[0]!;
      assert.ok(near(centre(face), [205, 188], 15), `face at ${show(faces)}`);
      assert.ok(face.w > 70 && face.w < 130 && face.score >= MIN_SCORE, `face ${show(faces)}`);
    }
  });

  it('plugs into the same scan/follow pipeline as BlazeFace through analyze()', async () => {
    const plan = await analyze(SAMPLE, { faceDetector: 'mediapipe-full' });
    const stats = plan.analysis!;
    assert.ok(stats.followPasses >= stats.samples / 2, `${stats.followPasses} follow passes of ${stats.samples} samples`);
    const hits = plan.detections.filter((d) => d.faces.length === 1 && near(centre(d.faces[0]!), [205, 188], 20));
    assert.equal(hits.length, plan.detections.length, `face found on ${hits.length} of ${plan.detections.length} samples`);
  });

  it('does not leak tensors over repeated calls', async () => {
    const detector = await MediaPipeFullDetector.create({ minScore: MIN_SCORE });
    const small = rgbFrame(SAMPLE, 400, 300, 2);
    const large = devCompositeFrames()[1]!;
    await detector.detect(small, 400, 300);
    const { numTensors, numBytes } = tf.memory();
    for (let i = 0; i < 6; i++) await detector.detect(i % 3 ? small : large, i % 3 ? 400 : 1280, i % 3 ? 300 : 720);
    assert.equal(tf.memory().numTensors, numTensors);
    assert.equal(tf.memory().numBytes, numBytes);
  });

  it('tiles only where the whole frame would miss a minFaceSize face', () => {
    assert.equal(pyramidWindows(400, 300, 24).length, 1);
    const hd = pyramidWindows(1280, 720, 24);
    assert.equal(hd.length, 16);
    // The tiles cover the frame.
    for (const [x, y] of [[0, 0], [1279, 0], [640, 360], [0, 719], [1279, 719]] as const) {
      assert.ok(hd.slice(1).some((w) => x >= w.x && x < w.x + w.size && y >= w.y && y < w.y + w.size), `(${x},${y}) not in a tile`);
    }
    assert.equal(pyramidWindows(1280, 720, 90).length, 1);
    // 4K with small faces: two tile levels.
    const sizes = new Set(pyramidWindows(3840, 2160, 24).map((w) => w.size));
    assert.equal(sizes.size, 3);
  });

  it('rejects a missing model file with MODEL_MISSING', async () => {
    await assert.rejects(MediaPipeFullDetector.create({ minScore: 0.5, model: join(dir, 'absent.json') }), (error: unknown) => {
      assert.ok(error instanceof RoiError);
      assert.equal(error.code, 'MODEL_MISSING');
      assert.match(error.message, /absent\.json/);
      return true;
    });
    // The JSON alone, without the weights it names.
    const lonely = join(dir, 'facemesh-detection-full.json');
    copyFileSync(MEDIAPIPE_FULL_MODEL, lonely);
    await assert.rejects(MediaPipeFullDetector.create({ minScore: 0.5, model: lonely }), (error: unknown) => {
      assert.ok(error instanceof RoiError);
      assert.equal(error.code, 'MODEL_MISSING');
      assert.match(error.message, /facemesh-detection-full\.bin/);
      return true;
    });
  });
});
