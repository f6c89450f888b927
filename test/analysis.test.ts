import assert from 'node:assert/strict';
import { existsSync, readFileSync, truncateSync, copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FaceMasks } from '../src/report/metrics.js';
import { analyze, planToJson, validatePlan, type Plan } from '../src/index.js';
import { centre, cli, devComposite, fixture, MEDIA, SAMPLE, workDir } from './helpers.js';

const dir = workDir('analysis');

function near(a: [number, number], b: [number, number], tolerance: number): boolean {
  return Math.hypot(a[0] - b[0], a[1] - b[1]) <= tolerance;
}

/** Regions of kind face that apply on frame n. */
function faceRegionsAt(plan: Plan, n: number) {
  const seg = plan.segments.find((s) => s.startFrame <= n && n < s.endFrame);
  assert.ok(seg, `no segment covers frame ${n}`);
  return seg.regions.filter((r) => r.kind === 'face');
}

describe('analysis on real video', () => {
  it('finds the talking head near its known position on almost every sample', async () => {
    const plan = await analyze(SAMPLE);
    assert.equal(plan.input.frameCount, 252);
    assert.equal(plan.input.width, 400);
    // The face (checked by eye on the debug video) is centred near (205, 188), about 100 px wide.
    const hits = plan.detections.filter((d) => d.faces.some((f) => near(centre(f), [205, 188], 30) && f.w > 70 && f.w < 130));
    assert.ok(plan.detections.length >= 25, `only ${plan.detections.length} samples`);
    assert.ok(hits.length / plan.detections.length >= 0.95, `face found on ${hits.length} of ${plan.detections.length} samples`);
    const stray = plan.detections.filter((d) => d.faces.some((f) => !near(centre(f), [205, 188], 60)));
    assert.equal(stray.length, 0, 'detections away from the only face');
    // Every frame of a face-filled clip carries a face region, first in its segment.
    for (const s of plan.segments) assert.equal(s.regions[0]?.kind, 'face');
    // One person, one track: every detection says which face it is, for measuring it between samples.
    assert.deepEqual([...new Set(plan.detections.flatMap((d) => d.faces.map((f) => f.track)))], [1]);
  });

  it('puts the face box of astronaut.png where the face is', async () => {
    const clip = fixture(dir, 'astronaut.mp4', (out) => ['-loop', '1', '-i', join(MEDIA, 'astronaut.png'), '-t', '1', '-r', '25', '-vf', 'format=yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast', out]);
    const plan = await analyze(clip);
    assert.ok(plan.detections.length > 0);
    for (const d of plan.detections) {
      assert.equal(d.faces.length, 1, `frame ${d.frame}: ${d.faces.length} faces`);
      // By eye: eyes at y≈110, mouth at y≈145, face spans x≈178–272.
      const f = d.faces[0]!;
      assert.ok(near(centre(f), [225, 125], 15), `face centre ${centre(f)} is off`);
      assert.ok(f.w > 75 && f.w < 130, `face width ${f.w}`);
    }
  });

  it('maps faces into coded pixels for rotated video', async () => {
    // Coded frames hold the portrait turned a quarter clockwise; the display matrix (ffprobe: rotation=90,
    // i.e. 90° counter-clockwise) turns it back upright, which the plan records as 270° clockwise.
    const sideways = fixture(dir, 'astronaut-sideways.mp4', (out) => ['-loop', '1', '-i', join(MEDIA, 'astronaut.png'), '-t', '0.6', '-r', '25', '-vf', 'transpose=clock,format=yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast', out]);
    const clip = fixture(dir, 'astronaut-rotated.mp4', (out) => ['-i', sideways, '-c', 'copy', '-metadata:s:v', 'rotate=90', out]);
    const plan = await analyze(clip);
    assert.equal(plan.input.rotation, 270);
    // transpose=clock sends (x, y) to (511 - y, x): the face centre (225, 125) lands near (386, 225).
    for (const d of plan.detections) {
      assert.equal(d.faces.length, 1);
      assert.ok(near(centre(d.faces[0]!), [386, 225], 15), `face centre ${centre(d.faces[0]!)} is off`);
    }
  });

  it('finds all three faces of the dev composite, the smallest about 30 px wide', async () => {
    const plan = await analyze(devComposite(dir));
    assert.equal(plan.input.width, 1280);
    // Where make-dev-composite.sh puts each picture-in-picture, and where the face sits inside it
    // (the talking head's face spans 39–64% of its width, 46–79% of its height).
    const expected = (t: number) => [
      { x: 80 + 40 * t, y: 300, w: 360, h: 270, flip: false },
      { x: 1000 - 60 * t, y: 80 + 12 * t, w: 200, h: 150, flip: true },
      { x: 700, y: 560, w: 120, h: 90, flip: false },
    ].map((p) => [p.x + p.w * (p.flip ? 1 - 0.515 : 0.515), p.y + p.h * 0.625, p.w * 0.25] as const);
    const found = [0, 0, 0];
    const smallest: number[] = [];
    for (const d of plan.detections) {
      expected(d.time).forEach(([cx, cy, size], i) => {
        const match = d.faces.find((f) => near(centre(f), [cx, cy], size * 0.6));
        if (match) {
          found[i]!++;
          if (i === 2) smallest.push(match.w);
        }
      });
      assert.ok(d.faces.length <= 4, `frame ${d.frame}: ${d.faces.length} faces`);
    }
    for (const [i, n] of found.entries()) assert.ok(n / plan.detections.length >= 0.9, `face ${i + 1} found on ${n} of ${plan.detections.length} samples`);
    const median = smallest.sort((a, b) => a - b)[Math.floor(smallest.length / 2)]!;
    assert.ok(median >= 22 && median <= 40, `smallest face is ${median} px wide`);
  });

  it('finds no faces in a clip with no people', async () => {
    const clip = fixture(dir, 'street.mp4', (out) => ['-loop', '1', '-i', join(MEDIA, 'street.jpg'), '-t', '2', '-r', '25', '-vf', "scale=1600:-2,crop=1280:720:x='40+20*t':y='20+10*t',format=yuv420p", '-c:v', 'libx264', '-preset', 'ultrafast', out]);
    const plan = await analyze(clip);
    assert.equal(plan.input.frameCount, 50);
    assert.equal(plan.detections.reduce((n, d) => n + d.faces.length, 0), 0);
    for (const s of plan.segments) assert.deepEqual(s.regions.map((r) => r.kind), ['background']);
  });

  it('keeps a fast-moving face covered on every frame', async () => {
    // A 120 px portrait patch (face centred in it, ~70 px wide) crosses a 640x360 street at 350 px/s
    // while bobbing up and down: non-linear motion between samples.
    const clip = fixture(dir, 'moving-face.mp4', (out) => [
      '-loop', '1', '-i', join(MEDIA, 'street.jpg'), '-loop', '1', '-i', join(MEDIA, 'astronaut.png'),
      '-filter_complex', "[0]scale=640:360,setsar=1[bg];[1]crop=160:160:145:45,scale=120:120[fg];[bg][fg]overlay=x='20+350*t':y='100+60*sin(2*PI*t)',format=yuv420p",
      '-t', '1.6', '-r', '25', '-c:v', 'libx264', '-preset', 'ultrafast', out]);
    const plan = await analyze(clip);
    assert.equal(plan.input.frameCount, 40);
    for (let n = 0; n < 40; n++) {
      const t = n / 25;
      const cx = 20 + 350 * t + 60;
      const cy = 100 + 60 * Math.sin(2 * Math.PI * t) + 60;
      // The inner face (eyes to mouth, ±30 px around the centre, within the frame) must lie inside one face region.
      const [x0, y0, x1, y1] = [Math.max(0, cx - 30), Math.max(0, cy - 30), Math.min(640, cx + 30), Math.min(360, cy + 30)];
      const covered = faceRegionsAt(plan, n).some((r) => r.x <= x0 && r.y <= y0 && r.x + r.w >= x1 && r.y + r.h >= y1);
      assert.ok(covered, `frame ${n}: face at (${cx.toFixed(0)}, ${cy.toFixed(0)}) is not covered`);
    }
    // The quality measurement follows it too: the face box it measures stays on the face on every
    // frame. Holding the nearest sample's box would put it up to 56 px off (14 px a frame); moving it
    // linearly between samples leaves ~20 px where the bob turns.
    const masks = new FaceMasks(plan, 640, 360);
    for (let n = 0; n < 40; n++) {
      const t = n / 25;
      const boxes = masks.facesAt(n);
      assert.equal(boxes.length, 1, `frame ${n}`);
      const [bx, by] = centre(boxes[0]!);
      assert.ok(near([bx, by], [20 + 350 * t + 60, 100 + 60 * Math.sin(2 * Math.PI * t) + 60], 30), `frame ${n}: measured at (${bx.toFixed(0)}, ${by.toFixed(0)})`);
    }
  });

  it('round-trips the plan through JSON and rejects broken plans', async () => {
    const plan = await analyze(SAMPLE, { sampleFps: 1 });
    const back = validatePlan(JSON.parse(planToJson(plan)));
    assert.deepEqual(back, plan);
    const broken = structuredClone(plan);
    broken.segments[0]!.endFrame -= 1; // leaves a gap
    assert.throws(() => validatePlan(broken), /gaps/);
    const outside = structuredClone(plan);
    outside.segments[0]!.regions[0]!.w = 10_000;
    assert.throws(() => validatePlan(outside), /outside/);
    assert.throws(() => validatePlan({ ...plan, version: 2 }), /version/);
  });
});

describe('analyze CLI', () => {
  it('writes a plan file and a debug video', () => {
    const out = join(dir, 'plan.json');
    const debug = join(dir, 'debug.mp4');
    const r = cli(['analyze', SAMPLE, '--roi', 'faces', '--sample-fps', '2', '-o', out, '--debug-video', debug]);
    assert.equal(r.code, 0, r.stderr);
    const plan = validatePlan(JSON.parse(readFileSync(out, 'utf8')));
    assert.equal(plan.settings.sampleFps, 2);
    assert.ok(existsSync(debug));
  });

  it('prints the plan on stdout without -o', () => {
    const r = cli(['analyze', SAMPLE, '--sample-fps', '1']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(validatePlan(JSON.parse(r.stdout)).input.frameCount, 252);
  });

  const bad: [string, () => string[], RegExp][] = [
    ['a missing file', () => [join(dir, 'nope.mp4')], /input not found/],
    ['a non-video', () => {
      writeFileSync(join(dir, 'notes.txt'), 'not a video\n');
      return [join(dir, 'notes.txt')];
    }, /not a readable video/],
    ['a file with no video stream', () => [fixture(dir, 'tone.m4a', (out) => ['-f', 'lavfi', '-i', 'sine=frequency=440:duration=1', '-c:a', 'aac', out])], /no video stream/],
    ['a truncated file', () => {
      const cut = join(dir, 'truncated.mp4');
      copyFileSync(SAMPLE, cut);
      truncateSync(cut, 90_000);
      return [cut];
    }, /truncated/],
    ['an unknown --roi kind', () => [SAMPLE, '--roi', 'cars'], /Expected one or more of faces, saliency for roi but received 'cars'/],
    ['a bad --sample-fps', () => [SAMPLE, '--sample-fps', 'abc'], /Expected number 0.1–240 for sampleFps but received 'abc'/],
    ['an unknown option', () => [SAMPLE, '--sample-rate', '3'], /^roi-encode: Unknown argument: sample-rate \(see roi-encode --help\)$/m],
  ];
  for (const [what, args, message] of bad) {
    it(`rejects ${what} with one line and writes nothing`, () => {
      const out = join(dir, `rejected-${what.replace(/\W+/g, '-')}.json`);
      const r = cli(['analyze', ...args(), '-o', out]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /\bat \S+ \(/, 'stack trace printed');
      assert.equal(existsSync(out), false);
    });
  }

  it('reports usage errors as an NDJSON error event with --json', () => {
    const r = cli(['analyze', SAMPLE, '--bogus', '--json']);
    assert.equal(r.code, 1);
    assert.deepEqual(JSON.parse(r.stdout), { type: 'error', code: 'INVALID_ARGUMENTS', message: 'Unknown argument: bogus (see roi-encode --help)' });
  });
});
