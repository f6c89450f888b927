import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { encode, probeVideo } from '../src/index.js';
import { parseRate, parseSize, ratePass, resolveRateControl } from '../src/encode/rate-control.js';
import { applyAudioChoice, encodedAudioBytes, parseAudio } from '../src/encode/audio.js';
import { buildEncodeArgs, trackCodecArgs } from '../src/encode/argv.js';
import { correctedBitrate, inSizeWindow, sizeBudget } from '../src/encode/target-size.js';
import { passComplexity, shareBitrate } from '../src/encode/pass-stats.js';
import { cliMessage } from '../src/cli/options.js';
import { RoiError } from '../src/media/errors.js';
import { resolveBinaries } from '../src/media/binaries.js';
import { cli, fixture, frameTimes, offsetClipArgs, ROOT, SAMPLE, workDir } from './helpers.js';
import { vbvLowest } from './vbv.js';

const dir = workDir('rate-control');
const bins = resolveBinaries();
// fast keeps AQ on (ROI offsets need it) at a third of medium's time on two shared cores.
const PRESET = 'fast';

/** 4 s of the talking head with a 64 kbit/s AAC track: copied audio the size budget must count. */
const withAudio = () =>
  fixture(dir, 'head-audio.mp4', (out) => [
    '-i', SAMPLE, '-f', 'lavfi', '-i', 'sine=frequency=440:duration=4', '-t', '4',
    '-map', '0:v', '-map', '1:a', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '18', '-c:a', 'aac', '-b:a', '64k', out,
  ]);
/** The same 4 s of video alone. */
const videoOnly = () => fixture(dir, 'head-4s.mp4', (out) => ['-i', SAMPLE, '-t', '4', '-an', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '18', out]);

const audioBytes = (file: string) =>
  execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'a:0', '-show_entries', 'packet=size', '-of', 'csv=p=0', file], { encoding: 'utf8' })
    // A packet with side data (AAC's priming packet: skip samples) prints "164," and a line of its own.
    .split('\n').map((line) => Number(line.split(',')[0])).filter((size) => size > 0).reduce((sum, size) => sum + size, 0);

describe('rate control: parsing and conflicts', () => {
  it('reads rates (k = 1000) and sizes (kB/MB powers of 1000, KiB/MiB of 1024)', () => {
    assert.equal(parseRate('bitrate', '1500k'), 1_500_000);
    assert.equal(parseRate('bitrate', '1.5M'), 1_500_000);
    assert.equal(parseRate('bitrate', '1500000'), 1_500_000);
    assert.equal(parseRate('bitrate', 800_000), 800_000);
    assert.equal(parseSize('targetSize', '8MB'), 8_000_000);
    assert.equal(parseSize('targetSize', '750kB'), 750_000);
    assert.equal(parseSize('targetSize', '750KB'), 750_000);
    assert.equal(parseSize('targetSize', '500MiB'), 500 * 1024 * 1024);
    assert.equal(parseSize('targetSize', '1.5GiB'), 1.5 * 1024 ** 3);
    assert.equal(parseSize('targetSize', '64KiB'), 65_536);
    assert.equal(parseSize('targetSize', 1_000_000), 1_000_000);
    assert.throws(() => parseRate('bitrate', 'abc'), /^RoiError: Expected bit rate .* for bitrate but received 'abc'$/);
    assert.throws(() => parseRate('bitrate', '0'), /for bitrate but received '0'$/);
    for (const bad of ['0', '8', '0MB', '-1MB', '8 mb', 'MB']) assert.throws(() => parseSize('targetSize', bad), /^RoiError: Expected file size with a unit .* for targetSize but received/, bad);
  });

  it('refuses conflicting combinations, naming what to drop', () => {
    const refused = (options: Parameters<typeof resolveRateControl>[0], message: RegExp) => assert.throws(() => resolveRateControl(options, 28), message);
    refused({ crf: 20, bitrate: '1M' }, /^RoiError: Expected crf or bitrate, not both .*: drop one$/);
    refused({ crf: 20, targetSize: '8MB' }, /Expected crf or targetSize, not both/);
    refused({ targetSize: '8MB', bitrate: '1M' }, /Expected bitrate or targetSize, not both/);
    refused({ matchCrf: 26, bitrate: '1M' }, /Expected bitrate or matchCrf, not both/);
    refused({ targetFacePsnr: 40, targetSize: '1MB' }, /Expected targetSize or targetFacePsnr, not both/);
    refused({ maxrate: '1M' }, /^RoiError: Expected bufsize with maxrate .*: add bufsize or drop maxrate$/);
    refused({ bufsize: '1M' }, /Expected maxrate with bufsize/);
    refused({ bitrate: '2M', maxrate: '1M', bufsize: '2M' }, /for bitrate but received '2M'$/);
    assert.deepEqual(resolveRateControl({}, 28), { mode: 'crf', crf: 28 });
    assert.deepEqual(resolveRateControl({ crf: 22, maxrate: '4M', bufsize: '8M' }, 28), { mode: 'crf', crf: 22, vbv: { maxrate: 4e6, bufsize: 8e6 } });
    assert.deepEqual(resolveRateControl({ targetSize: '8MB' }, 28), { mode: 'size', targetBytes: 8e6 });
  });

  it('says the CLI flags in CLI messages, leaving paths alone', () => {
    const e = new RoiError('INVALID_OPTION', 'Expected crf or bitrate, not both (why): drop one', { option: 'crf' });
    assert.equal(cliMessage(e), 'Expected --crf or --bitrate, not both (why): drop one');
    const p = new RoiError('SIZE_TOO_SMALL', 'target size 1 kB is too small for /tmp/crf-bitrate/in.mp4: give at least 9 kB', { option: 'targetSize' });
    assert.equal(cliMessage(p), p.message);
  });

  it('both passes get the same argv but for the pass and the output; the first writes only stats', () => {
    const base = { input: 'in.mp4', output: 'out.mp4', container: 'mp4' as const, filterScript: '/s/roi.filter', crf: 28, preset: 'fast' as const, x265Params: { zones: '0,10,q=30' }, hasSubtitles: false, tracks: [{ index: 1, type: 'audio' as const, codec: 'aac', action: 'copy' as const }], encTimeBase: '1/12800' };
    const vbv = { maxrate: 1_000_000, bufsize: 2_000_000 };
    const one = buildEncodeArgs({ ...base, rate: ratePass({ bitrate: 600_000, vbv }, { number: 1, stats: '/s/x265-2pass.log' }) });
    const two = buildEncodeArgs({ ...base, rate: ratePass({ bitrate: 600_000, vbv }, { number: 2, stats: '/s/x265-2pass.log' }) });
    assert.deepEqual(one.slice(-3), ['-f', 'null', '-']);
    for (const args of [one, two]) {
      assert.ok(args.includes('-filter_complex_script') && args.join(' ').includes('-fps_mode passthrough'), args.join(' '));
      assert.equal(args[args.indexOf('-b:v') + 1], '600000');
      assert.ok(!args.includes('-crf'));
    }
    assert.equal(one[one.indexOf('-x265-params') + 1], 'zones=0,10,q=30:vbv-maxrate=1000:vbv-bufsize=2000:pass=1:stats=/s/x265-2pass.log');
    assert.equal(two[two.indexOf('-x265-params') + 1], 'zones=0,10,q=30:vbv-maxrate=1000:vbv-bufsize=2000:pass=2:stats=/s/x265-2pass.log');
    // Everything up to the video codec's options is the same: the same frames, offsets and timestamps.
    const upTo = (args: string[]) => args.slice(0, args.indexOf('-c:v')).filter((a) => a !== '-map' && a !== '0:1');
    assert.deepEqual(upTo(one), upTo(two));
    assert.ok(!one.includes('0:1') && two.includes('0:1'), 'the first pass maps no audio');
  });

  it('reads --audio and plans every audio track encoded at its rate (subtitles as they were)', () => {
    assert.deepEqual(parseAudio(undefined), { codec: 'copy' });
    assert.deepEqual(parseAudio('aac:128k'), { codec: 'aac', bitrate: 128_000 });
    assert.deepEqual(parseAudio('opus:96000'), { codec: 'opus', bitrate: 96_000 });
    for (const bad of ['mp3', 'aac', 'aac:', 'aac:abc', 'opus:1k', 'aac:2M']) assert.throws(() => parseAudio(bad), /^RoiError: Expected .* for audio but received/, bad);
    const tracks = [{ index: 1, type: 'audio' as const, codec: 'ac3', action: 'copy' as const }, { index: 2, type: 'subtitle' as const, codec: 'subrip', action: 'mov_text' as const }];
    const planned = applyAudioChoice(tracks, { codec: 'opus', bitrate: 64_000 }, 'mp4', 'out.mp4');
    assert.deepEqual(trackCodecArgs(planned), ['-c:1', 'libopus', '-b:1', '64000', '-c:2', 'mov_text']);
    assert.throws(() => applyAudioChoice(tracks, { codec: 'opus', bitrate: 64_000 }, 'mov', 'out.mov'), /MOV \(out\.mov\) cannot hold Opus audio/);
  });

  it('shares a size out: the audio counted, the container estimated, the window kept', async () => {
    const info = await probeVideo(withAudio(), bins);
    const carried = { bytes: 32_000, packets: 188, what: 'the audio' };
    const b = sizeBudget(200_000, info, 'mp4', carried);
    assert.equal(b.carriedBytes, 32_000);
    assert.ok(b.overheadBytes > 3000 && b.overheadBytes < 10_000, `overhead ${b.overheadBytes}`);
    assert.ok(Math.abs(b.videoBytes + b.carriedBytes + b.overheadBytes - 200_000 * 0.985) < 1);
    assert.throws(() => sizeBudget(30_000, info, 'mp4', carried), /^RoiError: target size 30 kB is too small for .*: the audio alone is 32 kB; give at least \d+(\.\d+)? kB$/);
    assert.throws(() => sizeBudget(40_000, info, 'mp4', carried), /too small .*: the audio takes 32 kB and the MP4 container about .* kB, leaving .* for 400x300 video of 4\.0 s; the least that is watchable needs about/);
    assert.ok(inSizeWindow(200_000, 200_000) && inSizeWindow(194_000, 200_000));
    assert.ok(!inSizeWindow(200_001, 200_000) && !inSizeWindow(193_999, 200_000));
    // 10% too big with 40 kB of audio and container: the video's share shrinks by its own miss.
    assert.equal(correctedBitrate({ bitrate: 300_000, fileBytes: 220_000, videoBytes: 180_000 }, 200_000), Math.floor((300_000 * (200_000 * 0.985 - 40_000)) / 180_000 / 1000) * 1000);
    // A second correction follows the line through both passes: 150 kB of video wanted, 157 000 at
    // 300k and 130 000 at 250k → 150 000 at 287 037 bit/s (proportional scaling would say 286 624).
    assert.equal(correctedBitrate({ bitrate: 300_000, fileBytes: 197_000, videoBytes: 157_000 }, (150_000 + 40_000) / 0.985, { bitrate: 250_000, videoBytes: 130_000 }), 287_000);
    // A line that falls (noise) is not followed: back to scaling the last pass.
    assert.equal(correctedBitrate({ bitrate: 300_000, fileBytes: 220_000, videoBytes: 180_000 }, 200_000, { bitrate: 250_000, videoBytes: 190_000 }), correctedBitrate({ bitrate: 300_000, fileBytes: 220_000, videoBytes: 180_000 }, 200_000));
  });
});

describe('sharing one budget between chunks by their first passes (real x265 and x264 statistics)', () => {
  // 2 s still, 2 s of moving noise: the first pass spends its bits on the second half.
  const still = () => fixture(dir, 'still-2s.mp4', (out) => ['-i', SAMPLE, '-t', '2', '-an', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '16', out]);
  const noisy = () => fixture(dir, 'noisy-2s.mp4', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=400x300:rate=25:duration=2,noise=alls=25:allf=t', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '16', out]);
  const firstPass = (input: string, encoder: 'libx265' | 'libx264'): string => {
    const stats = join(mkdtempSync(join(dir, 'stats-')), '2pass.log');
    const params = encoder === 'libx265' ? ['-x265-params', `pass=1:stats=${stats}:log-level=error`] : ['-x264-params', `pass=1:stats=${stats}`];
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', input, '-c:v', encoder, '-preset', 'medium', '-b:v', '200k', ...params, '-f', 'null', '-']);
    return readFileSync(stats, 'utf8');
  };

  for (const encoder of ['libx265', 'libx264'] as const) {
    it(`${encoder}: reads every frame, and the noisy chunk is many times as complex as the still one`, () => {
      const [a, b] = [passComplexity(firstPass(still(), encoder)), passComplexity(firstPass(noisy(), encoder))];
      assert.deepEqual([a.frames, b.frames], [50, 50]);
      assert.ok(a.complexity > 0 && b.complexity > 5 * a.complexity, `still ${a.complexity}, noisy ${b.complexity}`);
    });
  }

  it('shares a bitrate by complexity, the pieces together spending what the whole was given', () => {
    const rates = shareBitrate(300_000, [{ durationSeconds: 2, complexity: 1 }, { durationSeconds: 2, complexity: 3 }, { durationSeconds: 4, complexity: 4 }]);
    assert.deepEqual(rates, [150_000, 450_000, 300_000]);
    assert.equal(rates[0]! * 2 + rates[1]! * 2 + rates[2]! * 4, 300_000 * 8);
    // No usable complexity: the same rate for every piece; never under 1 kbit/s.
    assert.deepEqual(shareBitrate(300_000, [{ durationSeconds: 2, complexity: 0 }, { durationSeconds: 2, complexity: 0 }]), [300_000, 300_000]);
    assert.deepEqual(shareBitrate(2000, [{ durationSeconds: 2, complexity: 1e-6 }, { durationSeconds: 2, complexity: 1 }]), [1000, 4000]);
    assert.throws(() => passComplexity('#options: qcomp=0.60\n'), /hold no frames/);
  });
});

describe('rate control: real encodes', () => {
  it('--target-size with copied audio: inside the window (never above, at most 3% under), stats files gone, the done event says it', () => {
    const clip = withAudio();
    const scratch = mkdtempSync(join(dir, 'tmp-'));
    for (const size of ['160kB', '100KiB']) {
      const out = join(dir, `size-${size}.mp4`);
      const r = cli([clip, '-o', out, '--target-size', size, '--preset', PRESET, '--force', '--json'], { env: { TMPDIR: scratch } });
      assert.equal(r.code, 0, r.stderr);
      const done = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { type: string; bytes: number; targetBytes: number; videoBitrateKbps: number; passes: number; requestedBitrateKbps: number };
      const target = parseSize('targetSize', size);
      assert.equal(done.type, 'done');
      assert.equal(done.targetBytes, target);
      assert.equal(done.bytes, statSync(out).size);
      assert.ok(done.bytes <= target && done.bytes >= target * 0.97, `${done.bytes} B for ${target} B`);
      assert.ok(done.passes === 2 || done.passes === 3, `passes ${done.passes}`);
      assert.ok(done.videoBitrateKbps > 100 && done.videoBitrateKbps < done.requestedBitrateKbps * 1.15, JSON.stringify(done));
      assert.equal(audioBytes(out), audioBytes(clip), 'the audio is copied as it was');
    }
    // (tsx keeps its own cache there.)
    assert.deepEqual(readdirSync(scratch).filter((f) => !f.startsWith('tsx-')), [], 'the scratch folder (stats files) is gone');
    assert.ok(!readdirSync(ROOT).some((f) => f.startsWith('x265_2pass')), 'no x265 stats in the working directory');
    assert.ok(!readdirSync(dir).some((f) => f.includes('2pass') || f.includes('.partial')));
  });

  it('--audio aac:RATE with --target-size: the audio counted exactly (its bytes before the encode are its bytes in the file), the window kept; opus into Matroska', async () => {
    const clip = withAudio();
    const out = join(dir, 'size-aac.mp4');
    const r = cli([clip, '-o', out, '--target-size', '100kB', '--audio', 'aac:48k', '--preset', PRESET, '--force', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const done = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { bytes: number; passes: number };
    assert.ok(done.bytes <= 100_000 && done.bytes >= 97_000, `${done.bytes} B`);
    const [track] = (await probeVideo(clip, bins)).tracks;
    const counted = await encodedAudioBytes(clip, { ...track!, action: 'aac', bitrate: 48_000 }, bins);
    assert.equal(audioBytes(out), counted.bytes);
    assert.ok(counted.bytes < audioBytes(clip) * 0.85, 'the 64k source should shrink at 48k');
    const opus = await encode(clip, join(dir, 'opus.mkv'), { audio: 'opus:24k', crf: 30, preset: PRESET, force: true });
    const codecs = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', opus.output], { encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(codecs, ['hevc', 'opus']);
    // libopus is VBR and spends more on a pure tone than its nominal rate (33 kbit/s here), still far under the 64k AAC source.
    assert.ok(audioBytes(opus.output) < audioBytes(clip) * 0.6, `opus ${((audioBytes(opus.output) * 8) / 4000).toFixed(1)} kbit/s`);
  });

  it('--bitrate: two passes with the ROI offsets in both, the video at the rate asked (x265 and x264); faces beat a uniform two-pass encode of that rate', async () => {
    const clip = videoOnly();
    const roi = await encode(clip, join(dir, 'bitrate-roi.mp4'), { bitrate: '120k', preset: PRESET, force: true });
    const flat = await encode(clip, join(dir, 'bitrate-flat.mp4'), { bitrate: '120k', roi: 'none', preset: PRESET, force: true });
    for (const r of [roi, flat]) {
      assert.equal(r.passes, 2);
      assert.equal(r.crf, undefined);
      assert.ok(Math.abs(r.videoBitrateKbps - 120) < 12, `video ${r.videoBitrateKbps.toFixed(1)} kbit/s for 120`);
    }
    const h264 = await encode(clip, join(dir, 'bitrate-x264.mp4'), { bitrate: '120k', codec: 'x264', preset: PRESET, force: true });
    assert.equal(h264.passes, 2);
    assert.ok(Math.abs(h264.videoBitrateKbps - 120) < 12, `x264 video ${h264.videoBitrateKbps.toFixed(1)} kbit/s for 120`);
    const { measureQuality } = await import('../src/index.js');
    const [q, u] = [await measureQuality(clip, roi.output, roi.plan!, bins), await measureQuality(clip, flat.output, roi.plan!, bins)];
    assert.ok(q.facePsnr > u.facePsnr + 0.3, `faces ${q.facePsnr.toFixed(2)} vs uniform ${u.facePsnr.toFixed(2)} dB at the same rate`);
    assert.ok(q.backgroundPsnr < u.backgroundPsnr, 'the background pays for the faces');
  });

  it('--target-size far above what the content can use: stops after two passes and says why (the encoder at its finest quantiser), no wasted correction', async () => {
    const clip = videoOnly();
    const r = cli([clip, '-o', join(dir, 'size-ceiling.mp4'), '--target-size', '8MB', '--preset', PRESET, '--force']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /, 2 passes,/);
    assert.match(r.stderr, /^smaller than asked: the encoder reached its best quality at \d+ kbit\/s of video \(\d+ kbit\/s was offered\)/m);
    const bytes = statSync(join(dir, 'size-ceiling.mp4')).size;
    assert.ok(bytes < 8e6 / 3, `${bytes} B`);
    // The claim holds: the file is at least as large as CRF 0 (near-lossless) makes of the same clip.
    const crf0 = await encode(clip, join(dir, 'size-ceiling-crf0.mp4'), { crf: 0, preset: PRESET, force: true });
    assert.ok(bytes >= crf0.bytes, `${bytes} B against CRF 0's ${crf0.bytes} B`);
  });

  it('--target-size on a VFR clip whose video starts late, with AAC and FLAC (ALAC in MP4): no pass crashes, every frame keeps its time, the size holds', async () => {
    const clip = fixture(dir, 'offset.mkv', (out) => offsetClipArgs(3, out));
    const out = join(dir, 'offset-size.mp4');
    const r = await encode(clip, out, { targetSize: '150kB', preset: PRESET, force: true });
    assert.ok(r.bytes <= 150_000 && r.bytes >= 150_000 * 0.97, `${r.bytes} B (${r.passes} passes)`);
    assert.equal(r.sizeShortfall, undefined);
    assert.deepEqual(frameTimes(out), frameTimes(clip));
  });

  it('--maxrate/--bufsize: the decoder buffer never runs dry, capped CRF and bitrate alike (and without the cap it would)', async () => {
    const clip = videoOnly();
    // One second of buffer, as streaming tiers use; below that x265 3.5 itself overruns (docs/rate-control.md).
    const maxrate = 80_000;
    const bufsize = 80_000;
    const free = await encode(clip, join(dir, 'vbv-free.mp4'), { crf: 18, preset: PRESET, force: true });
    assert.ok(vbvLowest(free.output, maxrate, bufsize).lowest < 0, 'uncapped CRF 18 should overrun this buffer, or the test proves nothing');
    const capped = await encode(clip, join(dir, 'vbv-crf.mp4'), { crf: 18, maxrate, bufsize, preset: PRESET, force: true });
    const rated = await encode(clip, join(dir, 'vbv-bitrate.mp4'), { bitrate: '60k', maxrate: '80k', bufsize: '80k', preset: PRESET, force: true });
    for (const r of [capped, rated]) {
      const v = vbvLowest(r.output, maxrate, bufsize);
      assert.ok(v.lowest >= 0, `${r.output}: buffer down to ${(100 * v.lowest).toFixed(1)}%`);
      assert.equal(v.packets, free.frames);
    }
    assert.equal(capped.crf, 18);
    assert.equal(rated.passes, 2);
  });

  it('bad values and sizes: one line, exit 1, nothing written, before any work', () => {
    const audio = withAudio();
    const clip = videoOnly();
    const cases: [string, string, string[], RegExp][] = [
      ['--target-size 0', clip, ['--target-size', '0'], /^Expected file size with a unit .* for --target-size but received '0'$/],
      ['--bitrate abc', clip, ['--bitrate', 'abc'], /^Expected bit rate .* for --bitrate but received 'abc'$/],
      ['a size the audio fills', audio, ['--target-size', '30kB'], /^target size 30 kB is too small for .*: the audio alone is 3\d(\.\d)? kB; give at least 4\d(\.\d)? kB$/],
      ['a size too small to watch', clip, ['--target-size', '5kB'], /^target size 5 kB is too small .*the least that is watchable needs about/],
      ['a size the encoded audio fills', audio, ['--target-size', '50kB', '--audio', 'aac:256k'], /^target size 50 kB is too small for .*: the audio alone is \d+(\.\d)? kB; give at least/],
      ['--audio mp3', clip, ['--audio', 'mp3'], /^Expected copy, aac:RATE or opus:RATE .* for --audio but received 'mp3'$/],
      ['--audio opus into MOV', audio, ['--audio', 'opus:32k'], /^MOV \(.*refused\.mov\) cannot hold Opus audio/],
      ['--maxrate without --bufsize', clip, ['--maxrate', '1M'], /^Expected --bufsize with --maxrate .*: add --bufsize or drop --maxrate$/],
      ['--crf with --bitrate', clip, ['--crf', '20', '--bitrate', '1M'], /^Expected --crf or --bitrate, not both/],
      ['--target-size with --bitrate', clip, ['--target-size', '1MB', '--bitrate', '1M'], /^Expected --bitrate or --target-size, not both/],
      ['a face target with --bitrate', clip, ['--match-crf', '26', '--bitrate', '1M'], /^Expected --bitrate or --match-crf, not both/],
      ['--redis with --maxrate', clip, ['--redis', 'redis://127.0.0.1:1', '--maxrate', '1M', '--bufsize', '2M'], /^Expected --redis or --maxrate, not both \(chunks encoded apart cannot keep one decoder buffer across their joins\): drop one$/],
    ];
    for (const [what, input, flags, message] of cases) {
      const out = join(dir, flags.includes('opus:32k') ? 'refused.mov' : 'refused.mp4');
      const r = cli([input, '-o', out, '--preset', PRESET, ...flags]);
      assert.equal(r.code, 1, what);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${what}: ${r.stderr}`);
      assert.match(lines[0]!.replace(/^roi-encode: /, ''), message, what);
      assert.equal(r.stdout, '');
      assert.ok(!existsSync(out), `${what}: wrote ${out}`);
    }
  });
});
