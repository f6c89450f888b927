import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { encode, type Plan } from '../src/index.js';
import { buildRoiFilterGraph, qoffsetFor } from '../src/encode/filtergraph.js';
import { X264, X265 } from '../src/encode/codec.js';
import { hdrParams, masterDisplayParam } from '../src/encode/hdr.js';
import { bitDepthOf, parsePictureFormat } from '../src/media/hdr.js';
import { cli, ffprobeJson, fixture, workDir } from './helpers.js';

const dir = workDir('hdr');

const MASTER = 'G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)';

/** 2 s of testsrc2 as 10-bit HEVC HDR10: PQ, BT.2020, a P3-D65 1000-nit mastering display in BT.2020 terms, MaxCLL 1000, MaxFALL 400. */
const hdr10 = fixture(dir, 'hdr10.mp4', (out) => [
  '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=2', '-vf', 'format=yuv420p10le',
  '-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', `log-level=error:hdr10=1:repeat-headers=1:master-display=${MASTER}:max-cll=1000,400`,
  '-color_primaries', 'bt2020', '-color_trc', 'smpte2084', '-colorspace', 'bt2020nc', '-color_range', 'tv', out]);

/** The same picture as HLG (ARIB STD-B67): colour tags only, no static metadata. */
const hlg = fixture(dir, 'hlg.mkv', (out) => [
  '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=2', '-vf', 'format=yuv420p10le',
  '-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error',
  '-color_primaries', 'bt2020', '-color_trc', 'arib-std-b67', '-colorspace', 'bt2020nc', '-color_range', 'tv', out]);

interface Frame { side_data_list?: Record<string, string | number>[] }
interface Stream { codec_type: string; profile: string; pix_fmt: string; color_range?: string; color_space?: string; color_transfer?: string; color_primaries?: string }

const video = (file: string) => (ffprobeJson(file, ['-show_streams', '-select_streams', 'v:0']) as { streams: Stream[] }).streams[0]!;
const colour = (s: Stream) => [s.pix_fmt, s.color_primaries, s.color_transfer, s.color_space, s.color_range];

/** Every decoded frame's mastering display and content light level side data. */
function frameMetadata(file: string): { md?: Record<string, string | number>; cll?: Record<string, string | number> }[] {
  const { frames } = ffprobeJson(file, ['-select_streams', 'v:0', '-show_frames', '-show_entries', 'frame=side_data_list']) as { frames: Frame[] };
  return frames.map((f) => ({
    md: f.side_data_list?.find((d) => d.side_data_type === 'Mastering display metadata'),
    cll: f.side_data_list?.find((d) => d.side_data_type === 'Content light level metadata'),
  }));
}

/** SEI payload types in the stream as written (137 mastering display, 144 content light level), counted. */
function seiCounts(file: string): Map<number, number> {
  // trace_headers logs to stderr.
  const text = spawnSync('ffmpeg', ['-hide_banner', '-i', file, '-map', '0:v', '-c', 'copy', '-bsf:v', 'trace_headers', '-f', 'null', '-'], { encoding: 'utf8', maxBuffer: 1 << 28 }).stderr;
  const counts = new Map<number, number>();
  for (const m of text.matchAll(/last_payload_type_byte\s+\d+ = (\d+)/g)) counts.set(Number(m[1]), (counts.get(Number(m[1])) ?? 0) + 1);
  return counts;
}

function keyframes(file: string): number {
  const { packets } = ffprobeJson(file, ['-select_streams', 'v:0', '-show_entries', 'packet=flags']) as { packets: { flags: string }[] };
  return packets.filter((p) => p.flags.startsWith('K')).length;
}

describe('HDR metadata (pure)', () => {
  it('reads ffprobe\'s side data and writes it back as x265\'s master-display and max-cll', () => {
    const p = parsePictureFormat({
      pix_fmt: 'yuv420p10le', color_transfer: 'smpte2084', color_primaries: 'bt2020', color_space: 'bt2020nc', color_range: 'tv',
      side_data_list: [
        { side_data_type: 'Mastering display metadata', red_x: '34000/50000', red_y: '16000/50000', green_x: '13250/50000', green_y: '34500/50000', blue_x: '7500/50000', blue_y: '3000/50000', white_point_x: '15635/50000', white_point_y: '16450/50000', min_luminance: '50/10000', max_luminance: '10000000/10000' },
        { side_data_type: 'Content light level metadata', max_content: 1000, max_average: 400 },
      ],
    });
    assert.equal(p.bitDepth, 10);
    assert.equal(p.dynamicRange, 'hdr10');
    assert.equal(p.masteringDisplay!.maxLuminance, 1000);
    assert.equal(masterDisplayParam(p.masteringDisplay!), MASTER);
    assert.deepEqual(hdrParams(X265, p), { 'master-display': MASTER, 'max-cll': '1000,400', hdr10: 1 });
    assert.deepEqual(hdrParams(X264, p), {});
    assert.deepEqual(hdrParams(X265, parsePictureFormat({ pix_fmt: 'yuv420p10le', color_transfer: 'arib-std-b67' })), {}, 'HLG has no static metadata');
    assert.equal(parsePictureFormat({ pix_fmt: 'yuv420p', color_transfer: 'unknown' }).colorTransfer, undefined);
    assert.deepEqual(['yuv420p', 'nv12', 'yuv420p10le', 'yuv444p12le', 'gray10le', 'p010le'].map(bitDepthOf), [8, 8, 10, 12, 10, 10]);
  });
});

describe('HDR through an x265 encode', () => {
  it('keeps 10 bits, the colour tags and the mastering display and content light level on every frame and keyframe', async () => {
    const out = join(dir, 'hdr10-out.mp4');
    const r = await encode(hdr10, out, { preset: 'veryfast', crf: 30, x265Params: 'keyint=25' });
    const [src, dst] = [video(hdr10), video(out)];
    assert.deepEqual(colour(dst), colour(src));
    assert.deepEqual(colour(dst), ['yuv420p10le', 'bt2020', 'smpte2084', 'bt2020nc', 'tv']);
    assert.equal(dst.profile, 'Main 10');
    const [before, after] = [frameMetadata(hdr10), frameMetadata(out)];
    assert.equal(after.length, 50);
    for (const [i, f] of after.entries()) {
      assert.deepEqual(f.md, before[i]!.md, `frame ${i}: mastering display`);
      assert.deepEqual(f.cll, before[i]!.cll, `frame ${i}: content light level`);
    }
    assert.equal(after[0]!.md!.max_luminance, '10000000/10000');
    assert.equal(after[0]!.cll!.max_content, 1000);
    assert.equal(after[0]!.cll!.max_average, 400);
    // Written again at each keyframe, so a player that starts mid-stream has them.
    const k = keyframes(out);
    assert.ok(k >= 2, `${k} keyframes`);
    const sei = seiCounts(out);
    // (The MP4 sample entry's copy of the headers counts once more.)
    assert.ok((sei.get(137) ?? 0) >= k, `${sei.get(137)} mastering display SEI for ${k} keyframes`);
    assert.ok((sei.get(144) ?? 0) >= k, `${sei.get(144)} content light level SEI for ${k} keyframes`);
    // The result says what came out.
    assert.equal(r.picture!.bitDepth, 10);
    assert.equal(r.picture!.dynamicRange, 'hdr10');
    assert.deepEqual(r.picture!.contentLightLevel, { maxContent: 1000, maxAverage: 400 });
    assert.deepEqual(r.picture!.masteringDisplay, { red: [0.68, 0.32], green: [0.265, 0.69], blue: [0.15, 0.06], whitePoint: [0.3127, 0.329], minLuminance: 0.005, maxLuminance: 1000 });
  });

  it('keeps HLG as HLG (transfer, primaries, matrix, 10 bits), adding no metadata', async () => {
    const out = join(dir, 'hlg-out.mkv');
    const r = await encode(hlg, out, { preset: 'veryfast', crf: 30 });
    assert.deepEqual(colour(video(out)), ['yuv420p10le', 'bt2020', 'arib-std-b67', 'bt2020nc', 'tv']);
    assert.equal(r.picture!.dynamicRange, 'hlg');
    assert.ok(frameMetadata(out).every((f) => !f.md && !f.cll));
  });

  it('says bit depth and HDR in --json and the summary line', () => {
    const out = join(dir, 'hdr10-cli.mkv');
    const r = cli([hdr10, '-o', out, '--preset', 'veryfast', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const done = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { picture: { bitDepth: number; dynamicRange: string; colorTransfer: string; contentLightLevel: unknown; masteringDisplay: { maxLuminance: number } } };
    assert.equal(done.picture.bitDepth, 10);
    assert.equal(done.picture.dynamicRange, 'hdr10');
    assert.equal(done.picture.colorTransfer, 'smpte2084');
    assert.deepEqual(done.picture.contentLightLevel, { maxContent: 1000, maxAverage: 400 });
    assert.equal(done.picture.masteringDisplay.maxLuminance, 1000);
    const text = cli([hdr10, '-o', join(dir, 'hdr10-text.mkv'), '--preset', 'veryfast']);
    assert.match(text.stderr, /, x265 10-bit HDR10 \(mastering display, MaxCLL 1000\), roi faces,/);
  });
});

describe('HDR and x264', () => {
  it('compare --codec x264 refuses an HDR10 source in one line before any analysis, writing nothing', () => {
    const out = join(dir, 'refused-report');
    const r = cli(['compare', hdr10, '-o', out, '--codec', 'x264']);
    assert.equal(r.code, 1);
    assert.match(r.stderr.trim(), /^roi-encode: the input is HDR10 \(PQ\), 10-bit, and x264 makes 8-bit H\.264 for the web/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!existsSync(out));
  });

  it('refuses an HDR source with --codec x264 in one line, exit 1, nothing written', () => {
    for (const source of [hdr10, hlg]) {
      const out = join(dir, 'refused.mp4');
      const r = cli([source, '-o', out, '--codec', 'x264']);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr.trim(), /^roi-encode: the input is (HDR10 \(PQ\)|HLG), 10-bit, and x264 makes 8-bit H\.264 for the web: use --codec x265, which keeps HDR \(Main 10 with its metadata\)$/);
      assert.ok(!existsSync(out));
    }
  });

  it('makes 8-bit H.264 High of a 10-bit SDR source', async () => {
    const sdr10 = fixture(dir, 'sdr10.mkv', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=1', '-vf', 'format=yuv420p10le', '-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error', out]);
    const r = await encode(sdr10, join(dir, 'sdr10-264.mp4'), { codec: 'x264', preset: 'veryfast' });
    const v = video(r.output);
    assert.deepEqual([v.profile, v.pix_fmt], ['High', 'yuv420p']);
    assert.equal(r.picture!.bitDepth, 8);
  });
});

describe('ROI offsets at 10 bits', () => {
  it('divides by the QP range of the encoder\'s bit depth: 51 at 8 bits, 63 at 10 (ffmpeg\'s libx265 qp_range)', () => {
    assert.equal(qoffsetFor(-2, 1), -2 / 51);
    assert.equal(qoffsetFor(-2, 1, 10), -2 / 63);
    assert.equal(qoffsetFor(-6, 2, 12), -12 / 75);
    const plan = wholeFramePlan(4);
    assert.match(buildRoiFilterGraph(plan, { strength: 1, frameTimes: Float64Array.from([0, 0.04]), outputLabel: 'v', bitDepth: 10 }), /qoffset=0\.063492:/);
  });

  /** A plan raising every block of a 320x240 clip by `qp`. */
  function wholeFramePlan(qp: number): Plan {
    return {
      version: 1,
      input: { path: 'x', width: 320, height: 240, frameRate: 25, frameCount: 25, durationSeconds: 1 },
      settings: {},
      detections: [],
      segments: [{ startFrame: 0, endFrame: 25, regions: [{ x: 0, y: 0, w: 320, h: 240, qpOffset: qp, kind: 'background' }] }],
      zones: [],
    };
  }

  /** Mean frame QP x265 reports (its CSV log) for an encode of `source` at CRF 28. */
  async function meanQp(source: string, name: string, plan?: Plan): Promise<number> {
    const csv = join(dir, `${name}.csv`);
    await encode(source, join(dir, `${name}.mp4`), { ...(plan ? { plan } : { roi: 'none' }), crf: 28, preset: 'fast', x265Params: `csv=${csv}:csv-log-level=1`, force: true });
    const [head, ...rows] = readFileSync(csv, 'utf8').trim().split('\n').map((l) => l.split(',').map((c) => c.trim()));
    const at = head!.indexOf('QP');
    return rows.reduce((s, r) => s + Number(r[at]), 0) / rows.length;
  }

  it('a plan\'s +4 raises x265\'s QP as much at 10 bits as at 8 (measured on x265\'s own log)', async () => {
    const eight = fixture(dir, 'grid8.mp4', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=1', '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '0', out]);
    const ten = fixture(dir, 'grid10.mkv', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=1', '-vf', 'format=yuv420p10le', '-c:v', 'ffv1', out]);
    const plan = wholeFramePlan(4);
    const rise8 = (await meanQp(eight, 'roi8', { ...plan, input: { ...plan.input, path: eight } })) - (await meanQp(eight, 'uniform8'));
    const rise10 = (await meanQp(ten, 'roi10', { ...plan, input: { ...plan.input, path: ten } })) - (await meanQp(ten, 'uniform10'));
    assert.ok(rise8 > 2 && rise10 > 2, `8-bit +${rise8.toFixed(2)}, 10-bit +${rise10.toFixed(2)}`);
    // Divided by 51 at 10 bits the rise would be 63/51 = 1.24 times the 8-bit one.
    assert.ok(Math.abs(rise10 / rise8 - 1) < 0.1, `8-bit +${rise8.toFixed(2)} QP, 10-bit +${rise10.toFixed(2)} QP`);
  });
});
