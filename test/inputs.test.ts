import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ANALYZE_DEFAULTS, compare, COMPARE_DEFAULTS, encode, ENCODE_DEFAULTS } from '../src/index.js';
import { CLI, cli, fixture, ROOT, SAMPLE, workDir } from './helpers.js';

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
