import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { analyze, encode, measureQuality, type Plan } from '../src/index.js';
import { buildAssembleArgs, buildConcatList } from '../src/distributed/assembly.js';
import { chunkBounds, chunkSelection } from '../src/distributed/chunk.js';
import { chunkRanges, slicePlan } from '../src/distributed/chunking.js';
import { planTracks } from '../src/encode/argv.js';
import { resolveBinaries } from '../src/media/binaries.js';
import { ffmpeg, ffprobeJson, fixture, frameTimes, HEAD_FULL, offsetClipArgs, SAMPLE, STREET, workDir } from './helpers.js';
import { freePort, isolateHome, leftovers, RedisServer, submit, waitUntil, WorkerProcess } from './distributed-helpers.js';

// Submitter (in this process and spawned) and workers share the default secret of a throwaway home.
isolateHome('distributed');
const dir = workDir('distributed');
const bins = resolveBinaries();

// ---------------------------------------------------------------------------------------------
// Pure builders

describe('chunking (pure)', () => {
  const at25 = (n: number) => Float64Array.from({ length: n }, (_, i) => i / 25);

  it('ends chunks at the scene cut nearest the target length, else at the nearest frame', () => {
    // 60 s at 25 fps, cuts at 18 s and 37 s; a cut at 2 s is too early to end a 20 s chunk.
    const r = chunkRanges(at25(1500), 60, [50, 450, 925], 20);
    assert.deepEqual(r.map((c) => [c.startFrame, c.endFrame, c.endsAtCut]), [[0, 450, true], [450, 925, true], [925, 1500, false]]);
    // No cuts: 20 s each; a remainder of at most 1.5 chunks is the last chunk, never a sliver.
    assert.deepEqual(chunkRanges(at25(1500), 60, [], 20).map((c) => [c.startFrame, c.endFrame]), [[0, 500], [500, 1000], [1000, 1500]]);
    assert.deepEqual(chunkRanges(at25(1625), 65, [], 20).map((c) => [c.startFrame, c.endFrame]), [[0, 500], [500, 1000], [1000, 1625]]);
    assert.deepEqual(chunkRanges(at25(250), 10, [100], 20).map((c) => [c.startFrame, c.endFrame]), [[0, 250]]);
  });

  it('picks the frame nearest the target on variable frame rate', () => {
    // Frames at 0, 0.3, 0.6, … with a gap: target 1.0 s lies between 0.9 and 1.4 → frame at 0.9.
    const times = Float64Array.from([0, 0.3, 0.6, 0.9, 1.4, 1.7, 2.0, 2.3, 2.6, 2.9]);
    const r = chunkRanges(times, 3.2, [], 1);
    assert.equal(r[0]!.endFrame, 3);
    assert.equal(r[0]!.endSeconds, 0.9);
    assert.equal(r.at(-1)!.endFrame, 10);
    assert.equal(r.reduce((n, c) => n + c.endFrame - c.startFrame, 0), 10);
  });

  it('cuts the one plan at the chunk range: segments, zones, cuts and detections renumbered', () => {
    const region = (q: number) => ({ x: 0, y: 0, w: 10, h: 10, qpOffset: q, kind: 'face' as const });
    const plan: Plan = {
      version: 1,
      input: { path: 'x', width: 64, height: 64, frameRate: 25, frameCount: 100, durationSeconds: 4 },
      settings: {},
      detections: [{ frame: 10, time: 0.4, faces: [] }, { frame: 40, time: 1.6, faces: [] }, { frame: 70, time: 2.8, faces: [] }],
      cuts: [30, 60],
      segments: [{ startFrame: 0, endFrame: 30, regions: [region(-4)] }, { startFrame: 30, endFrame: 60, regions: [region(-3)] }, { startFrame: 60, endFrame: 100, regions: [region(-2)] }],
      zones: [{ startFrame: 20, endFrame: 50, bitrateFactor: 2 }],
    };
    const s = slicePlan(plan, 25, 65, at25(100));
    assert.deepEqual(s.segments.map((g) => [g.startFrame, g.endFrame, g.regions[0]!.qpOffset]), [[0, 5, -4], [5, 35, -3], [35, 40, -2]]);
    assert.deepEqual(s.zones, [{ startFrame: 0, endFrame: 25, bitrateFactor: 2 }]);
    assert.deepEqual(s.cuts, [5, 35]);
    assert.deepEqual(s.detections.map((d) => [d.frame, d.time]), [[15, 0.6]]);
    assert.equal(s.input.frameCount, 40);
    assert.equal(s.input.durationSeconds, 1.6);
  });

  it('selects a chunk by seeking before it and trimming halfway between frames', () => {
    const times = at25(1000);
    const first = chunkSelection(chunkBounds({ startFrame: 0, endFrame: 500 }, times), { videoStartSeconds: 0, formatStartSeconds: 0 });
    assert.deepEqual(first.inputOptions, ['-copyts']);
    assert.equal(first.selectFilter, 'trim=end=19.98,setpts=PTS-STARTPTS');
    const mid = chunkSelection(chunkBounds({ startFrame: 500, endFrame: 1000 }, times), { videoStartSeconds: 1.5, formatStartSeconds: 1 });
    assert.deepEqual(mid.inputOptions, ['-copyts', '-noaccurate_seek', '-ss', '17.5']);
    assert.equal(mid.selectFilter, 'trim=start=21.48,setpts=PTS-STARTPTS');
  });

  it('builds the concat list and the assembly command with the single-machine stream plan and timestamps', () => {
    assert.equal(buildConcatList([{ path: "/a/it's.mp4", durationSeconds: 20 }, { path: '/a/b.mp4', durationSeconds: 1 / 3 }]),
      "ffconcat version 1.0\nfile '/a/it'\\''s.mp4'\nduration 20\nfile '/a/b.mp4'\nduration 0.333333\n");
    // Durations are rounded so that their sums (where each chunk starts) are the nearest microsecond.
    const thirds = buildConcatList(Array.from({ length: 3 }, (_, i) => ({ path: `/c${i}`, durationSeconds: 1 / 3 }))).match(/duration (\S+)/g)!;
    assert.deepEqual(thirds, ['duration 0.333333', 'duration 0.333334', 'duration 0.333333']);

    const tracks = planTracks([{ index: 1, type: 'audio', codec: 'pcm_s16le' }, { index: 2, type: 'subtitle', codec: 'subrip' }], 'mp4', '/o.mp4');
    const base = { concatList: '/s/l', input: '/in.mov', output: '/o.mp4', container: 'mp4' as const, videoStartSeconds: 10.5, tracks, videoOnly: false };
    const joined = buildAssembleArgs(base).join(' ');
    assert.ok(joined.includes('-itsoffset 10.5 -i /s/l -i /in.mov -map 0:v:0 -map 1:1 -map 1:2 -copyts -c:v copy -c:1 alac -c:2 mov_text -map_metadata 1 -map_chapters 1 -tag:v hvc1 -movflags +faststart -movie_timescale 90000 /o.mp4'), joined);
    // .mov is ISO too (edit lists at 90 kHz); Matroska takes attachments and no MP4 flags.
    assert.ok(buildAssembleArgs({ ...base, container: 'mov', output: '/o.mov' }).join(' ').includes('-tag:v hvc1 -movflags +faststart -movie_timescale 90000'));
    const mkv = buildAssembleArgs({ ...base, container: 'mkv', output: '/o.mkv', tracks: planTracks([{ index: 1, type: 'subtitle', codec: 'mov_text' }], 'mkv', '/o.mkv') }).join(' ');
    assert.ok(mkv.includes('-map 0:v:0 -map 1:1 -map 1:t? -copyts -c:v copy -c:1 srt -map_metadata 1 -map_chapters 1 /o.mkv'), mkv);
    // Video only (comparisons): no other streams, ffmpeg's default start, as encode() does.
    const vo = buildAssembleArgs({ ...base, tracks: [], videoOnly: true, videoStartSeconds: 0 });
    assert.deepEqual(vo.filter((a) => a.startsWith('1:') || a === '-copyts' || a === '-itsoffset'), []);
  });
});

// ---------------------------------------------------------------------------------------------
// Real Redis, real worker processes of the CLI

function assertSameTimes(actual: string, expected: string): void {
  const a = frameTimes(actual), e = frameTimes(expected);
  assert.equal(a.length, e.length, 'frame count');
  a.forEach((t, i) => assert.ok(Math.abs(t - e[i]!) < 1e-6, `frame ${i}: ${t} vs ${e[i]}`));
}

describe('distributed encoding on real Redis and worker processes', { timeout: 280_000 }, () => {
  let redis: RedisServer;
  let workers: WorkerProcess[] = [];
  let clip: string;
  let short: string;

  before(async () => {
    redis = new RedisServer(await freePort());
    await redis.start();
    workers = [new WorkerProcess(redis.url), new WorkerProcess(redis.url)];
    // One minute, 400x300, three shots (talking head; the street, no face; the head mirrored) so the
    // plan has cuts at 18 s and 37 s; a few dropped frames make it variable frame rate; a tone.
    clip = join(dir, 'minute.mp4');
    const head = HEAD_FULL;
    ffmpeg(['-i', head, '-loop', '1', '-framerate', '25', '-i', STREET, '-f', 'lavfi', '-i', 'sine=frequency=440:duration=60',
      '-filter_complex',
      '[0:v]trim=0:18,setpts=PTS-STARTPTS[a];[1:v]scale=400:300,setsar=1,trim=0:19,setpts=PTS-STARTPTS,format=yuv420p[b];' +
      '[0:v]trim=5:28,setpts=PTS-STARTPTS,hflip[c];[a][b][c]concat=n=3:v=1:a=0,select=\'not(between(n\\,600\\,603))*not(between(n\\,1210\\,1211))\'[v]',
      '-map', '[v]', '-map', '2:a', '-fps_mode', 'vfr', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '16', '-c:a', 'aac', clip]);
    short = join(dir, 'short.mp4');
    ffmpeg(['-i', clip, '-t', '24', '-an', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '16', short]);
    await Promise.all(workers.map((w) => w.ready()));
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await redis.stop();
  });

  let plan: Plan;
  let single: string;

  it('encodes a one-minute clip in 20 s chunks like one machine: frames, timestamps, face PSNR, bytes; chunks end on cuts', async () => {
    plan = await analyze(clip);
    single = join(dir, 'single.mp4');
    const one = await encode(clip, single, { plan, preset: 'veryfast', force: true });
    const out = join(dir, 'distributed.mp4');
    const r = await submit([clip, '-o', out, '--redis', redis.url, '--chunk-seconds', '20', '--preset', 'veryfast']);
    assert.equal(r.code, 0, r.stderr);
    const done = r.events.at(-1)!;
    assert.equal(done.type, 'done');
    // One progress display over all chunks: encode progress only rises.
    const encodeDone = r.events.filter((e) => e.type === 'progress' && e.stage === 'encode').map((e) => e.done as number);
    assert.ok(encodeDone.length > 2 && encodeDone.every((d, i) => i === 0 || d >= encodeDone[i - 1]!), String(encodeDone));
    assert.ok(r.events.some((e) => e.type === 'progress' && e.stage === 'analyze'), 'analysis ran as a job with progress');

    assertSameTimes(out, single);
    assertSameTimes(out, clip);
    const streams = (ffprobeJson(out, ['-show_streams']) as { streams: { codec_type: string; codec_name: string }[] }).streams;
    assert.deepEqual(streams.map((s) => `${s.codec_type}:${s.codec_name}`), ['video:hevc', 'audio:aac']);
    const [qd, qs] = [await measureQuality(clip, out, plan, bins), await measureQuality(clip, single, plan, bins)];
    assert.ok(Math.abs(qd.facePsnr - qs.facePsnr) < 0.3, `face PSNR ${qd.facePsnr.toFixed(3)} distributed vs ${qs.facePsnr.toFixed(3)} single`);
    assert.ok(Math.abs(Number(done.bytes) / one.bytes - 1) < 0.06, `bytes ${String(done.bytes)} distributed vs ${one.bytes} single`);

    // Chunk boundaries: the plan's cuts near 18 s and 37 s, found by the analysis job on a worker.
    const chunkStarts = workers.flatMap((w) => w.events).filter((e) => e.event === 'done' && e.kind === 'chunk').map((e) => Number(/frames (\d+)–/.exec(e.job!)![1]));
    const cuts = (plan.cuts ?? []).filter((c) => c > 0);
    assert.equal(cuts.length, 2, `cuts ${String(plan.cuts)}`);
    assert.deepEqual(chunkStarts.sort((a, b) => a - b), [0, ...cuts]);
    // Both workers took chunks.
    assert.ok(workers.every((w) => w.events.some((e) => e.event === 'done' && e.kind === 'chunk')), 'one worker did everything');
    assert.deepEqual(leftovers(dir), []);
  });

  it('survives SIGKILL of a worker in the middle of a chunk: another worker redoes it, output complete and correct', async () => {
    const shortPlan = join(dir, 'short-plan.json');
    writeFileSync(shortPlan, JSON.stringify(await analyze(short, { sampleFps: 1 })));
    const out = join(dir, 'killed.mp4');
    let victim: WorkerProcess | undefined;
    let killedJob: string | undefined;
    // A worker one second into a chunk is killed outright (no chance to hand anything back).
    const killer = waitUntil('a worker one second into a chunk', () => workers.some((w) => w.chunkInProgress(1000)), 60_000).then(() => {
      victim = workers.find((w) => w.chunkInProgress(1000))!;
      killedJob = victim.chunkInProgress(1000)!.jobId;
      victim.proc.kill('SIGKILL');
    });
    const r = await submit([short, '-o', out, '--redis', redis.url, '--chunk-seconds', '8', '--preset', 'medium', '--plan', shortPlan]);
    await killer;
    assert.ok(victim && killedJob);
    assert.equal(r.code, 0, r.stderr);
    assertSameTimes(out, short);
    const survivor = workers.find((w) => w !== victim)!;
    assert.ok(survivor.events.some((e) => e.event === 'done' && e.jobId === killedJob), `the survivor did not redo ${killedJob}`);
    assert.deepEqual(leftovers(dir), []);
    // Back to two workers for the rest.
    workers = [survivor, new WorkerProcess(redis.url)];
    await workers[1]!.ready();
  });

  it('fails the whole encode with one line naming the chunk when a stretch of input is corrupt; nothing written', async () => {
    const good = join(dir, 'good.ts');
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=8', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-f', 'mpegts', good]);
    const bytes = readFileSync(good);
    for (let i = Math.floor(bytes.length * 0.55); i < bytes.length * 0.62; i++) bytes[i] = (i * 7919) % 251;
    const bad = join(dir, 'corrupt.ts');
    writeFileSync(bad, bytes);
    const out = join(dir, 'corrupt-out.mp4');
    const r = await submit([bad, '-o', out, '--redis', redis.url, '--roi', 'none', '--chunk-seconds', '2', '--preset', 'ultrafast']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^roi-encode: chunk \d+\/\d+ \(frames \d+–\d+, [\d.]+–[\d.]+ s\) failed after 2 attempts: .*decoded \d+ of the chunk's \d+ frames/);
    assert.equal(existsSync(out), false);
    assert.deepEqual(leftovers(dir), []);
  });

  it('cancels its jobs on Ctrl-C: workers stop those chunks, chunk files removed, no output', async () => {
    const out = join(dir, 'interrupted.mp4');
    let sent = false;
    const r = await submit([short, '-o', out, '--redis', redis.url, '--roi', 'none', '--chunk-seconds', '6', '--preset', 'slow'], (e, child) => {
      if (!sent && e.type === 'progress' && (e.done as number) > 30) {
        sent = true;
        process.kill(-child.pid!, 'SIGINT');
      }
    });
    assert.ok(sent, 'no progress before the end');
    assert.equal(r.code, 130, r.stderr);
    assert.equal(r.stderr.trim(), 'roi-encode: interrupted');
    assert.equal(existsSync(out), false);
    assert.deepEqual(leftovers(dir), []);
    await waitUntil('workers to report the chunks cancelled', () => workers.some((w) => w.events.some((e) => e.event === 'cancelled')), 10_000);
    // Nothing of that encode keeps running, and the workers are still there.
    await new Promise((r2) => setTimeout(r2, 500));
    for (const w of workers) {
      const started = w.events.filter((e) => e.event === 'start').map((e) => e.jobId);
      const ended = new Set(w.events.filter((e) => ['done', 'failed', 'cancelled'].includes(e.event)).map((e) => e.jobId));
      assert.deepEqual(started.filter((id) => !ended.has(id)), [], 'a chunk still running');
      assert.ok(w.alive);
    }
  });

  it('says it is waiting when no worker is connected, and Ctrl-C leaves nothing', async () => {
    const lonely = new RedisServer(await freePort());
    await lonely.start();
    try {
      const out = join(dir, 'no-worker.mp4');
      const child = submit([short, '-o', out, '--redis', lonely.url, '--roi', 'none'], (e, proc) => {
        if (e.type === 'notice') {
          process.kill(-proc.pid!, 'SIGINT');
        }
      });
      const r = await child;
      assert.match(r.stdout, /"type":"notice","message":"waiting for a worker on redis:\/\/127\.0\.0\.1:\d+/);
      assert.match(r.stderr, new RegExp(`waiting for a worker on ${lonely.url.replace(/[/.]/g, '\\$&')}`));
      assert.equal(r.code, 130, r.stderr);
      assert.equal(existsSync(out), false);
      assert.deepEqual(leftovers(dir), []);
    } finally {
      await lonely.stop();
    }
  });

  it('fails with one clear line when Redis restarts empty mid-encode, writes nothing, and workers reconnect', async () => {
    const out = join(dir, 'redis-restart.mp4');
    let restarted: Promise<void> | undefined;
    const r = await submit([short, '-o', out, '--redis', redis.url, '--roi', 'none', '--chunk-seconds', '6', '--preset', 'slow'], (e) => {
      if (!restarted && e.type === 'progress' && (e.done as number) > 20) {
        restarted = (async () => {
          await redis.stop();
          await redis.start();
        })();
      }
    });
    await restarted;
    assert.ok(restarted, 'no progress before the end');
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^roi-encode: redis at redis:\/\/127\.0\.0\.1:\d+ no longer has this encode's jobs/);
    assert.equal(existsSync(out), false);
    assert.deepEqual(leftovers(dir), []);
    // The same worker processes serve the restarted Redis.
    const again = join(dir, 'after-restart.mp4');
    const ok = await submit([short, '-o', again, '--redis', redis.url, '--roi', 'none', '--chunk-seconds', '12', '--preset', 'ultrafast']);
    assert.equal(ok.code, 0, ok.stderr);
    assertSameTimes(again, short);
    assert.ok(workers.every((w) => w.alive));
  });
});

// ---------------------------------------------------------------------------------------------
// The single-machine timestamp and stream guarantees (test/streams.test.ts) hold for distributed
// encodes: each is compared with the single-machine encode of the same input.

describe('distributed encodes keep streams and timestamps like one machine', { timeout: 240_000 }, () => {
  let redis: RedisServer;
  let workers: WorkerProcess[] = [];
  const tsDir = workDir('distributed-streams');

  before(async () => {
    redis = new RedisServer(await freePort());
    await redis.start();
    workers = [new WorkerProcess(redis.url), new WorkerProcess(redis.url)];
    await Promise.all(workers.map((w) => w.ready()));
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await redis.stop();
  });

  interface Stream { codec_type: string; codec_name: string; start_time?: string }
  const streamsOf = (file: string) => (ffprobeJson(file, ['-show_streams']) as { streams: Stream[] }).streams;

  /** Three ROI segments whose boundaries fall inside chunks (timing does not depend on where faces are). */
  const plan = (source: string, frameCount: number): Plan => {
    const cuts = [0, Math.floor(frameCount / 3), Math.floor((2 * frameCount) / 3), frameCount];
    return {
      version: 1,
      input: { path: source, width: 320, height: 240, frameRate: 25, frameCount, durationSeconds: frameCount / 25 },
      settings: {},
      detections: [],
      segments: cuts.slice(0, 3).map((startFrame, i) => ({
        startFrame,
        endFrame: cuts[i + 1]!,
        regions: [{ x: 32 * (i + 1), y: 32, w: 96, h: 96, qpOffset: -4, kind: 'face' as const }, { x: 0, y: 0, w: 320, h: 240, qpOffset: 4, kind: 'background' as const }],
      })),
      zones: [],
    };
  };

  /**
   * Encodes `source` into `ext` on one machine and in 2 s chunks on the workers, and checks that the
   * two outputs have the same streams (codecs), every stream starting where the source's does (1 ms),
   * and the same frames at the same times; returns both paths.
   */
  async function compareWithSingle(source: string, ext: string, frameCount: number, extra: { codec?: 'x264'; x264Params?: string; height?: number } = {}): Promise<{ single: string; distributed: string }> {
    const name = `${basename(source, extname(source))}-${ext}${extra.codec ? `-${extra.codec}` : ''}`;
    const single = join(tsDir, `${name}-single.${ext}`);
    const distributed = join(tsDir, `${name}-distributed.${ext}`);
    const settings = { plan: plan(source, frameCount), preset: 'ultrafast', crf: 30, ...extra };
    await encode(source, single, settings);
    const seen = workers.map((w) => w.events.length);
    await encode(source, distributed, { ...settings, redis: redis.url, chunkSeconds: 2 });
    const chunks = workers.flatMap((w, i) => w.events.slice(seen[i])).filter((e) => e.event === 'done' && e.kind === 'chunk');
    assert.ok(chunks.length >= 2, `${chunks.length} chunk(s): the test needs the video split`);

    const [src, one, many] = [streamsOf(source), streamsOf(single), streamsOf(distributed)];
    assert.deepEqual(many.map((s) => `${s.codec_type}:${s.codec_name}`), one.map((s) => `${s.codec_type}:${s.codec_name}`), 'streams');
    assert.equal(many.length, src.length, 'stream count');
    src.forEach((s, i) => {
      const [a, b, c] = [Number(s.start_time), Number(one[i]!.start_time), Number(many[i]!.start_time)];
      assert.ok(Math.abs(b - a) <= 0.001, `${single}: ${s.codec_type} stream ${i} starts at ${b} s, the source's at ${a} s`);
      assert.ok(Math.abs(c - a) <= 0.001, `${distributed}: ${s.codec_type} stream ${i} starts at ${c} s, the source's at ${a} s`);
    });
    const [ts, t1, tn] = [frameTimes(source), frameTimes(single), frameTimes(distributed)];
    assert.equal(tn.length, t1.length, 'frame count, distributed vs single');
    assert.equal(tn.length, ts.length, 'frame count, distributed vs source');
    tn.forEach((t, i) => {
      assert.ok(Math.abs(t - t1[i]!) < 1e-6, `${distributed}: frame ${i} at ${t} s, single-machine ${t1[i]} s`);
      assert.ok(Math.abs(t - ts[i]!) <= 0.001, `${distributed}: frame ${i} at ${t} s, source ${ts[i]} s`);
    });
    assert.deepEqual(leftovers(tsDir), []);
    return { single, distributed };
  }

  it('encodes to a target size on two workers: the whole file\'s budget shared by complexity, inside the size window, no statistics left', async () => {
    // 4 s of the talking head (mostly still), then 4 s of a noisy test pattern, with 64 kbit/s AAC; 2 s chunks.
    const source = fixture(tsDir, 'budget.mp4', (out) => [
      '-i', SAMPLE, '-f', 'lavfi', '-i', 'testsrc2=size=400x300:rate=25:duration=4,noise=alls=25:allf=t', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=8',
      '-filter_complex', '[0:v]trim=duration=4,setpts=PTS-STARTPTS,format=yuv420p[a];[1:v]format=yuv420p[b];[a][b]concat=n=2:v=1[v]',
      '-map', '[v]', '-map', '2:a', '-c:v', 'libx264', '-crf', '16', '-preset', 'veryfast', '-c:a', 'aac', '-b:a', '64k', out]);
    const out = join(tsDir, 'budget-size.mp4');
    const seen = workers.map((w) => w.events.length);
    const r = await encode(source, out, { targetSize: '400kB', redis: redis.url, chunkSeconds: 2, preset: 'medium' });
    assert.equal(r.targetBytes, 400_000);
    assert.equal(statSync(out).size, r.bytes);
    assert.ok(r.bytes <= 400_000 && r.bytes >= 388_000, `${r.bytes} bytes for 400 kB (window 388 000–400 000)`);
    assert.ok(r.passes >= 2 && r.passes <= 4, `${r.passes} passes`);
    assert.equal(r.sizeShortfall, undefined);
    assert.deepEqual(streamsOf(out).map((x) => `${x.codec_type}:${x.codec_name}`), ['video:hevc', 'audio:aac']);
    assert.equal(frameTimes(out).length, 200);
    // Every chunk's first pass ran once, on either worker; its second passes at its share of the budget.
    const starts = workers.flatMap((w, i) => w.events.slice(seen[i]).filter((e) => e.event === 'start' && e.kind === 'chunk').map((e) => ({ worker: i, job: e.job! })));
    const firsts = starts.filter((e) => / pass 1 at /.test(e.job));
    assert.equal(firsts.length, 4, starts.map((e) => e.job).join('\n'));
    assert.deepEqual([...new Set(starts.map((e) => e.worker))].sort(), [0, 1], 'both workers took chunks');
    const share = (from: number) => Number(/ pass 2 at (\d+) kbit\/s/.exec(starts.filter((e) => e.job.includes(`(frames ${from}–`) && / pass 2 /.test(e.job)).at(-1)!.job)![1]);
    // The still talking head needs a fraction of what the noise does: the budget follows the first passes.
    assert.ok(share(0) * 2 < share(100), `still chunk ${share(0)} kbit/s, noisy chunk ${share(100)} kbit/s`);
    assert.ok(share(50) * 2 < share(150), `still chunk ${share(50)} kbit/s, noisy chunk ${share(150)} kbit/s`);
    // The chunk folder (chunks and their first passes' statistics) is gone.
    assert.deepEqual(leftovers(tsDir), []);
  });

  it('scales chunks on the workers (--height): the output size, frames and times of one machine', async () => {
    const source = fixture(tsDir, 'plain5.mp4', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=5', '-c:v', 'libx264', '-preset', 'ultrafast', out]);
    const { single, distributed } = await compareWithSingle(source, 'mp4', 125, { height: 120 });
    for (const file of [single, distributed]) {
      const v = streamsOf(file).find((x) => x.codec_type === 'video')! as Stream & { width?: number; height?: number };
      assert.deepEqual([v.width, v.height], [160, 120], file);
    }
    // The plan's offsets reach the scaled chunks: the same bits as one machine's scaled encode, give or take the chunk seams.
    const [a, b] = [statSync(single).size, statSync(distributed).size];
    assert.ok(Math.abs(b / a - 1) < 0.25, `single ${a} bytes, distributed ${b}`);
  });

  it('encodes x264 chunks (with expert parameters) into one H.264 file like one machine', async () => {
    const source = fixture(tsDir, 'plain5.mp4', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=5', '-c:v', 'libx264', '-preset', 'ultrafast', out]);
    const { single, distributed } = await compareWithSingle(source, 'mp4', 125, { codec: 'x264', x264Params: 'keyint=40' });
    for (const file of [single, distributed]) {
      const v = streamsOf(file).find((s) => s.codec_type === 'video')! as Stream & { codec_tag_string?: string };
      assert.deepEqual([v.codec_name, v.codec_tag_string], ['h264', 'avc1'], file);
    }
    // The chunks' x264 got the expert's keyint (x264 writes its settings into the stream).
    const sei = execFileSync('ffmpeg', ['-v', 'error', '-i', distributed, '-map', '0:v', '-c', 'copy', '-f', 'h264', '-'], { maxBuffer: 1 << 26 }).toString('latin1');
    assert.match(sei, /x264 - core[^\0]* keyint=40 /);
  });

  it('keeps HDR10 through chunks: 10 bits, colour tags, mastering display and content light level', async () => {
    const source = fixture(tsDir, 'hdr10.mp4', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=5', '-vf', 'format=yuv420p10le', '-c:v', 'libx265', '-preset', 'ultrafast',
      '-x265-params', 'log-level=error:hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50):max-cll=1000,400',
      '-color_primaries', 'bt2020', '-color_trc', 'smpte2084', '-colorspace', 'bt2020nc', out]);
    const { distributed } = await compareWithSingle(source, 'mp4', 125);
    const v = (ffprobeJson(distributed, ['-show_streams', '-select_streams', 'v:0']) as { streams: Record<string, string>[] }).streams[0]!;
    assert.deepEqual([v.pix_fmt, v.color_primaries, v.color_transfer, v.color_space], ['yuv420p10le', 'bt2020', 'smpte2084', 'bt2020nc']);
    const { frames } = ffprobeJson(distributed, ['-select_streams', 'v:0', '-show_frames', '-show_entries', 'frame=side_data_list']) as { frames: { side_data_list?: Record<string, string | number>[] }[] };
    assert.equal(frames.length, 125);
    for (const f of frames) {
      assert.equal(f.side_data_list?.find((d) => d.side_data_type === 'Mastering display metadata')?.max_luminance, '10000000/10000');
      assert.equal(f.side_data_list?.find((d) => d.side_data_type === 'Content light level metadata')?.max_content, 1000);
    }
  });

  it('keeps a start time of 10 s (MP4 edit list)', async () => {
    const source = fixture(tsDir, 'start10.mp4', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=5', '-f', 'lavfi', '-i', 'sine=duration=5', '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-output_ts_offset', '10', out]);
    assert.ok(Math.abs(Number(streamsOf(source)[0]!.start_time) - 10) < 0.001, 'fixture should start at 10 s');
    await compareWithSingle(source, 'mp4', 125);
  });

  // Video 0.523 s after the first audio track, frames off the 1/25 s grid (VFR jitter, which a chunk
  // encoded in 1/fps would round), a FLAC track starting at 0.25 s (ALAC in MP4).
  const offset = () => fixture(tsDir, 'offset.mkv', (out) => offsetClipArgs(5, out));

  for (const ext of ['mkv', 'mp4'] as const) {
    it(`keeps video 0.523 s after audio and every off-grid frame time, into ${ext}`, async () => {
      const source = offset();
      const s = streamsOf(source).map((x) => Number(x.start_time));
      assert.ok(Math.abs(s[0]! - s[1]! - 0.523) < 0.03, `fixture: video should start ~0.523 s after audio (${s.join(', ')})`);
      const { distributed } = await compareWithSingle(source, ext, 125);
      assert.deepEqual(streamsOf(distributed).map((x) => x.codec_name), ext === 'mp4' ? ['hevc', 'aac', 'alac'] : ['hevc', 'aac', 'flac']);
    });
  }

  it('turns PCM audio of a MOV into ALAC for MP4, samples unchanged', async () => {
    const source = fixture(tsDir, 'pcm.mov', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=5', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=5', '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'pcm_s16le', out]);
    const { distributed } = await compareWithSingle(source, 'mp4', 125);
    assert.deepEqual(streamsOf(distributed).map((x) => x.codec_name), ['hevc', 'alac']);
    const samples = (file: string) => execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:a:0', '-f', 's16le', '-'], { maxBuffer: 1 << 26 });
    assert.ok(samples(distributed).equals(samples(source)), 'audio samples changed');
  });

  it('refuses a stream the container cannot hold before any job, as one machine does', async () => {
    const source = fixture(tsDir, 'opus.mkv', (out) => ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=1', '-f', 'lavfi', '-i', 'sine=duration=1', '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'libopus', out]);
    const out = join(tsDir, 'opus-out.mov');
    const seen = workers.map((w) => w.events.length);
    await assert.rejects(encode(source, out, { redis: redis.url, chunkSeconds: 2, roi: 'none', preset: 'ultrafast' }), {
      code: 'UNSUPPORTED_STREAM',
      message: `audio stream 1 of the input is opus, which MOV (${out}) cannot hold; write .mkv instead, which keeps it as it is`,
    });
    assert.deepEqual(workers.flatMap((w, i) => w.events.slice(seen[i])), [], 'a worker got a job');
    assert.equal(existsSync(out), false);
    assert.deepEqual(leftovers(tsDir), []);
  });
});
