import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, truncateSync, copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FaceMasks } from '../src/report/metrics.js';
import { analyze, planToJson, validatePlan, type Plan } from '../src/index.js';
import { cutScore, dropExpression, FRAME_QUEUE_BOUND, MAX_GOP_DECODE_SHARE, mergeStretches, planSampling, rangesDropExpression, sampleFrames, selectedFrames, selectedFramesArgs, uprightFilters } from '../src/analysis/frames.js';
import { ANALYZE_DEFAULTS } from '../src/analysis/analyze.js';
import { debugPieces } from '../src/analysis/debug-video.js';
import { FaceDetector } from '../src/analysis/face-detector.js';
import { FaceScanner, type FaceModel, type ScanPolicy } from '../src/analysis/face-scan.js';
import type { ScoredBox } from '../src/analysis/boxes.js';
import { resolveBinaries } from '../src/media/binaries.js';
import { probeVideo } from '../src/media/probe.js';
import { ASTRONAUT, centre, cli, devComposite, ffprobeJson, fixture, frameTimes, SAMPLE, STREET, workDir } from './helpers.js';

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

/** The street alone for 1.5 s, then a ~70 px face appears where nothing was (no cut: 6% of the frame changes). */
const faceAppears = () =>
  fixture(dir, 'face-appears.mp4', (out) => [
    '-loop', '1', '-i', STREET, '-loop', '1', '-i', ASTRONAUT,
    '-filter_complex', "[0]scale=640:360,setsar=1[bg];[1]crop=160:160:145:45,scale=120:120[fg];[bg][fg]overlay=x=400:y=150:enable='gte(t,1.5)',format=yuv420p",
    '-t', '4', '-r', '25', '-c:v', 'libx264', '-preset', 'ultrafast', out]);

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
    const clip = fixture(dir, 'astronaut.mp4', (out) => ['-loop', '1', '-i', ASTRONAUT, '-t', '1', '-r', '25', '-vf', 'format=yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast', out]);
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
    const sideways = fixture(dir, 'astronaut-sideways.mp4', (out) => ['-loop', '1', '-i', ASTRONAUT, '-t', '0.6', '-r', '25', '-vf', 'transpose=clock,format=yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast', out]);
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
    const clip = fixture(dir, 'street.mp4', (out) => ['-loop', '1', '-i', STREET, '-t', '2', '-r', '25', '-vf', "scale=1600:-2,crop=1280:720:x='40+20*t':y='20+10*t',format=yuv420p", '-c:v', 'libx264', '-preset', 'ultrafast', out]);
    const plan = await analyze(clip);
    assert.equal(plan.input.frameCount, 50);
    assert.equal(plan.detections.reduce((n, d) => n + d.faces.length, 0), 0);
    for (const s of plan.segments) assert.deepEqual(s.regions.map((r) => r.kind), ['background']);
  });

  // H.264 decodes every frame; FFV1 with a keyframe every 12 frames only 5 of each 12 (samples 0, 4, 12, 16…).
  for (const [name, codec] of [['moving-face.mp4', ['-c:v', 'libx264', '-preset', 'ultrafast']], ['moving-face-gop12.mkv', ['-c:v', 'ffv1', '-g', '12']]] as const) {
    it(`keeps a fast-moving face covered on every frame (${name})`, async () => {
      // A 120 px portrait patch (face centred in it, ~70 px wide) crosses a 640x360 street at 350 px/s
      // while bobbing up and down: non-linear motion between samples.
      const clip = fixture(dir, name, (out) => [
        '-loop', '1', '-i', STREET, '-loop', '1', '-i', ASTRONAUT,
        '-filter_complex', "[0]scale=640:360,setsar=1[bg];[1]crop=160:160:145:45,scale=120:120[fg];[bg][fg]overlay=x='20+350*t':y='100+60*sin(2*PI*t)',format=yuv420p",
        '-t', '1.6', '-r', '25', ...codec, out]);
      const plan = await analyze(clip);
      if (name.endsWith('.mkv')) assert.ok((plan.analysis!.decodedFrames ?? Infinity) < 40, `${plan.analysis!.decodedFrames} frames decoded`);
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
  }

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
    // The keyframe cap is written by analysis, validated, and optional (plans from before it still read).
    assert.equal(plan.keyframeMaxQpOffset, 0);
    assert.throws(() => validatePlan({ ...plan, keyframeMaxQpOffset: 60 }), /keyframeMaxQpOffset/);
    const { keyframeMaxQpOffset: _, ...older } = plan;
    assert.equal(validatePlan(older).keyframeMaxQpOffset, undefined);
  });
});

describe('analyze CLI', () => {
  it('says in its done event where the analysis time went, and reports progress once per step', () => {
    const r = cli(['analyze', SAMPLE, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const done = events.at(-1) as { type: string; samples: number; analysis: { seconds: number; samples: number; fullScans: number; followPasses: number; stages: Record<string, number> } };
    assert.equal(done.type, 'done');
    const { analysis } = done;
    assert.deepEqual(Object.keys(analysis.stages).sort(), ['decodeWait', 'detect', 'plan', 'probe', 'saliency', 'setup', 'track']);
    const staged = Object.values(analysis.stages).reduce((a, b) => a + b, 0);
    assert.ok(staged > 0 && staged <= analysis.seconds + 0.01, `stages add up to ${staged} s of ${analysis.seconds} s`);
    assert.ok((analysis.stages.detect ?? 0) > 0);
    assert.equal(analysis.samples, done.samples);
    assert.equal(analysis.fullScans + analysis.followPasses, analysis.samples);
    // Progress moves forward: no event repeats the one before it (the last used to come twice).
    const progress = events.filter((e) => e.type === 'progress' && e.stage === 'analyze').map((e) => e.done as number);
    assert.ok(progress.length > 1);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i]! > progress[i - 1]!, `progress ${progress[i - 1]} then ${progress[i]}`);
  });

  it('puts the analysis stages in the done event of an encode', () => {
    const out = join(dir, 'encoded-with-stages.mp4');
    const r = cli([SAMPLE, '-o', out, '--json', '--preset', 'ultrafast', '--sample-fps', '1']);
    assert.equal(r.code, 0, r.stderr);
    const done = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { type: string; analysisSeconds: number; analysis: { seconds: number; stages: { detect: number } } };
    assert.equal(done.type, 'done');
    assert.ok(done.analysis.stages.detect > 0);
    assert.ok(Math.abs(done.analysis.seconds - done.analysisSeconds) < 0.5, `${done.analysis.seconds} s vs ${done.analysisSeconds} s`);
  });

  it('writes a plan file and a debug video', () => {
    const out = join(dir, 'plan.json');
    const debug = join(dir, 'debug.mp4');
    const r = cli(['analyze', SAMPLE, '--roi', 'faces', '--sample-fps', '2', '-o', out, '--debug-video', debug]);
    assert.equal(r.code, 0, r.stderr);
    const plan = validatePlan(JSON.parse(readFileSync(out, 'utf8')));
    assert.equal(plan.settings.sampleFps, 2);
    // Every frame at its source time, though each segment is drawn on its own and joined again.
    assert.ok(plan.segments.length >= 2, `${plan.segments.length} segments`);
    const source = frameTimes(SAMPLE);
    const drawn = frameTimes(debug);
    assert.equal(drawn.length, source.length);
    drawn.forEach((t, i) => assert.ok(Math.abs(t - source[i]!) < 1e-3, `frame ${i} at ${t} s, source ${source[i]} s`));
    // A face box of the last segment's last sample, outlined in lime on its own frame.
    const segment = plan.segments.at(-1)!;
    const d = plan.detections.filter((s) => s.frame >= segment.startFrame && s.frame < segment.endFrame && s.faces.length > 0).at(-1)!;
    const f = d.faces[0]!;
    const rgb = execFileSync('ffmpeg', ['-v', 'error', '-i', debug, '-vf', `select=eq(n\\,${d.frame})`, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { maxBuffer: 1 << 24 });
    const at = (x: number, y: number) => Array.from(rgb.subarray((y * plan.input.width + x) * 3, (y * plan.input.width + x) * 3 + 3));
    const [red, green, blue] = at(f.x + Math.round(f.w / 2), f.y + 1);
    assert.ok(green! > 150 && green! > red! + 60 && green! > blue! + 60, `no lime outline at frame ${d.frame}: ${red},${green},${blue}`);
  });

  it('draws each segment with only its own regions and the detections that overlap it', () => {
    const box = { x: 16, y: 16, w: 32, h: 32, score: 0.9 };
    const plan = {
      input: { frameCount: 30 },
      segments: [
        { startFrame: 0, endFrame: 10, regions: [{ x: 0, y: 0, w: 64, h: 64, qpOffset: -4, kind: 'face', importance: 1 }, { x: 0, y: 0, w: 96, h: 96, qpOffset: 4, kind: 'background' }] },
        { startFrame: 10, endFrame: 30, regions: [{ x: 0, y: 0, w: 96, h: 96, qpOffset: 4, kind: 'background' }] },
      ],
      detections: [{ frame: 0, faces: [box] }, { frame: 8, faces: [box] }, { frame: 16, faces: [] }, { frame: 24, faces: [box] }, { frame: 29, faces: [] }],
    } as unknown as Plan;
    const [first, second] = debugPieces(plan);
    assert.equal(first!.chain.length, 3);
    assert.match(first!.chain[0]!, /^drawbox=x=0:y=0:w=64:h=64:color=red@0\.40:t=fill$/);
    assert.match(first!.chain[1]!, /enable='between\(n\\,0\\,7\)'$/);
    assert.match(first!.chain[2]!, /enable='between\(n\\,8\\,9\)'$/);
    // The sample at 8 lasts into the second segment (frames 10–15), counted from its first frame.
    assert.deepEqual(second!.chain.map((c) => /between\(n\\,(\d+)\\,(\d+)\)/.exec(c)!.slice(1).map(Number)), [[0, 5], [14, 18]]);
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
    ['an unknown --roi kind', () => [SAMPLE, '--roi', 'cars'], /Expected one or more of faces, saliency for --roi but received 'cars'/],
    ['a bad --sample-fps', () => [SAMPLE, '--sample-fps', 'abc'], /Expected number 0.1–240 for --sample-fps but received 'abc'/],
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

/** 1.6 s of street, then a hard cut to the portrait at frame 40 (25 fps, 512×512), encoded with `codec`. */
function cutToFace(name: string, codec: string[]): string {
  return fixture(dir, name, (out) => [
      '-loop', '1', '-t', '1.6', '-i', STREET, '-loop', '1', '-t', '1.6', '-i', ASTRONAUT,
      '-filter_complex', '[0]scale=512:512,setsar=1,fps=25[a];[1]scale=512:512,setsar=1,fps=25[b];[a][b]concat=n=2:v=1,format=yuv420p',
    ...codec, out]);
}

describe('adaptive detection (full scans and follow passes)', () => {
  it('follows known faces between full scans and still finds every dev-composite face', async () => {
    const plan = await analyze(devComposite(dir));
    const stats = plan.analysis!;
    assert.equal(stats.samples, plan.detections.length);
    assert.equal(stats.fullScans + stats.followPasses, stats.samples);
    // At 3 samples a second or more and a full scan a second, most samples are follow passes.
    assert.ok(stats.followPasses >= stats.samples / 2, `${stats.followPasses} follow passes of ${stats.samples} samples`);
    // FFV1 with a keyframe every 12 frames: each keyframe and the sample 4 frames after it, not every frame.
    assert.ok(plan.detections.every((d) => d.frame % 12 === 0 || d.frame % 12 === 4 || d.frame === plan.input.frameCount - 1), 'samples off the keyframes');
    assert.ok((stats.decodedFrames ?? Infinity) <= plan.input.frameCount / 2, `${stats.decodedFrames} frames decoded`);
    // Every sample, scanned or followed, has all three faces (the smallest ~30 px at (762, 616)).
    for (const d of plan.detections) {
      assert.equal(d.faces.length, 3, `frame ${d.frame}: ${d.faces.length} faces`);
      assert.ok(d.faces.some((f) => near(centre(f), [762, 616], 15)), `frame ${d.frame}: smallest face missing`);
    }
  });

  it('finds a face that appears mid-shot within a second', async () => {
    const clip = faceAppears();
    const plan = await analyze(clip);
    assert.ok(plan.analysis!.followPasses > 0, 'no follow passes: the adaptive path was not used');
    const withFace = plan.detections.filter((d) => d.faces.some((f) => near(centre(f), [460, 210], 20)));
    assert.ok(withFace.length > 0, 'the face was never found');
    const first = withFace[0]!.time;
    assert.ok(first >= 1.5 && first <= 2.5 + 1e-6, `first found at ${first} s (appears at 1.5 s)`);
    // Once found, it is found on every later sample, and nothing is found before it appears.
    for (const d of plan.detections.filter((s) => s.time >= first)) assert.equal(d.faces.length, 1, `frame ${d.frame}`);
    for (const d of plan.detections.filter((s) => s.time < 1.5)) assert.equal(d.faces.length, 0, `frame ${d.frame}`);
  });

  it('scans the first sample after a cut, so a face that comes with the cut is found at once', async () => {
    // 1.6 s of street, then a hard cut to the portrait: the scene change forces a full scan.
    const clip = cutToFace('cut-to-face.mp4', ['-c:v', 'libx264', '-preset', 'ultrafast']);
    const plan = await analyze(clip);
    assert.equal(plan.input.frameCount, 80);
    const after = plan.detections.filter((d) => d.frame >= 40);
    assert.ok(after.length >= 3);
    for (const d of after) {
      assert.equal(d.faces.length, 1, `frame ${d.frame}: ${d.faces.length} faces`);
      assert.ok(near(centre(d.faces[0]!), [225, 125], 20), `frame ${d.frame}: face at ${centre(d.faces[0]!)}`);
    }
    for (const d of plan.detections.filter((s) => s.frame < 40)) assert.equal(d.faces.length, 0, `frame ${d.frame}`);
  });

  it('decodes only the samples of intra-only video, and still finds the cut to the frame', async () => {
    // The same street-then-portrait cut, every frame a keyframe (FFV1 with a GOP of 1), 25 fps.
    const clip = cutToFace('cut-to-face-intra.mkv', ['-c:v', 'ffv1', '-g', '1']);
    const plan = await analyze(clip);
    assert.equal(plan.input.frameCount, 80);
    const { decodedFrames = 0 } = plan.analysis!;
    // The samples plus the one stretch that hides the cut; not all 80 frames.
    assert.ok(decodedFrames > plan.detections.length && decodedFrames < 40, `${decodedFrames} frames decoded`);
    assert.deepEqual(plan.cuts, [40]);
    for (const d of plan.detections) assert.equal(d.faces.length, d.frame >= 40 ? 1 : 0, `frame ${d.frame}`);
  });

  it('decodes short-GOP FFV1 only from each keyframe to the samples after it, and still finds a cut to the frame', async () => {
    // The same cut at frame 40, FFV1 with a keyframe every 12 frames (ffmpeg's default): the cut
    // falls between the keyframes 36 and 48, on the sample 4 frames after 36. Frames 41–47 are never
    // decoded; the search for the cut decodes 36–40 again.
    const clip = cutToFace('cut-to-face-gop12.mkv', ['-c:v', 'ffv1', '-g', '12']);
    const plan = await analyze(clip);
    assert.deepEqual(plan.detections.map((d) => d.frame), [0, 4, 12, 16, 24, 28, 36, 40, 48, 52, 60, 64, 72, 79]);
    assert.deepEqual(plan.cuts, [40]);
    // 5 of every 12 frames, the last GOP whole and the stretch 36–40 again for the cut: 43 of 80.
    assert.ok((plan.analysis!.decodedFrames ?? 0) < 48, `${plan.analysis!.decodedFrames} frames decoded`);
    for (const d of plan.detections) assert.equal(d.faces.length, d.frame >= 40 ? 1 : 0, `frame ${d.frame}`);
    // The face's regions start at the cut, not before it.
    const segment = plan.segments.find((g) => g.regions.some((r) => r.kind === 'face'))!;
    assert.equal(segment.startFrame, 40);
  });

  it('counts frames, not packets, where a container stores dropped frames as empty packets (AVI)', async () => {
    // The GOP-12 cut clip copied into AVI: its 1 ms timestamps become 50 fps slots, every other one an
    // empty chunk. The header counts 160 frames, a decoder sees 80, and a stream copy passes all 160.
    const avi = fixture(dir, 'cut-to-face-gop12-gaps.avi', (out) => ['-i', cutToFace('cut-to-face-gop12.mkv', ['-c:v', 'ffv1', '-g', '12']), '-c', 'copy', out]);
    assert.equal(Number((ffprobeJson(avi, ['-show_streams']) as { streams: { nb_frames: string }[] }).streams[0]!.nb_frames), 160);
    const plan = await analyze(avi);
    assert.equal(plan.input.frameCount, 80);
    assert.deepEqual(plan.cuts, [40]);
    assert.ok((plan.analysis!.decodedFrames ?? Infinity) < 80, `${plan.analysis!.decodedFrames} frames decoded`);
    for (const d of plan.detections) assert.equal(d.faces.length, d.frame >= 40 ? 1 : 0, `frame ${d.frame}`);
  });

  it('analyses intra-only video with more samples than an FFmpeg expression takes terms', async () => {
    // 40 s, every frame a keyframe: 126 samples. Selecting them with one term each failed (FFmpeg
    // refuses a sum of ~100 terms); the selection is now one expression whatever the length.
    const clip = fixture(dir, 'long-intra.mkv', (out) => ['-f', 'lavfi', '-i', 'testsrc2=s=160x120:r=25', '-t', '40', '-c:v', 'ffv1', '-g', '1', out]);
    const plan = await analyze(clip);
    assert.equal(plan.input.frameCount, 1000);
    assert.equal(plan.detections.length, 126);
    assert.ok((plan.analysis!.decodedFrames ?? Infinity) < 1000, `${plan.analysis!.decodedFrames} frames decoded`);
  });

  it('stops when aborted while packets are selected for a short-GOP input', async () => {
    // The copier's output backs up behind the decoder: killed, it left a paused pipe that never
    // ended, and the analysis never settled (the CLI exited with 13 and no message on Ctrl-C).
    const controller = new AbortController();
    let events = 0;
    const job = analyze(devComposite(dir), { signal: controller.signal, onProgress: () => ++events === 2 && controller.abort() });
    await assert.rejects(job, { name: 'AbortError' });
    assert.ok(events >= 2);
  });

  it('turns sampled frames of rotated intra-only video upright before detection', async () => {
    // MJPEG (every frame a keyframe) stored sideways with a display matrix, as phones write it.
    const sideways = fixture(dir, 'astronaut-sideways-mjpeg.mov', (out) => ['-loop', '1', '-i', ASTRONAUT, '-t', '0.6', '-r', '25', '-vf', 'transpose=clock,format=yuvj420p', '-c:v', 'mjpeg', '-q:v', '3', out]);
    const clip = fixture(dir, 'astronaut-rotated-mjpeg.mov', (out) => ['-i', sideways, '-c', 'copy', '-metadata:s:v', 'rotate=90', out]);
    const plan = await analyze(clip);
    assert.equal(plan.input.rotation, 270);
    assert.ok((plan.analysis!.decodedFrames ?? 0) < plan.input.frameCount, 'all frames were decoded');
    for (const d of plan.detections) {
      assert.equal(d.faces.length, 1, `frame ${d.frame}`);
      assert.ok(near(centre(d.faces[0]!), [386, 225], 15), `face centre ${centre(d.faces[0]!)} is off`);
    }
  });

  it('decodes ahead of the detector by at most FRAME_QUEUE_BOUND frames', async () => {
    const bins = resolveBinaries();
    const info = await probeVideo(SAMPLE, bins);
    const sampling = planSampling(info, 5, 0.5);
    const seen: number[] = [];
    const result = await sampleFrames(info, sampling, bins, {
      sceneThreshold: 10,
      // A slow detector: the decoder fills the queue while it works, and must then wait.
      onFrame: async (frame) => {
        seen.push(frame.index);
        await new Promise((resolve) => setTimeout(resolve, 25));
      },
    });
    assert.deepEqual(seen, sampling.indices);
    assert.equal(result.maxQueued, FRAME_QUEUE_BOUND);
  });

  it('stops at the first detector failure and reports it', async () => {
    const bins = resolveBinaries();
    const info = await probeVideo(SAMPLE, bins);
    const sampling = planSampling(info, 25, 1);
    let frames = 0;
    await assert.rejects(
      sampleFrames(info, sampling, bins, {
        sceneThreshold: 10,
        onFrame: () => {
          if (++frames === 3) throw new Error('detector broke');
        },
      }),
      /detector broke/,
    );
    // No frame is analysed after the failure, although the decoder had more queued.
    assert.equal(frames, 3);
  });
});

/**
 * Runs the scan/follow pipeline with the real BlazeFace models over a clip's samples (3 a second,
 * full size) and records, per sample, the faces and how many faces the model verified.
 */
async function scanClip(file: string, policy: Partial<ScanPolicy> = {}) {
  const bins = resolveBinaries();
  const info = await probeVideo(file, bins);
  const sampling = planSampling(info, 3, 1);
  const detector = await FaceDetector.create({ minScore: ANALYZE_DEFAULTS.minScore, proposalScore: ANALYZE_DEFAULTS.proposalScore, tiles: false });
  let verified = 0;
  let proposals = 0;
  const model: FaceModel = {
    propose: (frame) => {
      proposals++;
      return detector.propose(frame);
    },
    verify: (frame, candidates) => {
      verified += candidates.length;
      return detector.verify(frame, candidates);
    },
  };
  const second = Math.round(info.frameRate / sampling.step);
  const d = ANALYZE_DEFAULTS;
  const scanner = new FaceScanner(model, d.minScore, { scanEvery: second, quietScanEvery: 2 * second, sceneChange: d.sceneChange, pictureChange: d.pictureChange, stillFace: d.stillFace, ...policy });
  const samples: { time: number; faces: ScoredBox[]; verified: number; scanned: boolean }[] = [];
  await sampleFrames(info, sampling, bins, {
    sceneThreshold: 10,
    onFrame: async (frame) => {
      const before = { verified, proposals };
      const faces = await scanner.detect(frame);
      samples.push({ time: frame.time, faces, verified: verified - before.verified, scanned: proposals > before.proposals });
    },
  });
  return { samples, counts: scanner.counts, second };
}

describe('still content costs less', () => {
  const faceOver = (name: string, x: string) =>
    fixture(dir, name, (out) => [
      '-loop', '1', '-i', STREET, '-loop', '1', '-i', ASTRONAUT,
      '-filter_complex', `[0]scale=640:360,setsar=1[bg];[1]crop=160:160:145:45,scale=120:120[fg];[bg][fg]overlay=x='${x}':y=150,format=yuv420p`,
      '-t', '4', '-r', '25', '-c:v', 'libx264', '-preset', 'ultrafast', out]);

  it('carries a still face forward without running the model, and verifies it again at every full scan', async () => {
    const { samples, counts, second } = await scanClip(faceOver('still-face.mp4', '400'));
    assert.equal(samples.length, 14); // every 8th frame of 100, and the last
    for (const s of samples) assert.equal(s.faces.length, 1, `${s.time} s: ${s.faces.length} faces`);
    // Nothing moves, so the picture never changes: a full scan every two seconds (6 samples), not every second.
    assert.deepEqual(samples.flatMap((s, i) => (s.scanned ? [i] : [])), [0, 2 * second, 4 * second]);
    assert.equal(counts.fullScans, 3);
    const carried = samples.filter((s) => !s.scanned && s.verified === 0);
    assert.equal(counts.carried, carried.length);
    assert.ok(carried.length >= 8, `${carried.length} of ${samples.length} samples carried`);
    // A carried box is the box last verified, to the pixel.
    samples.forEach((s, i) => {
      if (i > 0 && !s.scanned && s.verified === 0) assert.deepEqual(s.faces[0], samples[i - 1]!.faces[0]);
    });
    assert.ok(near(centre(samples[0]!.faces[0]!), [460, 210], 20));
  });

  it('runs the model on every sample of a moving face', async () => {
    // ~3 px a frame, 25 px between samples: a fifth of the face's size.
    const { samples, counts } = await scanClip(faceOver('face-crossing.mp4', '40+75*t'));
    assert.equal(counts.carried, 0);
    for (const s of samples) {
      assert.equal(s.faces.length, 1, `${s.time} s`);
      assert.ok(near(centre(s.faces[0]!), [100 + 75 * s.time, 210], 20), `${s.time} s: face at ${centre(s.faces[0]!)}`);
    }
  });

  it('finds a face that appears in a picture counted as unchanged within two seconds', async () => {
    // With the change test switched off, only the two-second scans can find the face that appears at 1.5 s.
    const clip = faceAppears();
    const quiet = await scanClip(clip, { pictureChange: Infinity });
    const first = quiet.samples.find((s) => s.faces.length > 0)!.time;
    assert.ok(first >= 1.5 && first <= 3.5 + 1e-6, `found at ${first} s (appears at 1.5 s)`);
    // With the change test (the default), the face's arrival brings the next scan forward to a second after the last.
    const changed = await scanClip(clip);
    const found = changed.samples.find((s) => s.faces.length > 0)!.time;
    assert.ok(found >= 1.5 && found <= 2.5 + 1e-6, `found at ${found} s`);
    assert.ok(found < first, `the change test made no difference (${found} s against ${first} s)`);
  });
});

describe('intra-only sampling builders', () => {
  it('selects packets with expressions whose length does not grow with the video', () => {
    // Commas are escaped: the expression sits inside a -bsf list, where a bare comma separates filters.
    // Frames are counted in variable 1 without empty packets (AVI's dropped-frame chunks), the frame
    // number kept in variable 2; empty packets are dropped.
    const count = 'st(2\\,st(1\\,ld(1)+gt(size\\,0))-1);not(size)+';
    assert.equal(dropExpression({ every: 8, tailFrom: 99 }), `${count}not(not(mod(ld(2)\\,8))+gte(ld(2)\\,99))`);
    // st(0)/ld(0) carry the last keyframe's number from packet to packet.
    assert.equal(dropExpression({ depth: 4, tailFrom: 96 }), `${count}not(lte(ld(2)-st(0\\,if(key\\,ld(2)\\,ld(0)))\\,4)+gte(ld(2)\\,96))`);
    const keyframes = Uint32Array.from([0, 12, 24, 36]);
    assert.deepEqual(selectedFrames({ every: 8, tailFrom: 20 }, { frameCount: 22, keyframes }), [0, 8, 16, 20, 21]);
    assert.deepEqual(selectedFrames({ depth: 2, tailFrom: 36 }, { frameCount: 40, keyframes }), [0, 1, 2, 12, 13, 14, 24, 25, 26, 36, 37, 38, 39]);
  });

  it('searches arbitrary stretches with a binary tree of tests, so thousands of them still parse', () => {
    assert.deepEqual(mergeStretches([[0, 8], [8, 16], [24, 32], [33, 40], [48, 56]]), [[0, 16], [24, 40], [48, 56]]);
    // A stretch is searched when the samples' difference jumps, not when it is merely high (motion).
    assert.equal(cutScore(12, 11), 1);
    assert.equal(cutScore(58, 10), 48);
    assert.equal(cutScore(7, 0), 7);
    assert.equal(rangesDropExpression([[0, 0], [8, 10]]), 'st(2\\,st(1\\,ld(1)+gt(size\\,0))-1);not(size)+not(if(lt(ld(2)\\,8)\\,eq(ld(2)\\,0)\\,between(ld(2)\\,8\\,10)))');
    // Nesting grows with log2 of the count: FFmpeg refuses ~100 levels, as it does a flat sum of ~100 terms.
    const many = rangesDropExpression(Array.from({ length: 4000 }, (_, i) => [i * 10, i * 10 + 3] as [number, number]));
    let depth = 0, deepest = 0;
    for (const c of many) deepest = Math.max(deepest, (depth += c === '(' ? 1 : c === ')' ? -1 : 0));
    assert.ok(deepest <= 2 * 13 + 3, `nesting ${deepest}`);
  });

  it('places samples just after keyframes, no two more than a step apart, where that decodes at most half the frames', () => {
    const info = { frameRate: 25, frameCount: 200, rotation: 0 as const, width: 1280, height: 720 };
    const grid = planSampling(info, 3, 0.5);
    assert.equal(grid.step, 8);
    assert.equal(grid.keep, undefined);
    const gaps = (indices: number[]) => indices.slice(1).map((v, i) => v - indices[i]!);
    // Every frame a keyframe: the same samples, only those decoded.
    const intra = planSampling({ ...info, keyframes: Uint32Array.from({ length: 200 }, (_, i) => i) }, 3, 0.5);
    assert.deepEqual(intra.indices, grid.indices);
    assert.deepEqual(intra.keep, { every: 8, tailFrom: 199 });
    // FFV1's default GOP of 12 at a step of 8: each keyframe and 4 frames after it, the last GOP whole.
    const gop12 = planSampling({ ...info, keyframes: Uint32Array.from({ length: 17 }, (_, i) => i * 12) }, 3, 0.5);
    assert.deepEqual(gop12.indices.slice(0, 7), [0, 4, 12, 16, 24, 28, 36]);
    assert.equal(gop12.indices[gop12.indices.length - 1], 199);
    assert.ok(Math.max(...gaps(gop12.indices)) <= 8);
    assert.deepEqual(gop12.keep, { depth: 4, tailFrom: 192 });
    const decoded = selectedFrames(gop12.keep!, { frameCount: 200, keyframes: Uint32Array.from({ length: 17 }, (_, i) => i * 12) });
    assert.equal(decoded.length, 16 * 5 + 8);
    assert.ok(gop12.indices.every((i) => decoded.includes(i)), 'a sample is not decoded');
    // A GOP of 4: keyframes a step apart, the ones between decoded but not sampled.
    const gop4 = planSampling({ ...info, keyframes: Uint32Array.from({ length: 50 }, (_, i) => i * 4) }, 3, 0.5);
    assert.deepEqual(gop4.indices, grid.indices);
    assert.deepEqual(gop4.keep, { depth: 0, tailFrom: 196 });
    // Irregular keyframes (one after a cut at 50) keep every gap within the step.
    const irregular = planSampling({ ...info, keyframes: Uint32Array.from([0, 12, 24, 36, 48, 50, 62, 74, 86, 98, 110, 122, 134, 146, 158, 170, 182, 194]) }, 3, 0.5);
    assert.ok(Math.max(...gaps(irregular.indices)) <= 8, `gaps ${gaps(irregular.indices)}`);
    // A GOP of 16 would decode 9 of every 16 frames: more than MAX_GOP_DECODE_SHARE, so every frame is decoded.
    const gop16 = planSampling({ ...info, keyframes: Uint32Array.from({ length: 13 }, (_, i) => i * 16) }, 3, 0.5);
    assert.ok(9 / 16 > MAX_GOP_DECODE_SHARE);
    assert.deepEqual(gop16.indices, grid.indices);
    assert.equal(gop16.keep, undefined);
  });

  it('turns frames upright as a player would, since the packet pipe drops the display matrix', () => {
    assert.deepEqual(uprightFilters(0), []);
    assert.deepEqual(uprightFilters(90), ['transpose=clock']);
    assert.deepEqual(uprightFilters(180), ['hflip', 'vflip']);
    assert.deepEqual(uprightFilters(270), ['transpose=cclock']);
    const args = selectedFramesArgs({ step: 8, width: 320, height: 180, indices: [0, 8] }, 270);
    assert.equal(args[args.indexOf('-vf') + 1], 'transpose=cclock,scale=320:180:flags=area,setsar=1,format=rgb24');
    assert.ok(args.includes('-noautorotate'));
  });
});
