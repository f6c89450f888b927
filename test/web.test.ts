import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { analyze, encode, measureQuality, type Plan } from '../src/index.js';
import { buildEncodeArgs, muxerArgs } from '../src/encode/argv.js';
import { codecFor, encoderParams, X264, X265 } from '../src/encode/codec.js';
import { parseEncoderParams, resolveEncoderParams } from '../src/encode/encoder-params.js';
import { chunkEncoderParams } from '../src/distributed/chunk.js';
import { resolveBinaries } from '../src/media/binaries.js';
import { RoiError } from '../src/media/errors.js';
import { cli, ffprobeJson, fixture, SAMPLE, workDir } from './helpers.js';

const dir = workDir('web');
const bins = resolveBinaries();

// ---------------------------------------------------------------------------------------------
// Pure builders

describe('codec descriptions and expert parameters (pure)', () => {
  const base = { input: 'in.mp4', output: 'out.mp4', container: 'mp4' as const, crf: 23, preset: 'medium' as const, hasSubtitles: false };
  const after = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

  it('builds an x264 encode: libx264, AQ on, the expert parameters last, no hvc1 tag, moov first', () => {
    const args = buildEncodeArgs({ ...base, codec: 'libx264', x265Params: encoderParams(X264, { expert: { 'psy-rd': '1.0,0.15', keyint: '50' } }) });
    assert.equal(after(args, '-c:v'), 'libx264');
    assert.equal(after(args, '-x264-params'), 'aq-mode=1:psy-rd=1.0,0.15:keyint=50');
    assert.ok(!args.includes('-x265-params'));
    assert.ok(!args.includes('-tag:v'), 'H.264 keeps ffmpeg\'s avc1 tag');
    assert.equal(after(args, '-movflags'), '+faststart');
  });

  it('builds an x265 encode with zones, the expert parameters after the tool\'s own, and hvc1', () => {
    const args = buildEncodeArgs({ ...base, codec: 'libx265', x265Params: encoderParams(X265, { zones: '0,10,b=2', expert: { 'psy-rd': '2' } }) });
    assert.equal(after(args, '-x265-params'), 'log-level=warning:aq-mode=2:zones=0,10,b=2:psy-rd=2');
    assert.deepEqual(muxerArgs('mov', 'libx265').slice(4, 8), ['-tag:v', 'hvc1', '-movflags', '+faststart']);
    assert.ok(!muxerArgs('mkv', 'libx264').includes('-movflags'), 'Matroska has no moov');
  });

  it('gives x264 chunks a closed GOP and the worker\'s threads, and x265 chunks pools', () => {
    assert.deepEqual(chunkEncoderParams(undefined, 2, X264, { keyint: '50' }), { 'aq-mode': 1, 'open-gop': 0, threads: 2, keyint: '50' });
    assert.deepEqual(chunkEncoderParams('0,5,b=2', 1), { 'log-level': 'warning', 'aq-mode': 2, zones: '0,5,b=2', 'open-gop': 0, pools: 1, 'frame-threads': 1 });
  });

  it('parses key=value strings and objects, as given', () => {
    assert.deepEqual(parseEncoderParams(X265, 'psy-rd=2:deblock=-1,-1:no-sao=1'), { 'psy-rd': '2', deblock: '-1,-1', 'no-sao': '1' });
    assert.deepEqual(parseEncoderParams(X264, { keyint: 50, 'no-mbtree': true }), { keyint: '50', 'no-mbtree': '1' });
    assert.deepEqual(parseEncoderParams(X264, ''), {});
    assert.deepEqual(parseEncoderParams(X264, 'aq-mode=2'), { 'aq-mode': '2' }, 'another AQ mode keeps ROI');
  });

  const refusal = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      assert.ok(error instanceof RoiError, String(error));
      assert.equal(error.code, 'INVALID_OPTION');
      return error.message;
    }
    assert.fail('not refused');
  };

  it('refuses the keys the tool owns, each with its reason', () => {
    assert.equal(refusal(() => parseEncoderParams(X265, 'crf=20')), 'x265Params cannot set crf: roi-encoder sets the CRF: use crf (or a face target, which chooses it)');
    assert.match(refusal(() => parseEncoderParams(X264, 'bitrate=500')), /^x264Params cannot set bitrate: roi-encoder sets the rate$/);
    assert.match(refusal(() => parseEncoderParams(X265, { pass: 2 })), /cannot set pass: roi-encoder runs the passes itself/);
    assert.match(refusal(() => parseEncoderParams(X264, 'stats=/tmp/x')), /cannot set stats: roi-encoder keeps the pass statistics/);
    assert.match(refusal(() => parseEncoderParams(X265, 'zones=0,10,q=20')), /cannot set zones: roi-encoder writes zones from the plan/);
    assert.match(refusal(() => parseEncoderParams(X265, 'QP=20')), /cannot set qp: a constant QP replaces rate control/);
    // VBV is the expert's unless the rate options set it.
    assert.deepEqual(parseEncoderParams(X265, 'vbv-maxrate=2000:vbv-bufsize=4000'), { 'vbv-maxrate': '2000', 'vbv-bufsize': '4000' });
    assert.match(refusal(() => parseEncoderParams(X265, 'vbv_maxrate=2000', { vbvOwned: true })), /cannot set vbv-maxrate: the rate options \(maxrate, bufsize\) set VBV/);
  });

  it('refuses what silently drops the ROI: aq-mode=0 (any spelling) and x265\'s hevc-aq', () => {
    assert.match(refusal(() => parseEncoderParams(X264, 'aq-mode=0')), /^x264Params cannot set aq-mode=0: aq-mode=0 turns adaptive quantisation off, and ffmpeg's libx264 then drops every ROI offset/);
    assert.match(refusal(() => parseEncoderParams(X265, 'aq_mode=0')), /libx265 then drops every ROI offset/);
    assert.match(refusal(() => parseEncoderParams(X265, 'no-aq-mode=1')), /cannot set no-aq-mode/);
    assert.match(refusal(() => parseEncoderParams(X265, 'hevc-aq=1')), /^x265Params cannot set hevc-aq=1: hevc-aq replaces the adaptive quantisation the ROI offsets are added to/);
    assert.deepEqual(parseEncoderParams(X265, 'no-hevc-aq=1'), { 'no-hevc-aq': '1' }, 'switching hevc-aq off is harmless');
  });

  it('refuses malformed lists and the other codec\'s parameters sharp-style', () => {
    assert.equal(refusal(() => parseEncoderParams(X265, 'psy-rd')), "Expected key=value pairs separated by ':' (e.g. 'psy-rd=2:deblock=-1,-1') for x265Params but received 'psy-rd'");
    assert.match(refusal(() => parseEncoderParams(X265, 42)), /^Expected a string of key=value pairs or an object for x265Params but received 42$/);
    assert.match(refusal(() => parseEncoderParams(X264, { keyint: [1] })), /^Expected an object of string, number or boolean values for x264Params/);
    assert.equal(refusal(() => resolveEncoderParams(X265, { x264Params: 'keyint=50' })), 'x264Params is for codec x264, but this encode is x265: use x265Params');
    assert.equal(codecFor('x264').paramsFlag, '--x264-params');
  });
});

// ---------------------------------------------------------------------------------------------
// Real encodes

/** Two seconds (52 frames) of the talking head. */
const short = fixture(dir, 'short.mp4', (out) => ['-i', SAMPLE, '-t', '2', '-c', 'copy', out]);

interface Stream { codec_type: string; codec_name: string; profile?: string; codec_tag_string: string; width: number; height: number; pix_fmt: string }
const videoOf = (file: string) => (ffprobeJson(file, ['-show_streams']) as { streams: Stream[] }).streams.find((s) => s.codec_type === 'video')!;

/** Top-level MP4/MOV boxes in file order. */
function topBoxes(file: string): string[] {
  const data = readFileSync(file);
  const boxes: string[] = [];
  for (let at = 0; at + 8 <= data.length;) {
    let size = data.readUInt32BE(at);
    const type = data.toString('latin1', at + 4, at + 8);
    if (size === 1) size = Number(data.readBigUInt64BE(at + 8));
    else if (size === 0) size = data.length - at;
    assert.ok(size >= 8, `${file}: box ${type} of ${size} bytes at ${at}`);
    boxes.push(type);
    at += size;
  }
  return boxes;
}

/** The settings string x264 writes into its SEI ("… keyint=50 …"). */
function x264Settings(file: string): string {
  const text = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:v', '-c', 'copy', '-frames:v', '1', '-f', 'h264', '-'], { maxBuffer: 1 << 26 }).toString('latin1');
  return /x264 - core[^\0]*/.exec(text)?.[0] ?? '';
}

describe('ROI in H.264 (libx264)', () => {
  let plan: Plan;
  before(async () => {
    plan = await analyze(short);
  });

  it('makes an H.264 High MP4 whose faces beat a uniform x264 encode at the same CRF, paid for by the background', async () => {
    const roi = await encode(short, join(dir, 'roi.mp4'), { plan, codec: 'x264', crf: 26 });
    const flat = await encode(short, join(dir, 'flat.mp4'), { roi: 'none', codec: 'x264', crf: 26 });
    assert.equal(roi.codec, 'x264');
    const v = videoOf(roi.output);
    assert.deepEqual([v.codec_name, v.profile, v.codec_tag_string, v.pix_fmt], ['h264', 'High', 'avc1', 'yuv420p']);
    const [qRoi, qFlat] = [await measureQuality(short, roi.output, plan, bins), await measureQuality(short, flat.output, plan, bins)];
    assert.ok(qRoi.facePsnr > qFlat.facePsnr + 0.5, `face PSNR ${qRoi.facePsnr.toFixed(2)} vs uniform ${qFlat.facePsnr.toFixed(2)} dB`);
    assert.ok(qRoi.backgroundPsnr < qFlat.backgroundPsnr, `background ${qRoi.backgroundPsnr.toFixed(2)} vs uniform ${qFlat.backgroundPsnr.toFixed(2)} dB`);
  });

  it('gives x264\'s AQ back under ultrafast, so the offsets still apply', async () => {
    const roi = await encode(short, join(dir, 'roi-ultrafast.mp4'), { plan, codec: 'x264', crf: 26, preset: 'ultrafast' });
    assert.match(x264Settings(roi.output), / aq=1:/);
    const flat = await encode(short, join(dir, 'flat-ultrafast.mp4'), { roi: 'none', codec: 'x264', crf: 26, preset: 'ultrafast' });
    const [qRoi, qFlat] = [await measureQuality(short, roi.output, plan, bins), await measureQuality(short, flat.output, plan, bins)];
    assert.ok(qRoi.facePsnr > qFlat.facePsnr + 0.5, `face PSNR ${qRoi.facePsnr.toFixed(2)} vs uniform ${qFlat.facePsnr.toFixed(2)} dB`);
  });

  it('passes --x264-params to x264 and says so in --json and the summary line; MP4 and MOV put moov before mdat', () => {
    const out = join(dir, 'cli.mp4');
    const r = cli([short, '-o', out, '--codec', 'x264', '--x264-params', 'keyint=50:bframes=2', '--preset', 'veryfast', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const done = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    assert.equal(done.type, 'done');
    assert.equal(done.codec, 'x264');
    assert.deepEqual(done.encoderParams, { keyint: '50', bframes: '2' });
    const settings = x264Settings(out);
    assert.match(settings, / keyint=50 /);
    assert.match(settings, / bframes=2 /);
    const mov = join(dir, 'cli.mov');
    const text = cli([short, '-o', mov, '--codec', 'x264', '--x264-params', 'keyint=50', '--preset', 'veryfast']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stderr, /, x264 \(keyint=50\), roi faces,/);
    for (const file of [out, mov]) {
      const boxes = topBoxes(file);
      assert.ok(boxes.includes('moov') && boxes.includes('mdat'), `${file}: ${boxes.join(' ')}`);
      assert.ok(boxes.indexOf('moov') < boxes.indexOf('mdat'), `${file}: ${boxes.join(' ')}`);
    }
  });

  it('refuses bad codecs and parameters with one line, exit 1, and nothing written', () => {
    const cases: [string[], RegExp][] = [
      [['--codec', 'vp9'], /^roi-encode: Expected one of x265, x264 for --codec but received 'vp9'$/],
      [['--codec', 'x264', '--x264-params', 'crf=18'], /^roi-encode: --x264-params cannot set crf: roi-encoder sets the CRF: use --crf \(or a face target, which chooses it\)$/],
      [['--codec', 'x264', '--x264-params', 'aq-mode=0'], /^roi-encode: --x264-params cannot set aq-mode=0: aq-mode=0 turns adaptive quantisation off/],
      [['--x265-params', 'hevc-aq=1'], /^roi-encode: --x265-params cannot set hevc-aq=1: hevc-aq replaces/],
      [['--x265-params', 'pass=1'], /^roi-encode: --x265-params cannot set pass: roi-encoder runs the passes itself$/],
      [['--codec', 'x264', '--x265-params', 'psy-rd=2'], /^roi-encode: --x265-params is for codec x265, but this encode is x264: use --x264-params$/],
      [['--x265-params', 'psy-rd'], /^roi-encode: Expected key=value pairs separated by ':' \(e\.g\. 'psy-rd=2:deblock=-1,-1'\) for --x265-params but received 'psy-rd'$/],
    ];
    const out = join(dir, 'refused.mp4');
    for (const [args, message] of cases) {
      const r = cli([short, '-o', out, ...args]);
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr.trim(), message);
      assert.equal(r.stdout, '');
      assert.ok(!existsSync(out), `${args.join(' ')} wrote ${out}`);
    }
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.partial')), []);
  });
});

describe('H.264 output plays in Chromium', { timeout: 120_000 }, () => {
  let browser: Browser;
  let server: Server;
  let base: string;
  const file = join(dir, 'web.mp4');

  before(async () => {
    await encode(short, file, { codec: 'x264', preset: 'veryfast' });
    // Served over HTTP as a web page would be (a file: URL would not show what faststart is for).
    server = createServer((req, res) => {
      if (req.url === '/') {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><video id="v" muted playsinline src="/web.mp4"></video>');
      } else if (req.url === '/web.mp4') {
        res.writeHead(200, { 'content-type': 'video/mp4' }).end(readFileSync(file));
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-default-apps', '--no-first-run', '--autoplay-policy=no-user-gesture-required'] });
  });
  after(async () => {
    await browser?.close();
    server?.close();
  });

  it('loads the --codec x264 output in a <video>, plays it, and frames advance at the encoded size', async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    // A string, not a function: tsx would wrap a function's inner functions in a helper the page lacks.
    const state = (await page.evaluate(`(async () => {
      const v = document.getElementById('v');
      const error = () => (v.error ? 'media error ' + v.error.code + ': ' + v.error.message : undefined);
      await new Promise((resolve, reject) => {
        if (v.readyState >= 1) resolve();
        if (v.error) reject(new Error(error()));
        v.addEventListener('loadedmetadata', () => resolve(), { once: true });
        v.addEventListener('error', () => reject(new Error(error())), { once: true });
        setTimeout(() => reject(new Error('no metadata after 10 s (' + (error() ?? 'no media error') + ')')), 10000);
      });
      await v.play();
      const start = v.currentTime;
      const frames = [];
      // requestVideoFrameCallback fires once per frame the browser presents.
      await new Promise((resolve) => {
        const onFrame = (now, meta) => {
          frames.push(meta.mediaTime);
          if (frames.length >= 10) resolve();
          else v.requestVideoFrameCallback(onFrame);
        };
        v.requestVideoFrameCallback(onFrame);
        setTimeout(resolve, 5000);
      });
      return { width: v.videoWidth, height: v.videoHeight, start, now: v.currentTime, frames, error: error() };
    })()`)) as { width: number; height: number; start: number; now: number; frames: number[]; error?: string };
    await page.close();
    assert.equal(state.error, undefined);
    assert.deepEqual([state.width, state.height], [400, 300]);
    assert.ok(state.frames.length >= 10, `${state.frames.length} frames presented`);
    assert.ok(state.frames.every((t, i) => i === 0 || t > state.frames[i - 1]!), `frame times ${state.frames.join(', ')}`);
    assert.ok(state.now > state.start + 0.2, `currentTime ${state.start} → ${state.now}`);
  });
});
