import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, mock } from 'node:test';
import { analyze, encode, measureQuality, type Plan, type ProgressEvent } from '../src/index.js';
import { ProgressMeter } from '../src/media/progress.js';
import { buildEncodeArgs } from '../src/encode/argv.js';
import { resolveBinaries } from '../src/media/binaries.js';
import { ASTRONAUT, cli, CLI, ffprobeJson, fixture, frameTimes, ROOT, SAMPLE, STREET, workDir } from './helpers.js';

const dir = workDir('encode');
const bins = resolveBinaries();

function streams(file: string) {
  return (ffprobeJson(file, ['-show_streams']) as { streams: { codec_type: string; codec_name: string; codec_tag_string: string; side_data_list?: { rotation?: number }[] }[] }).streams;
}

function partials(folder: string): string[] {
  return readdirSync(folder).filter((f) => f.includes('.partial'));
}

describe('ROI encode of the sample', () => {
  it('beats a uniform encode on the face: higher face PSNR at the same CRF, smaller at matched face quality', async () => {
    const plan = await analyze(SAMPLE);
    const roi = await encode(SAMPLE, join(dir, 'roi-28.mp4'), { plan, crf: 28 });
    const flat28 = await encode(SAMPLE, join(dir, 'flat-28.mp4'), { roi: 'none', crf: 28 });
    const flat22 = await encode(SAMPLE, join(dir, 'flat-22.mp4'), { roi: 'none', crf: 22 });
    const q = async (file: string) => measureQuality(SAMPLE, file, plan, bins);
    const [qRoi, q28, q22] = [await q(roi.output), await q(flat28.output), await q(flat22.output)];
    assert.ok(qRoi.facePsnr > q28.facePsnr + 0.5, `face PSNR ${qRoi.facePsnr.toFixed(2)} vs uniform ${q28.facePsnr.toFixed(2)} dB`);
    assert.ok(qRoi.backgroundPsnr < q28.backgroundPsnr, 'the background pays for the face');
    // Uniform bitrate at the ROI encode's face quality, interpolated on log-rate between CRF 22 and 28.
    assert.ok(q22.facePsnr > qRoi.facePsnr, 'CRF 22 should bracket the ROI face quality');
    const t = (qRoi.facePsnr - q28.facePsnr) / (q22.facePsnr - q28.facePsnr);
    const matched = Math.exp(Math.log(flat28.bytes) + t * (Math.log(flat22.bytes) - Math.log(flat28.bytes)));
    assert.ok(roi.bytes < matched * 0.9, `ROI ${roi.bytes} B vs uniform ${matched.toFixed(0)} B at the same face PSNR`);
  });

  it('writes an ordinary HEVC mp4 with the input’s frames and times', async () => {
    const out = join(dir, 'plain.mp4');
    const events: ProgressEvent[] = [];
    const r = await encode(SAMPLE, out, { crf: 30, preset: 'veryfast', onProgress: (e) => e.stage === 'encode' && events.push(e) });
    // No ETA spike at the start: every estimate within 3× (+1.5 s) of the time the encode really took to finish.
    const end = events[events.length - 1]!.elapsedSeconds;
    for (const e of events) {
      if (e.etaSeconds !== undefined) assert.ok(e.etaSeconds <= 3 * (end - e.elapsedSeconds) + 1.5, `ETA ${e.etaSeconds.toFixed(1)} s at ${e.elapsedSeconds.toFixed(2)} s; it ended at ${end.toFixed(2)} s`);
    }
    const video = streams(out).find((s) => s.codec_type === 'video')!;
    assert.equal(video.codec_name, 'hevc');
    assert.equal(video.codec_tag_string, 'hvc1');
    assert.deepEqual(frameTimes(out), frameTimes(SAMPLE));
    assert.equal(r.frames, 252);
    // faststart: the moov box comes before mdat.
    const head = readFileSync(out).subarray(0, 4096).toString('latin1');
    assert.ok(head.indexOf('moov') > 0 && (head.indexOf('mdat') < 0 || head.indexOf('moov') < head.indexOf('mdat')));
  });

  it('keeps variable frame rate timestamps exact across many segments, copies audio and keeps rotation, into mkv too', async () => {
    // A face crossing the frame (many segments), frames dropped here and there (VFR), a tone, a rotation.
    const moving = fixture(dir, 'moving.mkv', (out) => [
      '-loop', '1', '-i', STREET, '-loop', '1', '-i', ASTRONAUT, '-f', 'lavfi', '-i', 'sine=frequency=300:duration=2',
      '-filter_complex', "[0]scale=640:360,setsar=1[bg];[1]crop=160:160:145:45,scale=120:120[fg];[bg][fg]overlay=x='20+250*t':y=120,select='not(between(n\\,11\\,14))*not(between(n\\,30\\,31))',format=yuv420p[v]",
      '-map', '[v]', '-map', '2:a', '-t', '2', '-r', '25', '-fps_mode', 'vfr', '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'flac', out]);
    // MP4 carries a display matrix; ffmpeg sets it only when stream-copying.
    const rotated = fixture(dir, 'moving-rotated.mp4', (out) => ['-i', moving, '-c:v', 'copy', '-c:a', 'aac', '-metadata:s:v', 'rotate=90', out]);
    for (const [source, ext] of [[moving, 'mkv'], [rotated, 'mp4']] as const) {
      const out = join(dir, `moving-out.${ext}`);
      const r = await encode(source, out, { crf: 30, preset: 'veryfast' });
      // (The rotated copy shows the face sideways, so only the upright source is expected to track it.)
      if (ext === 'mkv') assert.ok(r.plan!.segments.length >= 4, `only ${r.plan!.segments.length} segments`);
      const inTimes = frameTimes(source);
      const outTimes = frameTimes(out);
      assert.equal(outTimes.length, inTimes.length);
      outTimes.forEach((t, i) => assert.ok(Math.abs(t - inTimes[i]! - (outTimes[0]! - inTimes[0]!)) < 0.0011, `frame ${i}: ${t} vs ${inTimes[i]}`));
      const s = streams(out);
      assert.ok(s.some((x) => x.codec_type === 'audio'), 'audio missing');
      if (ext === 'mkv') assert.equal(s.find((x) => x.codec_type === 'audio')!.codec_name, 'flac', 'audio was re-encoded');
      if (ext === 'mp4') {
        const rotation = s.find((x) => x.codec_type === 'video')!.side_data_list?.find((d) => d.rotation !== undefined)?.rotation;
        assert.equal(Math.abs(rotation ?? 0), 90, 'rotation lost');
      }
    }
  });

  it('keeps every frame and its time with more segments than one setpts expression can hold', async () => {
    // A fast face in a long video makes hundreds of segments; FFmpeg refuses a setpts expression
    // with about 90 or more segment starts, so the timestamp restoration is chained (filtergraph.ts).
    const clip = fixture(dir, 'many-segments.mkv', (out) => [
      '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25:duration=5', '-vf', "select='not(between(n\\,40\\,44))*not(between(n\\,90\\,91))'",
      '-fps_mode', 'vfr', '-c:v', 'libx264', '-preset', 'ultrafast', out]);
    const times = frameTimes(clip);
    const durationSeconds = times[times.length - 1]! + 0.04;
    // One segment per frame, offsets alternating so no two neighbours merge.
    const segments = times.map((_, i) => ({ startFrame: i, endFrame: i + 1, regions: [
      { x: 16 * (i % 10), y: 32, w: 96, h: 96, qpOffset: -4, kind: 'face' as const },
      { x: 0, y: 0, w: 320, h: 180, qpOffset: 2 + (i % 2), kind: 'background' as const },
    ] }));
    const plan: Plan = { version: 1, input: { path: clip, width: 320, height: 180, frameRate: 25, frameCount: times.length, durationSeconds }, settings: {}, detections: [], segments, zones: [] };
    assert.ok(segments.length > 100, `${segments.length} segments`);
    const out = join(dir, 'many-segments-out.mkv');
    await encode(clip, out, { plan, crf: 30, preset: 'veryfast', force: true });
    const outTimes = frameTimes(out);
    assert.equal(outTimes.length, times.length);
    outTimes.forEach((t, i) => assert.ok(Math.abs(t - times[i]!) < 0.0011, `frame ${i}: ${t} vs ${times[i]}`));
  });

  it('catches x265 skipping the ROI when adaptive quantisation is off', async () => {
    // The guard in encode() looks for this exact message; prove real ffmpeg prints it.
    const plan = await analyze(SAMPLE, { sampleFps: 1 });
    const graph = join(dir, 'aq0.filter');
    const { buildRoiFilterGraph } = await import('../src/encode/filtergraph.js');
    writeFileSync(graph, buildRoiFilterGraph(plan, { strength: 1, frameTimes: Float64Array.from({ length: 252 }, (_, i) => i / 25), outputLabel: 'v' }));
    const args = buildEncodeArgs({ input: SAMPLE, output: join(dir, 'aq0.mp4'), container: 'mp4', filterScript: graph, videoLabel: 'v', crf: 30, preset: 'ultrafast', x265Params: { 'aq-mode': 0 }, hasSubtitles: false });
    const r = spawnSync('ffmpeg', args, { encoding: 'utf8' });
    assert.match(r.stderr, /skipping ROI/);
  });
});

describe('encode CLI and bad input', () => {
  it('encodes with --json NDJSON events and honours --plan and --roi none', () => {
    const planFile = join(dir, 'cli-plan.json');
    assert.equal(cli(['analyze', SAMPLE, '-o', planFile, '--sample-fps', '1']).code, 0);
    const out = join(dir, 'cli.mp4');
    const r = cli([SAMPLE, '-o', out, '--plan', planFile, '--crf', '32', '--preset', 'ultrafast', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; bytes?: number; segments?: number });
    assert.ok(events.some((e) => e.type === 'progress'));
    const done = events[events.length - 1]!;
    assert.equal(done.type, 'done');
    assert.equal(done.bytes, statSync(out).size);
    const flat = cli([SAMPLE, '-o', join(dir, 'cli-flat.mp4'), '--roi', 'none', '--crf', '32', '--preset', 'ultrafast']);
    assert.equal(flat.code, 0, flat.stderr);
  });

  const other = () => fixture(dir, 'other.mp4', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=1', '-c:v', 'libx264', '-preset', 'ultrafast', out]);
  const cases: [string, () => string[], RegExp, string?][] = [
    ['output into a missing directory', () => [SAMPLE, '-o', join(dir, 'no-such-dir', 'out.mp4')], /directory does not exist/],
    ['an existing output without --force', () => {
      const out = join(dir, 'exists.mp4');
      writeFileSync(out, 'keep me');
      return [SAMPLE, '-o', out];
    }, /already exists; use --force/, 'exists.mp4'],
    ['output == input', () => {
      const copy = join(dir, 'self.mp4');
      copyFileSync(SAMPLE, copy);
      return [copy, '-o', copy, '--force'];
    }, /is the input file/, 'self.mp4'],
    ['a corrupt plan', () => {
      const p = join(dir, 'corrupt.json');
      writeFileSync(p, '{"version": 1, "segments": [');
      return [SAMPLE, '-o', join(dir, 'corrupt-out.mp4'), '--plan', p];
    }, /invalid plan .*not JSON/],
    ['a plan for another video', () => {
      const p = join(dir, 'other-plan.json');
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(dir, '..', '..', 'src', 'cli.ts'), 'analyze', other(), '--sample-fps', '1'], { encoding: 'utf8' });
      writeFileSync(p, r.stdout);
      return [SAMPLE, '-o', join(dir, 'other-out.mp4'), '--plan', p];
    }, /plan .* is for a 320x240 video of 25 frames, but .* is 400x300 with 252 frames/],
    ['a bad --crf', () => [SAMPLE, '-o', join(dir, 'crf.mp4'), '--crf', '60'], /Expected number 0–51 for --crf but received 60$/m],
    ['a non-numeric --crf', () => [SAMPLE, '-o', join(dir, 'crf.mp4'), '--crf', 'abc'], /Expected number 0–51 for --crf but received 'abc'$/m],
    ['an unknown preset', () => [SAMPLE, '-o', join(dir, 'preset.mp4'), '--preset', 'fastest'], /Expected one of ultrafast.* for --preset but received 'fastest'/],
  ];
  for (const [what, args, message, keep] of cases) {
    it(`rejects ${what} with one line and leaves nothing behind`, () => {
      const sub = join(dir, `case-${what.replace(/\W+/g, '-')}`);
      mkdirSync(sub, { recursive: true });
      const argv = args();
      const before = new Set(readdirSync(dir));
      const original = keep ? readFileSync(join(dir, keep)) : undefined;
      const r = cli(argv);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.deepEqual(partials(dir), []);
      const created = readdirSync(dir).filter((f) => !before.has(f) && !/(plan|\.json$|other)/.test(f));
      assert.deepEqual(created, [], 'output written');
      if (keep) assert.deepEqual(readFileSync(join(dir, keep)), original, 'existing file changed');
    });
  }

  it('stops on Ctrl-C: ffmpeg killed, exit 130, one line, no output or partial file', async () => {
    const out = join(dir, 'interrupted.mp4');
    // Its own process group, signalled as a whole, as a terminal does on Ctrl-C (ffmpeg gets it too).
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, SAMPLE, '-o', out, '--roi', 'none', '--preset', 'slow', '--json'], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    let sent = false;
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const lines = stdout.split('\n');
      stdout = lines.pop()!;
      if (!sent && lines.some((l) => (JSON.parse(l) as { done?: number }).done! > 20)) {
        sent = true;
        process.kill(-child.pid!, 'SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.ok(sent, 'no progress before the end');
    assert.equal(code, 130, stderr);
    assert.equal(stderr.trim(), 'roi-encode: interrupted');
    assert.equal(existsSync(out), false);
    assert.deepEqual(partials(dir), []);
  });

  it('removes the partial file when aborted', async () => {
    const controller = new AbortController();
    const out = join(dir, 'aborted.mp4');
    const job = encode(SAMPLE, out, { roi: 'none', preset: 'slow', signal: controller.signal, onProgress: (e) => e.done > 20 && controller.abort() });
    await assert.rejects(job, { name: 'AbortError' });
    assert.equal(existsSync(out), false);
    assert.deepEqual(partials(dir), []);
  });
});



describe('progress', () => {
  it('estimates the time left from the work rate, not counting start-up (no ETA spike at the start of an encode)', () => {
    // The shape of a real encode of the sample (x265 medium, 252 frames, this machine): ffmpeg reports
    // its first frame 0.24 s after the meter starts, then ~60 frames/s in 0.5 s steps until the end.
    let clock = 0;
    const events: ProgressEvent[] = [];
    mock.method(performance, 'now', () => clock);
    const meter = new ProgressMeter('encode', 252, (e) => events.push(e));
    const trace: [number, number][] = [[240, 1]];
    for (let t = 740, done = 31; done < 252; t += 500, done += 30) trace.push([t, Math.min(252, done)]);
    trace.push([trace[trace.length - 1]![0] + 200, 252]);
    for (const [t, done] of trace) {
      clock = t;
      meter.update(done);
    }
    const end = trace[trace.length - 1]![0] / 1000;
    const withEta = events.filter((e) => e.etaSeconds !== undefined);
    assert.ok(withEta.length >= trace.length - 2, 'an ETA from the second report on');
    for (const e of withEta) {
      const left = end - e.elapsedSeconds;
      assert.ok(e.etaSeconds! <= 1.5 * left + 0.5, `ETA ${e.etaSeconds!.toFixed(1)} s with ${left.toFixed(1)} s left`);
    }
    assert.equal(events[events.length - 1]!.etaSeconds, 0);
    mock.restoreAll();
  });
});

describe('x265 ROI pitfalls', () => {
  const src = () => fixture(dir, 'pitfall-src.mkv', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=2', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '10', out]);
  const basePlan = (segments: Plan['segments']): Plan => ({
    version: 1,
    input: { path: src(), width: 320, height: 240, frameRate: 25, frameCount: 50, durationSeconds: 2 },
    settings: {},
    detections: [],
    segments,
    zones: [],
  });
  const face = { x: 80, y: 60, w: 160, h: 120, qpOffset: -8, kind: 'face' as const };
  const bg = (qpOffset: number) => ({ x: 0, y: 0, w: 320, h: 240, qpOffset, kind: 'background' as const });
  /** Bytes of the video packets from `from` seconds on. */
  const bytesFrom = (file: string, from: number) =>
    ((ffprobeJson(file, ['-select_streams', 'v:0', '-show_entries', 'packet=pts_time,size']) as { packets: { pts_time: string; size: string }[] }).packets)
      .filter((p) => Number(p.pts_time) >= from).reduce((n, p) => n + Number(p.size), 0);

  it('ROI that starts after frame 0 (an edited plan) encodes every frame instead of crashing x265', async () => {
    // Before: no side data on frames 0–9, then offsets: ffmpeg died with SIGSEGV.
    const plan = basePlan([{ startFrame: 0, endFrame: 10, regions: [bg(0)] }, { startFrame: 10, endFrame: 50, regions: [face, bg(0)] }]);
    const r = await encode(src(), join(dir, 'late-roi.mp4'), { plan, preset: 'medium', crf: 30 });
    assert.equal(frameTimes(r.output).length, 50);
  });

  it('ROI that stops leaves no stale offsets on later frames', async () => {
    // Frames 0–9 at +10 QP, the rest at 0: the rest should cost what a uniform encode's frames cost.
    // Before: x265 reused the +10 offsets on later frames: 86% of the bits.
    const plan = basePlan([{ startFrame: 0, endFrame: 10, regions: [bg(10)] }, { startFrame: 10, endFrame: 50, regions: [] }]);
    const roi = await encode(src(), join(dir, 'early-roi.mp4'), { plan, preset: 'medium', crf: 30 });
    const flat = await encode(src(), join(dir, 'early-flat.mp4'), { roi: 'none', preset: 'medium', crf: 30 });
    const ratio = bytesFrom(roi.output, 0.6) / bytesFrom(flat.output, 0.6);
    assert.ok(Math.abs(ratio - 1) < 0.07, `frames 15+ cost ${(ratio * 100).toFixed(0)}% of uniform`);
  });

  it("a library caller's backgroundQpOffset 0 with a face that appears late encodes (analysis, then ROI from frame 0)", async () => {
    const late = fixture(dir, 'late-face.mp4', (out) => [
      '-loop', '1', '-i', STREET, '-loop', '1', '-i', ASTRONAUT,
      '-filter_complex', "[0]scale=480:320,setsar=1[bg];[1]crop=160:160:145:45,scale=120:120[fg];[bg][fg]overlay=x=180:y=90:enable='gte(t,1.2)',format=yuv420p[v]",
      '-map', '[v]', '-t', '2.4', '-r', '25', '-c:v', 'libx264', '-preset', 'ultrafast', out]);
    const r = await encode(late, join(dir, 'late-face-out.mp4'), { backgroundQpOffset: 0, preset: 'ultrafast', crf: 30, sampleFps: 5 });
    const segs = r.plan!.segments;
    assert.ok(segs.length >= 2 && segs[0]!.regions.every((g) => g.qpOffset === 0) && segs.some((s) => s.regions.some((g) => g.kind === 'face')), `plan: ${JSON.stringify(segs.map((s) => s.regions.map((g) => `${g.kind}${g.qpOffset}`)))}`);
    assert.equal(frameTimes(r.output).length, 60);
  });

  /** PSNR of a box of `file` against the source, from ffmpeg's psnr filter. */
  const boxPsnr = (source: string, file: string, b: { x: number; y: number; w: number; h: number }) => {
    const r = spawnSync('ffmpeg', ['-hide_banner', '-nostdin', '-i', file, '-i', source, '-lavfi', `[0]crop=${b.w}:${b.h}:${b.x}:${b.y}[a];[1]crop=${b.w}:${b.h}:${b.x}:${b.y}[b];[a][b]psnr`, '-f', 'null', '-'], { encoding: 'utf8' });
    return Number(/average:([\d.]+)/.exec(r.stderr)![1]);
  };

  it('keyframe relief: the keyframe keeps the base quality where the plan says +8, and the still background after it keeps it too', async () => {
    // A still picture: x265 codes it once, on the keyframe, and predicts every later frame from it.
    const still = fixture(dir, 'still-street.mkv', (out) => ['-loop', '1', '-i', STREET, '-vf', 'scale=320:240,format=yuv420p', '-t', '2', '-r', '25', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '10', out]);
    const plan = { ...basePlan([{ startFrame: 0, endFrame: 50, regions: [bg(8)] }]), input: { path: still, width: 320, height: 240, frameRate: 25, frameCount: 50, durationSeconds: 2 } };
    const capped = await encode(still, join(dir, 'keyframe-capped.mp4'), { plan: { ...plan, keyframeMaxQpOffset: 0 }, crf: 30 });
    const plain = await encode(still, join(dir, 'keyframe-plain.mp4'), { plan, crf: 30 });
    const sizes = (file: string) => ((ffprobeJson(file, ['-select_streams', 'v:0', '-show_entries', 'packet=size']) as { packets: { size: string }[] }).packets).map((p) => Number(p.size));
    const [c, p] = [sizes(capped.output), sizes(plain.output)];
    assert.equal(c.length, 50);
    assert.ok(c[0]! > 1.5 * p[0]!, `keyframe ${c[0]} B with the cap vs ${p[0]} B at +8`);
    const rest = (list: number[]) => list.slice(1).reduce((a, b) => a + b, 0);
    assert.ok(rest(c) <= 1.1 * rest(p), `the frames after it: ${rest(c)} B vs ${rest(p)} B`);
    const whole = { x: 0, y: 0, w: 320, h: 240 };
    const [qc, qp] = [boxPsnr(still, capped.output, whole), boxPsnr(still, plain.output, whole)];
    assert.ok(qc > qp + 2, `PSNR over all frames ${qc} dB with the cap vs ${qp} dB`);
  });

  for (const preset of ['ultrafast', 'superfast'] as const) {
    it(`keeps ROI working at preset ${preset}, which turns adaptive quantisation off`, async () => {
      const plan = basePlan([{ startFrame: 0, endFrame: 50, regions: [{ ...face, qpOffset: -4 }, bg(8)] }]);
      const roi = await encode(src(), join(dir, `${preset}-roi.mp4`), { plan, preset, crf: 30 });
      const flat = await encode(src(), join(dir, `${preset}-flat.mp4`), { roi: 'none', preset, crf: 30 });
      // Dropped offsets would give the uniform encode's bytes and picture exactly.
      assert.ok(Math.abs(roi.bytes / flat.bytes - 1) > 0.1, `ROI ${roi.bytes} B vs uniform ${flat.bytes} B`);
      const [pRoi, pFlat] = [boxPsnr(src(), roi.output, face), boxPsnr(src(), flat.output, face)];
      assert.ok(pRoi > pFlat + 1, `face PSNR ${pRoi} dB vs uniform ${pFlat} dB`);
      const corner = { x: 0, y: 0, w: 64, h: 48 };
      assert.ok(boxPsnr(src(), roi.output, corner) < boxPsnr(src(), flat.output, corner) - 1, 'the +8 background kept its quality');
    });
  }
});
