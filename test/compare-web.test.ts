import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { compare, reportSchema, type Report } from '../src/index.js';
import { RoiError } from '../src/media/errors.js';
import { parseBitrates } from '../src/runners/compare.js';
import { sameSizeSentence } from '../src/report/words.js';
import { seriesColours } from '../src/report/html.js';
import { cli, ffprobeJson, fixture, SAMPLE, watchPage, workDir } from './helpers.js';

// compare at bitrates (two-pass, ROI and uniform at the same size), in H.264 with an HEVC baseline,
// and the report page playing the matched H.264 pair in real Chromium.
const dir = workDir('compare-web');

describe('compare at bitrates and in H.264: options (pure)', () => {
  it('parses bitrates as the encode does (k = 1000), sorted, each once, at least two', () => {
    assert.deepEqual(parseBitrates('300k, 150k,1.2M,150000'), [150_000, 300_000, 1_200_000]);
    assert.deepEqual(parseBitrates([64_000, '128k']), [64_000, 128_000]);
    assert.throws(() => parseBitrates('150k'), /^RoiError: Expected at least two different bitrates .* for bitrates but received '150k'$/);
    assert.throws(() => parseBitrates('150k,abc'), /^RoiError: Expected bit rate 1k–10G .* for bitrates but received 'abc'$/);
  });

  it('refuses CRFs with bitrates, a baseline in the codec itself, and an unknown codec, before any work', async () => {
    const out = join(dir, 'never');
    const refused = async (options: Parameters<typeof compare>[2], pattern: RegExp) => {
      await assert.rejects(compare(SAMPLE, out, options), (e: unknown) => e instanceof RoiError && pattern.test(e.message));
    };
    await refused({ crfs: [22, 26], bitrates: '100k,200k' }, /^Expected crfs or bitrates, not both \(the rate points are CRFs or bitrates\): drop one$/);
    await refused({ codec: 'x264', baseline: 'x264' }, /^baseline x264 is what the uniform encodes already are with codec x264: drop it, or give the other encoder$/);
    await refused({ codec: 'vp9' }, /^Expected one of x265, x264 for codec but received 'vp9'$/);
    assert.ok(!existsSync(out));
  });

  it('colours each mode apart, uniform grey whichever encoder it is in', () => {
    const point = (mode: 'uniform' | 'roi' | 'x264' | 'x265') => ({ mode }) as Report['points'][number];
    const hevc = { points: [point('uniform'), point('roi')], settings: { codec: 'x265' } } as Pick<Report, 'points' | 'settings'>;
    assert.deepEqual(seriesColours(hevc), { 'uniform HEVC': '#7f7f7f', 'ROI HEVC': '#d62728' });
    const web = { points: [point('uniform'), point('roi'), point('x265')], settings: { codec: 'x264' } } as Pick<Report, 'points' | 'settings'>;
    assert.deepEqual(seriesColours(web), { 'uniform H.264': '#7f7f7f', 'ROI H.264': '#d62728', 'uniform HEVC': '#2ca02c' });
  });

  it('says the same-size differences in a viewer\'s words: the mean, and the range across sizes', () => {
    const pair = (facePsnr: number, backgroundPsnr: number, bitrateRatio: number) => ({ uniform: 'u', roi: 'r', bitrateRatio, facePsnr, faceSsim: 0.01, backgroundPsnr, psnr: -0.1 });
    assert.equal(
      sameSizeSentence([pair(1, -0.5, 0.98), pair(2, -0.7, 0.99)], true, false),
      'At the same file size: faces +1.50 dB PSNR and +0.0100 SSIM, the rest of the frame \u22120.60 dB PSNR (mean of 2 sizes, ROI spending 98.0–99.0% of uniform\'s bits; faces +1.00 to +2.00 dB)',
    );
    assert.equal(sameSizeSentence([pair(1.2, -0.4, 0.975)], true), 'At the same file size: <strong>faces +1.20 dB PSNR</strong> and +0.0100 SSIM, the rest of the frame \u22120.40 dB PSNR (ROI spending 97.5% of uniform&#39;s bits)');
    // Without faces only the rest of the frame is claimed.
    assert.equal(sameSizeSentence([pair(1, -0.5, 1)], false, false), 'At the same file size: the rest of the frame \u22120.50 dB PSNR (ROI spending 100.0% of uniform\'s bits)');
  });
});

describe('compare --codec x264 --bitrates 30k,60k --baseline x265 (CLI, real encodes)', () => {
  const short = fixture(dir, 'short.mp4', (out) => ['-i', SAMPLE, '-t', '2', '-c:v', 'copy', '-an', out]);
  const out = join(dir, 'report');
  let report: Report;
  let summary: string;
  let browser: Browser;

  before(async () => {
    const r = cli(['compare', short, '-o', out, '--codec', 'x264', '--bitrates', '30k,60k', '--baseline', 'x265', '--x264-params', 'keyint=50']);
    assert.equal(r.code, 0, r.stderr);
    summary = r.stdout;
    report = reportSchema.parse(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--autoplay-policy=no-user-gesture-required'] });
  });
  after(async () => browser?.close());

  it('encodes every mode two-pass at each bitrate: ROI and uniform in H.264, the baseline in HEVC', () => {
    assert.equal(report.settings.codec, 'x264');
    assert.deepEqual(report.settings.bitratesKbps, [30, 60]);
    assert.deepEqual(report.settings.crfs, []);
    assert.equal(report.settings.baseline, 'x265');
    assert.deepEqual(report.points.map((p) => `${p.mode}:${p.codec}:${p.targetBitrateKbps}`).sort(), ['roi:h264:30', 'roi:h264:60', 'uniform:h264:30', 'uniform:h264:60', 'x265:hevc:30', 'x265:hevc:60']);
    for (const p of report.points) {
      assert.equal(p.crf, null, p.file);
      // What the file is, as probed on it: 8-bit SDR like the source.
      assert.deepEqual([p.picture?.bitDepth, p.picture?.dynamicRange, p.picture?.pixelFormat], [8, 'sdr', 'yuv420p'], p.file);
      if (p.codec === 'h264') {
        // x264's own record of its rate control: the second pass of a two-pass encode at the asked rate,
        // and the expert's keyint, which only the x264 encodes were given.
        assert.match(p.encoderOptions!, new RegExp(`\\brc=2pass\\b.*\\bbitrate=${p.targetBitrateKbps}\\b`), p.file);
        assert.match(p.encoderOptions!, / keyint=50 /, p.file);
        assert.deepEqual(p.encoderParams, { keyint: '50' }, p.file);
        assert.ok(Math.abs(p.bitrateKbps / p.targetBitrateKbps! - 1) < 0.15, `${p.file}: ${p.bitrateKbps} kbit/s for ${p.targetBitrateKbps}`);
      } else {
        assert.match(p.command!, /-c:v libx265 .*-x265-params \S*pass=2/, p.file);
        assert.deepEqual(p.encoderParams, {}, p.file);
      }
    }
    assert.match(report.tools.x264!, /^x264 core \d+/);
    assert.match(report.tools.x265!, /^x265 \d/);
  });

  it('pairs ROI and uniform at the same size, faces better and the rest of the frame worse, as measured', () => {
    assert.equal(report.sameSize.length, 2);
    for (const pair of report.sameSize) {
      const u = report.points.find((p) => p.file === pair.uniform)!;
      const r = report.points.find((p) => p.file === pair.roi)!;
      assert.equal(u.targetBitrateKbps, r.targetBitrateKbps);
      assert.ok(pair.bitrateRatio > 0.9 && pair.bitrateRatio < 1.1, `ratio ${pair.bitrateRatio}`);
      assert.ok(Math.abs(pair.bitrateRatio - r.videoBytes / u.videoBytes) < 1e-3);
      assert.ok(Math.abs(pair.facePsnr! - (r.facePsnr! - u.facePsnr!)) < 0.01);
      assert.ok(pair.facePsnr! > 0.5, `faces ${pair.facePsnr} dB at ${u.targetBitrateKbps}k`);
      assert.ok(pair.faceSsim! > 0, `face SSIM ${pair.faceSsim}`);
      assert.ok(pair.backgroundPsnr! < 0, `rest of the frame ${pair.backgroundPsnr} dB`);
    }
    assert.ok(report.bdRate.facePsnr! < -10, `face BD-rate ${report.bdRate.facePsnr}`);
    assert.ok(report.bdRateVsBaseline !== null);
    assert.match(summary, /^At the same file size: faces \+\d+\.\d\d dB PSNR .*the rest of the frame \u2212\d+\.\d\d dB PSNR \(mean of 2 sizes/m);
    assert.match(summary, /^BD-rate, ROI H\.264 against uniform HEVC: face PSNR/m);
  });

  it('the page plays the matched H.264 pair in Chromium: both videos advance at the source\'s size, offline', async () => {
    assert.equal(report.matched.video, 'embedded');
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const { errors, requests } = watchPage(page);
    await page.goto(`file://${join(out, 'index.html')}`);
    assert.equal(await page.$$eval('video', (v) => v.length), 2);
    // play() resolves once playback has started; then frames must keep coming.
    await page.$$eval('video', (vs) => Promise.all(vs.map((v) => (v as unknown as { play(): Promise<void> }).play())));
    await page.waitForTimeout(800);
    type Video = { videoWidth: number; videoHeight: number; currentTime: number; error: unknown; getVideoPlaybackQuality(): { totalVideoFrames: number } };
    const state = await page.$$eval('video', (vs) => vs.map((el) => {
      const v = el as unknown as Video;
      return { w: v.videoWidth, h: v.videoHeight, t: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames, error: v.error !== null };
    }));
    for (const v of state) {
      assert.deepEqual([v.w, v.h, v.error], [report.input.width, report.input.height, false], JSON.stringify(v));
      assert.ok(v.t > 0.3 && v.frames >= 5, `playback did not advance: ${JSON.stringify(v)}`);
    }
    const text = await page.textContent('body');
    assert.match(text ?? '', /At the same file size: faces \+\d+\.\d\d dB PSNR/);
    assert.match(text ?? '', /uniform H\.264, 30 kbit\/s asked/);
    assert.match(text ?? '', /x264 \(keyint=50\) preset medium, two-pass at 30, 60 kbit\/s, baseline x265/);
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, []);
  });

  it('refuses bad combinations in one line, writing nothing', () => {
    const target = join(dir, 'refused');
    for (const [args, message] of [
      [['--crf', '22,26', '--bitrates', '30k,60k'], /^roi-encode: Expected --crf or --bitrates, not both/],
      [['--codec', 'x264', '--baseline', 'x264'], /^roi-encode: --baseline x264 is what the uniform encodes already are with codec x264/],
      [['--bitrates', '30k'], /^roi-encode: Expected at least two different bitrates .* for --bitrates but received '30k'$/],
      [['--codec', 'x264', '--x265-params', 'psy-rd=2'], /^roi-encode: --x265-params is for x265, but this comparison encodes with x264 only: use --x264-params instead, or use --baseline x265$/],
      [['--x265-params', 'crf=20'], /^roi-encode: --x265-params cannot set crf: roi-encoder sets the CRF/],
    ] as const) {
      const r = cli(['compare', short, '-o', target, ...args]);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr.trim(), message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.ok(!existsSync(target));
    }
  });
});

describe('compare --height 150 (CLI, real encodes): every encode scaled, measured against the source scaled the same way', () => {
  const short = fixture(dir, 'short.mp4', (out) => ['-i', SAMPLE, '-t', '2', '-c:v', 'copy', '-an', out]);
  const out = join(dir, 'report-scaled');
  let report: Report;

  before(() => {
    const r = cli(['compare', short, '-o', out, '--crf', '26,34', '--height', '150']);
    assert.equal(r.code, 0, r.stderr);
    report = reportSchema.parse(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));
  });

  it('encodes at 200x150 and says so; faces better and the background worse at each CRF', () => {
    assert.deepEqual(report.settings.output, { width: 200, height: 150 });
    assert.deepEqual([report.input.width, report.input.height], [400, 300]);
    for (const p of report.points) {
      const { streams } = ffprobeJson(join(out, p.file), ['-show_streams', '-select_streams', 'v']) as { streams: { width: number; height: number }[] };
      assert.deepEqual([streams[0]!.width, streams[0]!.height], [200, 150], p.file);
    }
    for (const crf of report.settings.crfs) {
      const u = report.points.find((p) => p.mode === 'uniform' && p.crf === crf)!;
      const r = report.points.find((p) => p.mode === 'roi' && p.crf === crf)!;
      assert.ok(r.facePsnr! > u.facePsnr!, `crf ${crf}: face ${r.facePsnr} vs ${u.facePsnr}`);
      assert.ok(r.backgroundPsnr! < u.backgroundPsnr!, `crf ${crf}: background ${r.backgroundPsnr} vs ${u.backgroundPsnr}`);
    }
    assert.match(readFileSync(join(out, 'index.html'), 'utf8'), /400×300 encoded at 200×150 \(measured against the source scaled to it\)/);
  });

  it('full PSNR agrees with ffmpeg\'s psnr filter against the source scaled with lanczos', () => {
    const p = report.points.find((x) => x.mode === 'roi' && x.crf === 34)!;
    const { stderr } = spawnSync('ffmpeg', ['-hide_banner', '-nostats', '-i', join(out, p.file), '-i', short, '-lavfi', '[1:v]scale=200:150:flags=lanczos[ref];[0:v][ref]psnr', '-f', 'null', '-'], { encoding: 'utf8' });
    const average = Number(/average:([\d.]+)/.exec(stderr)![1]);
    assert.ok(Math.abs(average - p.psnr!) < 0.02, `report ${p.psnr} vs ffmpeg ${average}`);
  });
});
