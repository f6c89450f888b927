import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildEncodeArgs, containerFor } from '../src/encode/argv.js';
import { addroiChain, buildRoiFilterGraph, qoffsetFor, zonesParam } from '../src/encode/filtergraph.js';
import { encoderKeyframes, relieveKeyframes } from '../src/encode/keyframes.js';
import { FLAT_SEGMENTS, STARTS_PER_SETPTS } from '../src/media/segmented-graph.js';
import { resolveBinaries } from '../src/media/binaries.js';
import type { Plan } from '../src/plan/plan.js';
import { workDir } from './helpers.js';

function plan(width: number, height: number, segments: Plan['segments'], zones: Plan['zones'] = []): Plan {
  const frameCount = segments[segments.length - 1]!.endFrame;
  return {
    version: 1,
    input: { path: 'in.mp4', width, height, frameRate: 25, frameCount, durationSeconds: frameCount / 25 },
    settings: {},
    detections: [],
    segments,
    zones,
  };
}

const face = (x: number, y: number, w: number, h: number, qpOffset: number) => ({ x, y, w, h, qpOffset, kind: 'face' as const });
const background = (w: number, h: number, qpOffset: number) => ({ x: 0, y: 0, w, h, qpOffset, kind: 'background' as const });
const times = (n: number, fps = 25) => Float64Array.from({ length: n }, (_, i) => i / fps);

describe('ROI filtergraph builder', () => {
  it('gives a single segment one addroi chain, in plan order, without split or concat', () => {
    const g = buildRoiFilterGraph(plan(640, 360, [{ startFrame: 0, endFrame: 50, regions: [face(96, 64, 128, 128, -6), face(64, 32, 192, 224, 0), background(640, 360, 6)] }]), { strength: 1, frameTimes: times(50), outputLabel: 'v' });
    assert.equal(g, '[0:v:0]addroi=x=96:y=64:w=128:h=128:qoffset=-0.117647:clear=0,addroi=x=64:y=32:w=192:h=224:qoffset=0:clear=0,addroi=x=0:y=0:w=640:h=360:qoffset=0.117647:clear=0[v]');
  });

  it('splits the timeline at segment boundaries with exact trims and restores timestamps', () => {
    const segs = [
      { startFrame: 0, endFrame: 10, regions: [face(0, 0, 32, 32, -5), background(64, 64, 5)] },
      { startFrame: 10, endFrame: 25, regions: [background(64, 64, 5)] },
      { startFrame: 25, endFrame: 40, regions: [face(16, 16, 32, 32, -5)] },
    ];
    const g = buildRoiFilterGraph(plan(64, 64, segs), { strength: 1, frameTimes: times(40, 50), outputLabel: 'out' });
    const lines = g.split('\n');
    assert.equal(lines[0], '[0:v:0]split=3[s0][s1][s2];');
    assert.match(lines[1]!, /^\[s0\]trim=start_frame=0:end_frame=10,addroi=x=0:y=0:w=32:h=32:qoffset=-0\.098039:clear=0,addroi=x=0:y=0:w=64:h=64:qoffset=0\.098039:clear=0\[v0\];$/);
    assert.match(lines[2]!, /^\[s1\]trim=start_frame=10:end_frame=25,addroi=x=0:y=0:w=64:h=64/);
    assert.match(lines[3]!, /^\[s2\]trim=start_frame=25:end_frame=40,addroi=x=16:y=16/);
    assert.equal(lines[4], '[v0][v1][v2]concat=n=3:v=1:a=0,');
    // Segment starts at frames 10 and 25 sit at 0.2 s and 0.5 s (50 fps).
    assert.equal(lines[5], "setpts='round(PTS-st(0,if(eq(N,10)+eq(N,25),eq(N,10)*(PTS-STARTPTS-0.2/TB)+eq(N,25)*(PTS-STARTPTS-0.5/TB),ld(0))))'[out]");
  });

  it('groups more than FLAT_SEGMENTS segments in two levels, and ffmpeg gives every frame its own segment\'s regions at its own time', () => {
    // 50 segments of 2 frames; segment i's face region starts at x = i. Frames come at 25 fps but
    // with a gap (frames 40–59 are 0.2 s later), so the timestamps must be restored, not re-timed.
    const n = FLAT_SEGMENTS + 18;
    const segs = Array.from({ length: n }, (_, i) => ({ startFrame: 2 * i, endFrame: 2 * i + 2, regions: [face(i, 0, 16, 16, -5), background(64, 64, 5)] }));
    const frameTimes = Float64Array.from({ length: 2 * n }, (_, f) => f / 25 + (f >= 40 ? 0.2 : 0));
    const g = buildRoiFilterGraph(plan(64, 64, segs), { strength: 1, frameTimes, outputLabel: 'v' });
    const lines = g.split('\n');
    const groups = Math.ceil(n / Math.ceil(Math.sqrt(n)));
    assert.equal(lines[0], `[0:v:0]split=${groups}${Array.from({ length: groups }, (_, i) => `[s${i}]`).join('')};`);
    // The second group (segments 8–15, frames 16–31) counts its segments' frames from its own first.
    assert.match(g, /^\[s1\]trim=start_frame=16:end_frame=32,split=8\[g1s0\]/m);
    assert.match(g, /^\[g1s1\]trim=start_frame=2:end_frame=4,addroi=x=9:y=0:/m);
    const dir = workDir('filtergraph');
    const script = join(dir, 'grouped.filter');
    writeFileSync(script, `${g};\n[v]showinfo`);
    const r = spawnSync(resolveBinaries().ffmpeg, ['-hide_banner', '-f', 'lavfi', '-i', `testsrc2=s=64x64:r=25:d=${(2 * n + 5) / 25},select='not(between(n\\,40\\,44))'`, '-filter_complex_script', script, '-f', 'null', '-'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    const frames: { n: number; time: number; roiX?: number }[] = [];
    for (const line of r.stderr.split('\n')) {
      const f = /\bn:\s*(\d+) pts:\s*\d+ pts_time:([\d.]+)/.exec(line);
      if (f) frames.push({ n: Number(f[1]), time: Number(f[2]) });
      const roi = /index: 0, region: \((\d+), 0\)/.exec(line);
      if (roi) frames.at(-1)!.roiX = Number(roi[1]);
    }
    assert.equal(frames.length, 2 * n);
    for (const f of frames) {
      assert.equal(f.roiX, Math.floor(f.n / 2), `frame ${f.n}`);
      assert.ok(Math.abs(f.time - frameTimes[f.n]!) < 1e-6, `frame ${f.n} at ${f.time} s, source ${frameTimes[f.n]} s`);
    }
  });

  it('chains the timestamp restoration over several setpts filters when there are many segments', () => {
    const n = 2 * STARTS_PER_SETPTS + 5;
    const segs = Array.from({ length: n }, (_, i) => ({ startFrame: 2 * i, endFrame: 2 * i + 2, regions: [face(0, 0, 32, 32, -5 + (i % 2)), background(64, 64, 5)] }));
    const g = buildRoiFilterGraph(plan(64, 64, segs), { strength: 1, frameTimes: times(2 * n), outputLabel: 'out' });
    const last = g.split('\n').pop()!;
    const filters = last.replace(/\[out\]$/, '').split("',");
    assert.equal(filters.length, 3, last);
    // Each filter touches only the frames from its first segment start to the next filter's first.
    assert.match(filters[0]!, new RegExp(`^setpts='if\\(between\\(N,2,${2 * STARTS_PER_SETPTS + 1}\\),round\\(PTS-st\\(0,if\\(eq\\(N,2\\)\\+`));
    assert.match(filters[2]!, new RegExp(`^setpts='if\\(gte\\(N,${4 * STARTS_PER_SETPTS + 2}\\),`));
    for (const f of filters) assert.ok((f.match(/eq\(N,/g) ?? []).length <= 2 * STARTS_PER_SETPTS, f);
  });

  it('gives every segment ROI side data when any has some: a whole-frame region at 0 where nothing else applies', () => {
    // x265 crashes when ROI starts after frame 0 and keeps stale offsets when it stops (test/encode.test.ts).
    const bg0 = background(64, 64, 0);
    const zero = 'addroi=x=0:y=0:w=64:h=64:qoffset=0:clear=0';
    const late = buildRoiFilterGraph(plan(64, 64, [{ startFrame: 0, endFrame: 10, regions: [bg0] }, { startFrame: 10, endFrame: 20, regions: [face(0, 0, 32, 32, -5), bg0] }]), { strength: 1, frameTimes: times(20), outputLabel: 'v' });
    assert.equal(late.split('\n')[1], `[s0]trim=start_frame=0:end_frame=10,${zero}[v0];`);
    const early = buildRoiFilterGraph(plan(64, 64, [{ startFrame: 0, endFrame: 10, regions: [face(0, 0, 32, 32, -5), bg0] }, { startFrame: 10, endFrame: 20, regions: [] }]), { strength: 1, frameTimes: times(20), outputLabel: 'v' });
    assert.equal(early.split('\n')[2], `[s1]trim=start_frame=10:end_frame=20,${zero}[v1];`);
    // No ROI anywhere (or strength 0): no side data at all, and nothing to crash on.
    const none = buildRoiFilterGraph(plan(64, 64, [{ startFrame: 0, endFrame: 10, regions: [bg0] }, { startFrame: 10, endFrame: 20, regions: [face(0, 0, 32, 32, -5), bg0] }]), { strength: 0, frameTimes: times(20), outputLabel: 'v' });
    assert.ok(!none.includes('addroi'), none);
  });

  it('clamps regions to the frame and rounds odd coordinates', () => {
    const chain = addroiChain([face(-8, 290.4, 100.6, 40, -6), face(390, 0, 32, 32, -6), face(500, 500, 16, 16, -6)], 1, 401, 301);
    assert.deepEqual(chain, [
      'addroi=x=0:y=290:w=93:h=11:qoffset=-0.117647:clear=0',
      'addroi=x=390:y=0:w=11:h=32:qoffset=-0.117647:clear=0',
    ]);
  });

  it('scales offsets by strength and drops regions that end up with none', () => {
    assert.equal(qoffsetFor(-6, 2), -12 / 51);
    assert.equal(qoffsetFor(40, 2), 1);
    assert.deepEqual(addroiChain([face(0, 0, 16, 16, -6)], 0, 64, 64), []);
    const g = buildRoiFilterGraph(plan(64, 64, [{ startFrame: 0, endFrame: 5, regions: [background(64, 64, 0)] }]), { strength: 1, frameTimes: times(5), outputLabel: 'v' });
    assert.equal(g, '[0:v:0]null[v]');
  });

  it('keeps a zero-offset region that shields blocks from a later one, and drops one that shields nothing', () => {
    const margin = { ...face(16, 16, 32, 32, 0), importance: 0.4 };
    assert.deepEqual(addroiChain([face(24, 24, 16, 16, -4), margin, background(64, 64, 4)], 1, 64, 64), [
      'addroi=x=24:y=24:w=16:h=16:qoffset=-0.078431:clear=0',
      'addroi=x=16:y=16:w=32:h=32:qoffset=0:clear=0',
      'addroi=x=0:y=0:w=64:h=64:qoffset=0.078431:clear=0',
    ]);
    assert.deepEqual(addroiChain([face(24, 24, 16, 16, -4), margin], 1, 64, 64), ['addroi=x=24:y=24:w=16:h=16:qoffset=-0.078431:clear=0']);
  });

  it('turns zones into x265 zones with inclusive end frames', () => {
    assert.equal(zonesParam([{ startFrame: 0, endFrame: 100, bitrateFactor: 0.8 }, { startFrame: 100, endFrame: 150, bitrateFactor: 1 }, { startFrame: 150, endFrame: 200, bitrateFactor: 1.25 }]), '0,99,b=0.8/150,199,b=1.25');
    assert.equal(zonesParam([]), undefined);
  });
});

describe('keyframe relief', () => {
  it("predicts x265's keyframes: frame 0, each cut, and every 250 frames after each", () => {
    assert.deepEqual(encoderKeyframes(600), [0, 250, 500]);
    assert.deepEqual(encoderKeyframes(600, [100, 450]), [0, 100, 350, 450]);
    // Cuts out of range, at 0 or repeated change nothing.
    assert.deepEqual(encoderKeyframes(300, [0, 120, 120, 300, 900], 100), [0, 100, 120, 220]);
    assert.deepEqual(encoderKeyframes(1), [0]);
  });

  it('gives each keyframe a one-frame segment with offsets above the cap lowered to it, and leaves the rest as written', () => {
    const segs = [
      { startFrame: 0, endFrame: 300, regions: [face(0, 0, 32, 32, -2), face(0, 0, 48, 48, 3), background(64, 64, 4)] },
      { startFrame: 300, endFrame: 320, regions: [background(64, 64, -1)] },
      { startFrame: 320, endFrame: 400, regions: [background(64, 64, 4)] },
    ];
    const written = { ...plan(64, 64, segs), cuts: [320], keyframeMaxQpOffset: 0 };
    const relieved = relieveKeyframes(written);
    const shape = relieved.segments.map((s) => [s.startFrame, s.endFrame, ...s.regions.map((r) => r.qpOffset)]);
    assert.deepEqual(shape, [
      [0, 1, -2, 0, 0],
      [1, 250, -2, 3, 4],
      [250, 251, -2, 0, 0],
      [251, 300, -2, 3, 4],
      // Nothing above the cap: the keyframe-free and the already-low segment stay whole.
      [300, 320, -1],
      [320, 321, 0],
      [321, 400, 4],
    ]);
    assert.deepEqual(written.segments, segs, 'the plan itself is not changed');
    // No cap (plans from before it, or edited out): the plan as written.
    const { keyframeMaxQpOffset: _, ...uncapped } = written;
    assert.equal(relieveKeyframes(uncapped), uncapped);
  });

  it('reaches the filtergraph: the keyframe gets its own trim and the capped offset, before strength scales it', () => {
    const capped = { ...plan(64, 64, [{ startFrame: 0, endFrame: 20, regions: [face(0, 0, 32, 32, -2), background(64, 64, 4)] }]), keyframeMaxQpOffset: 1 };
    const lines = buildRoiFilterGraph(capped, { strength: 2, frameTimes: times(20), outputLabel: 'v' }).split('\n');
    assert.equal(lines[0], '[0:v:0]split=2[s0][s1];');
    assert.equal(lines[1], '[s0]trim=start_frame=0:end_frame=1,addroi=x=0:y=0:w=32:h=32:qoffset=-0.078431:clear=0,addroi=x=0:y=0:w=64:h=64:qoffset=0.039216:clear=0[v0];');
    assert.equal(lines[2], '[s1]trim=start_frame=1:end_frame=20,addroi=x=0:y=0:w=32:h=32:qoffset=-0.078431:clear=0,addroi=x=0:y=0:w=64:h=64:qoffset=0.156863:clear=0[v1];');
  });
});

describe('encode argv builder', () => {
  const base = { input: 'in.mp4', output: '/tmp/.out.partial.mp4', filterScript: '/tmp/g.txt', videoLabel: 'v', crf: 28, preset: 'medium' as const, x265Params: { 'aq-mode': 2, zones: '0,9,b=0.5' }, hasSubtitles: false };

  it('maps the graph output, copies audio and subtitles, keeps metadata, tags hvc1 with faststart for mp4', () => {
    const args = buildEncodeArgs({ ...base, container: 'mp4' });
    const joined = args.join(' ');
    assert.ok(joined.includes('-noautorotate -i in.mp4 -filter_complex_script /tmp/g.txt -map [v] -map 0:a? -map 0:s?'));
    assert.ok(joined.includes('-fps_mode passthrough -copyts -c:v libx265 -preset medium -crf 28 -x265-params aq-mode=2:zones=0,9,b=0.5 -c:a copy'));
    assert.ok(joined.includes('-map_metadata 0 -map_chapters 0 -tag:v hvc1 -movflags +faststart -movie_timescale 90000 -progress pipe:1 /tmp/.out.partial.mp4'));
  });

  it('keeps timestamps in the input video time base, maps each planned stream with its own codec', () => {
    const tracks = [{ index: 1, type: 'audio' as const, codec: 'pcm_s16le', action: 'alac' as const }, { index: 3, type: 'subtitle' as const, codec: 'subrip', action: 'mov_text' as const }];
    const joined = buildEncodeArgs({ ...base, container: 'mp4', tracks, encTimeBase: '1/90000' }).join(' ');
    assert.ok(joined.includes('-map [v] -map 0:1 -map 0:3 -fps_mode passthrough -enc_time_base:v 1:90000 -copyts'), joined);
    assert.ok(joined.includes('-c:1 alac -c:2 mov_text -map_metadata'), joined);
    // Video-only encodes (comparisons) keep ffmpeg's default start at 0, as the quality measurement expects.
    assert.ok(!buildEncodeArgs({ ...base, container: 'mp4', videoOnly: true }).includes('-copyts'));
  });

  it('uses the input directly without a graph, and copies subtitles into mkv but converts them for mp4', () => {
    const mkv = buildEncodeArgs({ ...base, filterScript: undefined, container: 'mkv', hasSubtitles: true });
    assert.ok(mkv.join(' ').includes('-map 0:v:0 -map 0:a?'));
    assert.ok(mkv.join(' ').includes('-c:s copy'));
    assert.ok(!mkv.includes('-tag:v'));
    assert.ok(mkv.join(' ').includes('-map 0:t?'), 'Matroska attachments (fonts) are kept');
    assert.ok(buildEncodeArgs({ ...base, container: 'mp4', hasSubtitles: true }).join(' ').includes('-c:s mov_text'));
  });

  it('leaves audio and subtitles out of video-only encodes (comparisons)', () => {
    const args = buildEncodeArgs({ ...base, container: 'mp4', hasSubtitles: true, videoOnly: true });
    assert.deepEqual(args.filter((a) => a.startsWith('0:')), []);
    assert.ok(!args.includes('-c:a') && !args.includes('-c:s'), args.join(' '));
    assert.ok(args.join(' ').includes('-map [v]'));
  });

  it('with sourceTap, a second output after the file: every decoded source frame, raw yuv420p, on fd 3', () => {
    const args = buildEncodeArgs({ ...base, container: 'mp4', sourceTap: true });
    assert.deepEqual(args.slice(args.indexOf('/tmp/.out.partial.mp4')), ['/tmp/.out.partial.mp4', '-map', '0:v:0', '-fps_mode', 'passthrough', '-pix_fmt', 'yuv420p', '-f', 'rawvideo', 'pipe:3']);
    assert.ok(!buildEncodeArgs({ ...base, container: 'mp4' }).includes('pipe:3'));
  });

  it('knows its containers', () => {
    assert.equal(containerFor('a.MP4'), 'mp4');
    assert.equal(containerFor('a.mkv'), 'mkv');
    assert.equal(containerFor('a.mov'), 'mov');
    assert.throws(() => containerFor('a.avi'), /unsupported output extension '.avi'/);
  });
});
