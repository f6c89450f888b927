import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { analyze, encode, measureQuality, type Plan } from '../src/index.js';
import { resolveBinaries } from '../src/media/binaries.js';
import { planTracks } from '../src/encode/argv.js';
import { cli, ffprobeJson, fixture, frameTimes, offsetClipArgs, workDir } from './helpers.js';

/**
 * Timestamps and streams: every stream keeps its start and every video frame its time, to the
 * millisecond; streams a container cannot hold are converted losslessly or refused before any work.
 * Real ffmpeg on clips made here.
 */
const dir = workDir('streams');

interface Stream {
  index: number;
  codec_type: string;
  codec_name: string;
  start_time?: string;
}

function streamsOf(file: string): Stream[] {
  return (ffprobeJson(file, ['-show_streams']) as { streams: Stream[] }).streams;
}

function starts(file: string): { type: string; codec: string; start: number }[] {
  return streamsOf(file).map((s) => ({ type: s.codec_type, codec: s.codec_name, start: Number(s.start_time) }));
}

/** Each output stream starts where its input stream did (±1 ms); the video frames keep their times. */
function assertTimesKept(source: string, out: string): void {
  const a = starts(source);
  const b = starts(out);
  assert.deepEqual(b.map((s) => s.type), a.map((s) => s.type), 'streams differ');
  a.forEach((s, i) => assert.ok(Math.abs(b[i]!.start - s.start) <= 0.001, `${out}: ${s.type} stream ${i} starts at ${b[i]!.start} s instead of ${s.start} s`));
  const tin = frameTimes(source);
  const tout = frameTimes(out);
  assert.equal(tout.length, tin.length, 'frame count');
  tout.forEach((t, i) => assert.ok(Math.abs(t - tin[i]!) <= 0.001, `${out}: frame ${i} at ${t} s instead of ${tin[i]} s`));
}

/** A plan with three segments (no analysis needed: timing does not depend on where faces are). */
function threeSegmentPlan(source: string, width: number, height: number, frameCount: number): Plan {
  const cuts = [0, Math.floor(frameCount / 3), Math.floor((2 * frameCount) / 3), frameCount];
  return {
    version: 1,
    input: { path: source, width, height, frameRate: 25, frameCount, durationSeconds: frameCount / 25 },
    settings: {},
    detections: [],
    segments: cuts.slice(0, 3).map((startFrame, i) => ({
      startFrame,
      endFrame: cuts[i + 1]!,
      regions: [
        { x: 32 * (i + 1), y: 32, w: 96, h: 96, qpOffset: -4, kind: 'face' as const },
        { x: 0, y: 0, w: width, h: height, qpOffset: 4, kind: 'background' as const },
      ],
    })),
    zones: [],
  };
}

describe('timestamps', () => {
  // Video 0.523 s after the first audio track, its frames off the 1/25 s grid (VFR jitter), a second
  // audio track (FLAC) starting at 0.25 s.
  const offset = () => fixture(dir, 'offset.mkv', (out) => offsetClipArgs(2, out));

  it('measures a video-only encode of it against the source, frames paired from each one\'s first frame', async () => {
    // compare's encodes carry the video alone and start at 0, where the source's video starts at 0.523 s.
    const source = offset();
    const out = join(dir, 'offset-video-only.mp4');
    const plan = await analyze(source);
    await encode(source, out, { plan, videoOnly: true, force: true, preset: 'ultrafast' });
    const q = await measureQuality(source, out, plan, resolveBinaries());
    assert.equal(q.facePsnrPerFrame.length, plan.input.frameCount);
    assert.ok(q.psnr > 30 && q.psnr < 60, `PSNR ${q.psnr} dB: frames are not paired`);
  });

  for (const ext of ['mkv', 'mp4'] as const) {
    it(`keeps every stream's start and every frame's time to the millisecond, ROI and uniform, into ${ext}`, async () => {
      const source = offset();
      const s = starts(source);
      assert.ok(Math.abs(s[0]!.start - s[1]!.start - 0.523) < 0.03, `fixture: video should start ~0.523 s after audio (${JSON.stringify(s)})`);
      const roi = await encode(source, join(dir, `offset-roi.${ext}`), { plan: threeSegmentPlan(source, 320, 240, 50), preset: 'ultrafast', crf: 30 });
      assertTimesKept(source, roi.output);
      const flat = await encode(source, join(dir, `offset-flat.${ext}`), { roi: 'none', preset: 'ultrafast', crf: 30 });
      assertTimesKept(source, flat.output);
      // MP4 has no FLAC (ffmpeg 5.1 calls it experimental): it becomes ALAC, lossless.
      assert.deepEqual(streamsOf(flat.output).map((x) => x.codec_name), ext === 'mp4' ? ['hevc', 'aac', 'alac'] : ['hevc', 'aac', 'flac']);
    });
  }

  it('keeps a start time of 10 s: MP4 by an edit list (as ffmpeg writes it), MKV directly', async () => {
    const source = fixture(dir, 'start10.mp4', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=2', '-f', 'lavfi', '-i', 'sine=duration=2', '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-output_ts_offset', '10', out]);
    assert.ok(Math.abs(starts(source)[0]!.start - 10) < 0.001, 'fixture should start at 10 s');
    for (const ext of ['mp4', 'mkv']) {
      const r = await encode(source, join(dir, `start10-out.${ext}`), { plan: threeSegmentPlan(source, 320, 240, 50), preset: 'ultrafast', crf: 30 });
      assertTimesKept(source, r.output);
    }
  });
});

describe('mid-stream changes', () => {
  const part = (name: string, size: string, offset: number) =>
    fixture(dir, name, (out) => ['-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25:duration=1`, '-f', 'lavfi', '-i', 'sine=duration=1', '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-output_ts_offset', String(offset), out]);
  const joined = (name: string, second: string) => {
    const out = join(dir, name);
    if (!existsSync(out)) execFileSync('bash', ['-c', `cat '${part('a.ts', '320x240', 0)}' '${second}' > '${out}'`]);
    return out;
  };

  const cases: [string, () => string, RegExp][] = [
    // Two captures joined: the second one's timestamps start again, and it is larger.
    ['a timestamp reset (two MPEG-TS captures joined)', () => joined('reset.ts', part('b.ts', '400x300', 0)), /timestamps jump back from \d+\.\d+ s to \d+\.\d+ s .*re-time or split/],
    // Timestamps continue, but the picture size changes at the second capture's keyframe.
    ['a size change with continuous timestamps', () => joined('resized.ts', part('c.ts', '400x300', 1)), /changes size mid-stream \(320x240, then 400x300 at \d+\.\d+ s\)/],
  ];
  for (const [what, input, message] of cases) {
    it(`refuses ${what} with one line before any work, in every command`, () => {
      const file = input();
      for (const args of [[file, '-o', join(dir, 'ts-out.mp4')], ['analyze', file], ['compare', file, '-o', join(dir, 'ts-report')]]) {
        const r = cli([...args, '--json']);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, message);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string });
        assert.deepEqual(events.map((e) => e.type), ['error'], 'work started before the refusal');
      }
      assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('ts-') || f.includes('.partial')), []);
    });
  }
});

describe('audio and subtitles the container cannot hold', () => {
  const pcmMov = () => fixture(dir, 'pcm.mov', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=1', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=1', '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'pcm_s16le', out]);
  const samples = (file: string) => execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:a:0', '-f', 's16le', '-'], { maxBuffer: 1 << 26 });

  it('MOV with PCM audio: ALAC in MP4 with identical samples, PCM kept in MOV and MKV', async () => {
    const source = pcmMov();
    for (const [ext, codec] of [['mp4', 'alac'], ['mov', 'pcm_s16le'], ['mkv', 'pcm_s16le']] as const) {
      const r = await encode(source, join(dir, `pcm-out.${ext}`), { roi: 'none', preset: 'ultrafast', crf: 30 });
      assert.equal(streamsOf(r.output)[1]!.codec_name, codec, ext);
      assert.ok(samples(r.output).equals(samples(source)), `${ext}: audio samples changed`);
      assertTimesKept(source, r.output);
    }
  });

  it('refuses Opus into .mov before any work, naming the codec and suggesting .mkv', () => {
    const source = fixture(dir, 'opus.mkv', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=1', '-f', 'lavfi', '-i', 'sine=duration=1', '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'libopus', out]);
    const r = cli([source, '-o', join(dir, 'opus-out.mov'), '--json']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), `roi-encode: audio stream 1 of the input is opus, which MOV (${join(dir, 'opus-out.mov')}) cannot hold; write .mkv instead, which keeps it as it is`);
    assert.deepEqual(r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { type: string }).type), ['error'], 'analysis ran before the refusal');
    assert.equal(existsSync(join(dir, 'opus-out.mov')), false);
  });

  it('turns MP4 (mov_text) subtitles into SRT for MKV, which cannot hold mov_text', async () => {
    const srt = join(dir, 'subs.srt');
    writeFileSync(srt, '1\n00:00:00,000 --> 00:00:00,800\nhello\n');
    const source = fixture(dir, 'movtext.mp4', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=1', '-i', srt, '-c:v', 'libx264', '-preset', 'ultrafast', '-c:s', 'mov_text', out]);
    const r = await encode(source, join(dir, 'movtext-out.mkv'), { roi: 'none', preset: 'ultrafast', crf: 30 });
    assert.deepEqual(streamsOf(r.output).map((s) => s.codec_name), ['hevc', 'subrip']);
  });

  it('plans every stream: copy where the container takes it, lossless ALAC, text subtitles converted, the rest refused', () => {
    const t = (index: number, type: 'audio' | 'subtitle', codec: string) => ({ index, type, codec });
    const plan = (container: 'mp4' | 'mov' | 'mkv', ...tracks: ReturnType<typeof t>[]) => planTracks(tracks, container, `out.${container}`).map((p) => p.action);
    assert.deepEqual(plan('mp4', t(1, 'audio', 'aac'), t(2, 'audio', 'pcm_s24le'), t(3, 'audio', 'flac'), t(4, 'subtitle', 'subrip'), t(5, 'subtitle', 'ass')), ['copy', 'alac', 'alac', 'mov_text', 'mov_text']);
    assert.deepEqual(plan('mov', t(1, 'audio', 'pcm_s16le'), t(2, 'audio', 'flac'), t(3, 'audio', 'ac3')), ['copy', 'alac', 'copy']);
    assert.deepEqual(plan('mkv', t(1, 'audio', 'truehd'), t(2, 'subtitle', 'mov_text'), t(3, 'subtitle', 'hdmv_pgs_subtitle')), ['copy', 'srt', 'copy']);
    assert.throws(() => plan('mp4', t(1, 'audio', 'truehd')), /audio stream 1 of the input is truehd, which MP4 \(out\.mp4\) cannot hold; write \.mkv instead/);
    assert.throws(() => plan('mp4', t(2, 'subtitle', 'hdmv_pgs_subtitle')), /subtitle stream 2 of the input is hdmv_pgs_subtitle, which MP4/);
    assert.throws(() => plan('mov', t(1, 'audio', 'opus')), /opus, which MOV/);
  });
});
