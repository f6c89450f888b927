import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ANALYZE_DEFAULTS, compare, COMPARE_DEFAULTS, encode, ENCODE_DEFAULTS } from '../src/index.js';
import { compactFields, parseCompactStream, probeVideo } from '../src/media/probe.js';
import { resolveBinaries } from '../src/media/binaries.js';
import { CLI, cli, ffprobeJson, fixture, frameTimes, ROOT, SAMPLE, workDir } from './helpers.js';

/**
 * Hostile inputs and the CLI's words: things that are not videos are refused by every command with
 * one line naming what was detected; odd command lines work or fail in one line.
 */
const dir = workDir('inputs');

function clean(): string[] {
  return readdirSync(dir).filter((f) => f.startsWith('out') || f.includes('.partial'));
}

/** The same one line from encode, analyze and compare, nothing written. */
function refusedByEveryCommand(input: string, message: RegExp): void {
  const lines: string[] = [];
  for (const args of [[input, '-o', join(dir, 'out.mp4')], ['analyze', input, '-o', join(dir, 'out-plan.json')], ['compare', input, '-o', join(dir, 'out-report')]]) {
    const r = cli(args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, message);
    lines.push(r.stderr);
  }
  assert.equal(new Set(lines).size, 1, `the commands disagree:\n${lines.join('')}`);
  assert.deepEqual(clean(), []);
}

describe('inputs that are not videos', () => {
  it('refuses a text file that ffmpeg would render as video (tty demuxer)', () => {
    const txt = join(dir, 'notes.txt');
    writeFileSync(txt, readFileSync(join(ROOT, 'README.md')));
    refusedByEveryCommand(txt, /^roi-encode: input is a text file \(ffmpeg's tty demuxer would render its characters as video\), not a video: .*notes\.txt$/m);
  });

  it('refuses a still image (PNG, JPEG, one-frame GIF) the same way in every command', () => {
    const png = fixture(dir, 'still.png', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240', '-frames:v', '1', out]);
    refusedByEveryCommand(png, /input is a still image \(png read by ffmpeg's png_pipe demuxer\), not a video: .*still\.png; make a video of it first/);
    const jpg = fixture(dir, 'still.jpg', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240', '-frames:v', '1', out]);
    refusedByEveryCommand(jpg, /input is a still image \(mjpeg read by ffmpeg's image2 demuxer\)/);
    const gif = fixture(dir, 'still.gif', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240', '-frames:v', '1', out]);
    refusedByEveryCommand(gif, /input is a still image \(gif read by ffmpeg's gif demuxer\)/);
  });

  it('refuses an image sequence pattern', () => {
    for (let i = 1; i <= 3; i++) fixture(dir, `img00${i}.png`, (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240', '-frames:v', '1', out]);
    const r = cli([join(dir, 'img%03d.png'), '-o', join(dir, 'out.mp4')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^roi-encode: input not found: .*img%03d\.png \(roi-encoder reads one video file; image sequences are not supported\)\n$/);
  });

  it('refuses a subtitle file, naming its format', () => {
    const srt = join(dir, 'subs.srt');
    writeFileSync(srt, '1\n00:00:00,000 --> 00:00:01,000\nhello\n');
    refusedByEveryCommand(srt, /^roi-encode: input is a subtitle file \(ffmpeg reads it as srt\), not a video: .*subs\.srt$/m);
  });

  it('says what is wrong with a 2x2 video instead of passing on ffmpeg’s encoder error', () => {
    const tiny = fixture(dir, 'tiny.mp4', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=2x2:rate=25:duration=1', '-c:v', 'libx264', '-preset', 'ultrafast', out]);
    for (const args of [[tiny, '-o', join(dir, 'out.mp4'), '--roi', 'none'], ['compare', tiny, '-o', join(dir, 'out-report')]]) {
      const r = cli(args);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^roi-encode: .*tiny\.mp4 is 2x2, too small to encode: x265 needs at least 16x16 pixels\n$/);
    }
    assert.deepEqual(clean(), []);
  });
});

describe('command line', () => {
  const clip = () => fixture(dir, 'clip.mp4', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=1', '-c:v', 'libx264', '-preset', 'ultrafast', out]);

  it('ends option parsing at --, so an input may start with a dash', () => {
    copyFileSync(clip(), join(dir, '-dash.mp4'));
    const r = cli(['-o', 'out-dash.mp4', '--roi', 'none', '--preset', 'ultrafast', '--', '-dash.mp4'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(dir, 'out-dash.mp4')));
    rmSync(join(dir, 'out-dash.mp4'));
  });

  it('reports bitrates in kbit/s, as the report page does', () => {
    const r = cli([clip(), '-o', join(dir, 'out-rate.mp4'), '--roi', 'none', '--preset', 'ultrafast']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /, \d+\.\d kbit\/s, 25 frames/);
    assert.doesNotMatch(r.stderr, /kb\/s/);
    rmSync(join(dir, 'out-rate.mp4'));
  });

  it('shows numeric options as [number] with the library’s defaults in help', () => {
    const help = (args: string[]) => {
      const r = cli([...args, '--help']);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.replace(/\s+/g, ' ');
    };
    const option = (text: string, name: string) => new RegExp(`--${name} .*?\\[(\\w+)\\] \\[default: ([^\\]]+)\\]`).exec(text)?.slice(1);
    const encodeHelp = help([]);
    assert.deepEqual(option(encodeHelp, 'crf'), ['number', String(ENCODE_DEFAULTS.crf)]);
    assert.deepEqual(option(encodeHelp, 'strength'), ['number', String(ENCODE_DEFAULTS.strength)]);
    assert.deepEqual(option(encodeHelp, 'preset'), ['string', ENCODE_DEFAULTS.preset]);
    assert.deepEqual(option(encodeHelp, 'sample-fps'), ['number', String(ANALYZE_DEFAULTS.sampleFps)]);
    assert.deepEqual(option(encodeHelp, 'min-score'), ['number', `${ANALYZE_DEFAULTS.minScore} (mediapipe-full: ${ANALYZE_DEFAULTS.mediapipeMinScore})`]);
    assert.deepEqual(option(encodeHelp, 'min-face'), ['number', String(ANALYZE_DEFAULTS.minFaceSize)]);
    assert.deepEqual(option(encodeHelp, 'face-detector'), ['string', ANALYZE_DEFAULTS.faceDetector]);
    const compareHelp = help(['compare']);
    assert.deepEqual(option(compareHelp, 'crf'), ['string', COMPARE_DEFAULTS.crfs.join(',')]);
    assert.deepEqual(option(compareHelp, 'preset'), ['string', COMPARE_DEFAULTS.preset]);
    assert.deepEqual(option(help(['analyze']), 'sample-fps'), ['number', String(ANALYZE_DEFAULTS.sampleFps)]);
  });

  it('names CLI flags in CLI messages and library options in library errors', async () => {
    const existing = join(dir, 'out-existing.mp4');
    writeFileSync(existing, 'keep');
    const r = cli([clip(), '-o', existing, '--roi', 'none']);
    assert.equal(r.stderr, `roi-encode: output ${existing} already exists; use --force to overwrite it\n`);
    await assert.rejects(encode(clip(), existing, { roi: 'none' }), { code: 'OUTPUT_EXISTS', message: `output ${existing} already exists; use force: true to overwrite it` });
    rmSync(existing);
    const c = cli(['compare', clip(), '-o', join(dir, 'out-report'), '--crf', '30']);
    assert.equal(c.stderr, `roi-encode: Expected at least two different CRFs (BD-rate needs a curve), e.g. 22,26,30,34 for --crf but received '30'\n`);
    await assert.rejects(compare(clip(), join(dir, 'out-report'), { crfs: '30' }), { message: /for crfs but received '30'$/ });
    const s = cli([clip(), '-o', join(dir, 'out.mp4'), '--sample-fps', 'often']);
    assert.equal(s.stderr, `roi-encode: Expected number 0.1–240 for --sample-fps but received 'often'\n`);
    assert.deepEqual(clean(), []);
  });
});

describe('start-up', () => {
  let logCount = 0;
  /** Bare packages a CLI run imports (an ESM resolve hook logs them). */
  const imports = (args: string[]): Set<string> => {
    const log = join(dir, `imports-${++logCount}.log`);
    writeFileSync(log, '');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', join(ROOT, 'test', 'fixtures', 'log-imports.mjs'), CLI, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, LOG_IMPORTS: log } });
    assert.ok(r.status === 0 || r.status === 1, r.stderr);
    return new Set(readFileSync(log, 'utf8').split('\n').filter(Boolean));
  };
  const reportOnly = ['vega', 'vega-lite', 'sharp'];

  it('loads no report code (Vega, sharp) for --help, analyze or an encode; compare does', () => {
    const clip = fixture(dir, 'startup.mp4', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=1', '-c:v', 'libx264', '-preset', 'ultrafast', out]);
    const help = imports(['--help']);
    assert.ok(help.has('yargs'), 'the hook logged nothing');
    assert.ok(!help.has('onnxruntime-node') && !help.has('zod'), `--help loaded ${[...help].join(', ')}`);
    const runs = [imports(['analyze', clip, '--sample-fps', '1']), imports([clip, '-o', join(dir, 'out-startup.mp4'), '--roi', 'none', '--preset', 'ultrafast']), imports([SAMPLE, '-o', join(dir, 'out-startup2.mp4'), '--plan', join(dir, 'no-such-plan.json')])];
    for (const loaded of runs) for (const name of reportOnly) assert.ok(!loaded.has(name), `${name} was loaded`);
    const cmp = imports(['compare', clip, '-o', join(dir, 'out-report'), '--crf', '30']);
    assert.ok(cmp.has('vega') && cmp.has('sharp'), 'compare should load the report code (the hook works)');
    rmSync(join(dir, 'out-startup.mp4'), { force: true });
  });
});

describe('probe (one ffprobe run for streams and packets)', () => {
  it('reads compact lines as the JSON writer would shape them: escapes, tags, dispositions, side data', () => {
    const line = 'stream|index=1|codec_name=h264|codec_type=video|width=320|height=240|nb_frames=N/A|disposition:attached_pic=0|tag:title=a\\|b\\\\c\\nd|side_data|side_data_type=Display Matrix|displaymatrix=\\n0: 1 2\\n|rotation=-90';
    assert.deepEqual(compactFields('a|b\\|c|d\\\\|'), ['a', 'b|c', 'd\\', '']);
    assert.deepEqual(parseCompactStream(compactFields(line)), {
      index: 1, codec_name: 'h264', codec_type: 'video', width: 320, height: 240,
      disposition: { attached_pic: 0 }, tags: { title: 'a|b\\c\nd' },
      side_data_list: [{ side_data_type: 'Display Matrix', displaymatrix: '\n0: 1 2\n', rotation: -90 }],
    });
  });

  it('describes a rotated MOV with audio, subtitles and a tag full of separators as ffprobe does', async () => {
    const base = fixture(dir, 'probe-base.mov', (out) => [
      '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=1', '-f', 'lavfi', '-i', 'sine=duration=1.2',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-metadata:s:v', 'title=left|right\\back', out]);
    const srt = join(dir, 'probe.srt');
    writeFileSync(srt, '1\n00:00:00,000 --> 00:00:00,500\nhi | there\n');
    const mov = fixture(dir, 'probe-rotated.mov', (out) => ['-i', base, '-i', srt, '-map', '0', '-map', '1', '-c', 'copy', '-c:s', 'mov_text', '-metadata:s:v', 'rotate=90', out]);
    const info = await probeVideo(mov, resolveBinaries());
    const streams = (ffprobeJson(mov, ['-show_streams']) as { streams: { codec_type: string; codec_name: string; index: number }[] }).streams;
    assert.equal(info.rotation, 270);
    assert.equal(info.codec, 'h264');
    assert.deepEqual(info.tracks, streams.filter((t) => t.codec_type !== 'video').map((t) => ({ index: t.index, type: t.codec_type, codec: t.codec_name })));
    assert.deepEqual(info.streams, { audio: 1, subtitle: 1, other: 0 });
    const times = frameTimes(mov);
    assert.equal(info.frameCount, times.length);
    info.frameTimes.forEach((t, i) => assert.ok(Math.abs(t - (times[i]! - times[0]!)) < 1e-6, `frame ${i}`));
  });

  it('lists the keyframes where decoding can start afresh, only where packet n is frame n', async () => {
    const bins = resolveBinaries();
    const src = ['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25:duration=2'];
    const ffv1 = await probeVideo(fixture(dir, 'probe-ffv1-gop12.mkv', (out) => [...src, '-c:v', 'ffv1', '-g', '12', out]), bins);
    assert.deepEqual([...ffv1.keyframes!], [0, 12, 24, 36, 48]);
    assert.equal(ffv1.intraOnly, false);
    const mjpeg = await probeVideo(fixture(dir, 'probe-mjpeg.mkv', (out) => [...src, '-c:v', 'mjpeg', out]), bins);
    assert.equal(mjpeg.keyframes!.length, 50);
    assert.equal(mjpeg.intraOnly, true);
    // H.264 with B-frames: packets are in decode order, and its keyframe flag also marks recovery points.
    const h264 = await probeVideo(fixture(dir, 'probe-h264-bframes.mp4', (out) => [...src, '-c:v', 'libx264', '-g', '12', '-bf', '2', out]), bins);
    assert.equal(h264.keyframes, undefined);
  });
});
