import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Job, Queue, Worker } from 'bullmq';
import { PREFIX, QUEUE, type ChunkJobData } from '../src/distributed/jobs.js';
import { defaultSecretFile, loadSecret } from '../src/distributed/secret.js';
import { signJob } from '../src/distributed/signing.js';
import { resolveBinaries } from '../src/media/binaries.js';
import { probeVideo } from '../src/media/probe.js';
import { cli, ffmpeg, frameTimes, SAMPLE, workDir } from './helpers.js';
import { freePort, isolateHome, leftovers, RedisServer, submit, WorkerProcess } from './distributed-helpers.js';

const home = isolateHome('distributed-security');
const dir = workDir('distributed-security');
const bins = resolveBinaries();

/** Waits until a job has completed or failed; returns the state and the reason. */
async function settled(queue: Queue, id: string): Promise<{ state: string; reason?: string; attempts: number }> {
  let state = '';
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    state = await queue.getJobState(id);
    if (state === 'completed' || state === 'failed') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const job = await Job.fromId(queue, id);
  return { state, reason: job?.failedReason, attempts: job?.attemptsMade ?? 0 };
}

describe('workers check every job before running it (real Redis, a real worker process)', { timeout: 180_000 }, () => {
  let redis: RedisServer;
  let worker: WorkerProcess;
  let queue: Queue;
  const root = join(dir, 'root');
  const outside = join(dir, 'outside');
  let input: string;
  let chunk: Omit<ChunkJobData, 'output' | 'encodeId'>;
  let n = 0;
  let secret: Buffer;

  before(async () => {
    mkdirSync(root);
    mkdirSync(outside);
    input = join(root, 'in.mp4');
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25:duration=1', '-c:v', 'libx264', '-preset', 'ultrafast', input]);
    const info = await probeVideo(input, bins);
    const times = Array.from(info.frameTimes);
    chunk = {
      kind: 'chunk', index: 0, count: 1, input, startFrame: 0, endFrame: times.length, startSeconds: 0, endSeconds: info.durationSeconds,
      bounds: { firstSeconds: times[0]!, lastSeconds: times.at(-1)! }, streamStart: { videoStartSeconds: info.startSeconds, formatStartSeconds: 0 },
      frameTimes: times, timeBase: info.timeBase, crf: 30, preset: 'ultrafast', strength: 1,
    };
    redis = new RedisServer(await freePort());
    await redis.start();
    // The worker makes the default secret file on first use (in this test's home); the test signs with it.
    worker = new WorkerProcess(redis.url, ['--root', root]);
    await worker.ready();
    secret = await loadSecret();
    queue = new Queue(QUEUE, { connection: { host: '127.0.0.1', port: redis.port }, prefix: PREFIX });
    await worker.ready();
  });

  after(async () => {
    await queue.close();
    await worker.stop();
    await redis.stop();
  });

  /** Adds a job straight to the queue, as anyone who can reach Redis can; signed with the shared secret unless `sign` says otherwise. */
  async function add(name: string, data: Record<string, unknown>, sign: (id: string, d: Record<string, unknown>) => Record<string, unknown> = (id, d) => signJob(secret, id, name, d)): Promise<string> {
    const id = `t${++n}`;
    await queue.add(name, sign(id, data), { jobId: id, attempts: 2 });
    return id;
  }

  it('made the default secret file with mode 0600 in a 0700 folder on first use', () => {
    const file = defaultSecretFile();
    assert.ok(file.startsWith(home), file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(file, '..')).mode & 0o777, 0o700);
    assert.match(readFileSync(file, 'utf8'), /^[0-9a-f]{64}\n$/);
  });

  it('refuses forged jobs (no signature, a wrong one, a tampered payload): nothing written, failed once with the reason', async () => {
    const cases: [string, (id: string, d: Record<string, unknown>) => Record<string, unknown>, RegExp][] = [
      ['unsigned', (_id, d) => d, /^refused: the chunk job t\d+ is not signed \(submitters and workers must share the secret/],
      ['wrong secret', (id, d) => signJob(Buffer.from('another secret, 32 characters ok'), id, 'chunk', d), /^refused: the signature of the chunk job t\d+ does not verify \(signed with another secret, or changed after signing\)$/],
      ['tampered', (id, d) => ({ ...signJob(secret, id, 'chunk', { ...d, output: join(root, 'harmless.mp4') }), output: d.output }), /^refused: the signature of the chunk job t\d+ does not verify/],
      ['moved to another job id', (id, d) => signJob(secret, `${id}-other`, 'chunk', d), /^refused: the signature of the chunk job t\d+ does not verify/],
    ];
    for (const [what, sign, reason] of cases) {
      const out = join(root, `forged-${what.replace(/ /g, '-')}.mp4`);
      const id = await add('chunk', { ...chunk, encodeId: 'f1', output: out }, sign);
      const r = await settled(queue, id);
      assert.equal(r.state, 'failed', what);
      assert.equal(r.attempts, 1, `${what}: a refused job must not be retried`);
      assert.match(r.reason!, reason, what);
      assert.equal(existsSync(out), false, `${what}: wrote ${out}`);
      assert.equal(existsSync(join(root, 'harmless.mp4')), false);
      const lines = worker.events.filter((e) => e.jobId === id);
      assert.deepEqual(lines.map((e) => e.event), ['refused'], `${what}: one line in the log`);
      assert.equal(lines[0]!.message, r.reason);
    }
  });

  it('runs a well-formed chunk job under --root (the control: the job itself is valid)', async () => {
    const out = join(root, 'ok.mp4');
    const r = await settled(queue, await add('chunk', { ...chunk, encodeId: 'e1', output: out }));
    assert.equal(r.state, 'completed', r.reason);
    assert.equal(frameTimes(out).length, chunk.frameTimes.length);
  });

  it('refuses a chunk job whose output is outside --root: nothing written, failed once with the reason', async () => {
    const out = join(outside, 'evil.mp4');
    const id = await add('chunk', { ...chunk, encodeId: 'e2', output: out });
    const r = await settled(queue, id);
    assert.equal(r.state, 'failed');
    assert.equal(r.attempts, 1, 'a refused job must not be retried');
    assert.equal(r.reason, `refused: the chunk output ${out} is outside this worker's folders (${root}); start the worker with --root for the folder jobs use`);
    assert.equal(existsSync(out), false);
    const line = worker.events.find((e) => e.event === 'refused' && e.jobId === id);
    assert.equal(line?.message, r.reason);
  });

  it('refuses an input outside --root, and a symlink under it that points outside', async () => {
    const foreign = join(outside, 'in.mp4');
    ffmpeg(['-i', input, '-c', 'copy', foreign]);
    const r1 = await settled(queue, await add('chunk', { ...chunk, input: foreign, encodeId: 'e3', output: join(root, 'a.mp4') }));
    assert.equal(r1.state, 'failed');
    assert.match(r1.reason!, /^refused: the input .*outside\/in\.mp4 is outside this worker's folders/);
    const link = join(root, 'link');
    symlinkSync(outside, link);
    const out = join(link, 'via-link.mp4');
    const r2 = await settled(queue, await add('chunk', { ...chunk, encodeId: 'e4', output: out }));
    assert.equal(r2.state, 'failed');
    assert.match(r2.reason!, /^refused: the chunk output .*link\/via-link\.mp4 \(.*outside\/via-link\.mp4\) is outside/);
    assert.equal(existsSync(join(outside, 'via-link.mp4')), false);
    assert.ok(!existsSync(join(root, 'a.mp4')));
  });

  it('refuses raw ffmpeg text, unknown fields and relative paths as malformed', async () => {
    const out = join(root, 'raw.mp4');
    const raw = await settled(queue, await add('chunk', { ...chunk, encodeId: 'e5', output: out, inputOptions: ['-i', '/etc/passwd'], selectFilter: 'movie=/etc/passwd' }));
    assert.equal(raw.state, 'failed');
    assert.match(raw.reason!, /^refused a malformed chunk job \(data: Unrecognized keys: "inputOptions", "selectFilter"\)$/);
    const rel = await settled(queue, await add('chunk', { ...chunk, encodeId: 'e6', output: '../raw.mp4' }));
    assert.match(rel.reason!, /^refused a malformed chunk job \(output: an absolute, normalised path\)$/);
    const asm = await settled(queue, await add('assemble', { kind: 'assemble', encodeId: 'e7', input, output: out, container: 'mp4', chunks: [{ path: `${root}/x.mp4'\nfile '/etc/passwd`, durationSeconds: 1 }], videoStartSeconds: 0, tracks: [], videoOnly: true, frameCount: 25 }));
    assert.match(asm.reason!, /^refused a malformed assemble job \(chunks\[0\]\.path: no control characters\)$/);
    // Expert encoder parameters that name files (x265 csv= writes one) never reach a worker's encoder.
    const csv = join(outside, 'log.csv');
    const params = await settled(queue, await add('chunk', { ...chunk, encodeId: 'e8', output: out, encoderParams: { csv } }));
    assert.equal(params.reason, 'refused a malformed chunk job (encoderParams: csv names a file, which a worker would read or write outside its --root folders; drop it for a distributed encode)');
    const owned = await settled(queue, await add('chunk', { ...chunk, encodeId: 'e9', output: out, encoderParams: { 'aq-mode': '0' } }));
    assert.match(owned.reason!, /^refused a malformed chunk job \(encoderParams: x265.?params cannot set aq-mode=0/i);
    assert.equal(existsSync(csv), false);
    const unknown = await settled(queue, await add('shell', { kind: 'shell' }));
    assert.equal(unknown.reason, "refused a job of unknown kind 'shell'");
    assert.equal(existsSync(out), false);
    assert.ok(worker.alive);
    // The secret is in no job, no log line and no reason.
    const hex = secret.toString('utf8');
    const dump = JSON.stringify(await Promise.all((await queue.getJobs(['failed', 'completed'])).map((j) => [j.data, j.failedReason, j.returnvalue])));
    for (const [where, text] of [['jobs', dump], ['worker stdout', worker.stdout], ['worker stderr', worker.stderr]] as const) assert.ok(!text.includes(hex), `secret in ${where}`);
  });
});

describe('signed distributed encodes (real Redis, real worker and submitter processes)', { timeout: 240_000 }, () => {
  it('encodes with ROI_ENCODER_SECRET on two workers; a submitter with another secret is refused with one line and writes nothing', async () => {
    const redis = new RedisServer(await freePort());
    await redis.start();
    const shared = { ROI_ENCODER_SECRET: 'f00dfeedcafe0123456789abcdef0123' };
    const workers = [new WorkerProcess(redis.url, [], shared), new WorkerProcess(redis.url, [], shared)];
    try {
      await Promise.all(workers.map((w) => w.ready()));
      const out = join(dir, 'signed.mp4');
      // Faces (an analysis job returning a signed plan), 3 s chunks (signed chunk facts), assembly.
      const ok = await submit([SAMPLE, '-o', out, '--redis', redis.url, '--chunk-seconds', '3', '--preset', 'ultrafast'], undefined, shared);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(frameTimes(out).length, frameTimes(SAMPLE).length);
      const done = workers.flatMap((w) => w.events).filter((e) => e.event === 'done');
      assert.deepEqual([...new Set(done.map((e) => e.kind))].sort(), ['analyze', 'assemble', 'chunk']);
      assert.ok(workers.every((w) => w.events.some((e) => e.event === 'done' && e.kind === 'chunk')), 'both workers took chunks');
      for (const text of [ok.stdout, ok.stderr, ...workers.flatMap((w) => [w.stdout, w.stderr])]) assert.ok(!text.includes(shared.ROI_ENCODER_SECRET), 'the secret was printed');

      // An expert parameter naming a file is refused before any job, in one line.
      const seen = workers.map((w) => w.events.length);
      const csv = await submit([SAMPLE, '-o', join(dir, 'csv.mp4'), '--redis', redis.url, '--roi', 'none', '--x265-params', 'csv=/tmp/x.csv'], undefined, shared);
      assert.equal(csv.code, 1, csv.stderr);
      assert.equal(csv.stderr.trim(), 'roi-encode: csv names a file, which a worker would read or write outside its --root folders; drop it for a distributed encode');
      assert.deepEqual(workers.flatMap((w, i) => w.events.slice(seen[i])), [], 'a worker got a job');

      const other = join(dir, 'other-secret.mp4');
      const bad = await submit([SAMPLE, '-o', other, '--redis', redis.url, '--roi', 'none', '--preset', 'ultrafast'], undefined, { ROI_ENCODER_SECRET: 'a different secret of 32 chars!!' });
      assert.equal(bad.code, 1, bad.stderr);
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
      assert.match(bad.stderr, /^roi-encode: chunk 1\/1 \(frames 0–\d+, .*\) failed after 1 attempt: refused: the signature of the chunk job \S+ does not verify/);
      assert.equal(existsSync(other), false);
      assert.deepEqual(leftovers(dir), []);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await redis.stop();
    }
  });

  it('refuses a result the worker did not sign: a rogue worker answering the analysis job gets nothing written', async () => {
    const redis = new RedisServer(await freePort());
    await redis.start();
    const rogue = new Worker(QUEUE, async () => ({ value: { version: 1 }, signature: '0'.repeat(64) }), { connection: { host: '127.0.0.1', port: redis.port }, prefix: PREFIX });
    try {
      const out = join(dir, 'rogue.mp4');
      const r = await submit([SAMPLE, '-o', out, '--redis', redis.url, '--preset', 'ultrafast']);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr.trim(), 'roi-encode: the result of the analysis job does not verify (not signed with this secret); nothing was written');
      assert.equal(existsSync(out), false);
      assert.deepEqual(leftovers(dir), []);
    } finally {
      await rogue.close();
      await redis.stop();
    }
  });
});

describe('the secret file', () => {
  it('a worker refuses a --secret-file that is missing, readable by others or too short, in one line, before connecting', async () => {
    const port = await freePort();
    const open = join(dir, 'secret-0644');
    writeFileSync(open, `${'ab'.repeat(32)}\n`, { mode: 0o644 });
    chmodSync(open, 0o644);
    const short = join(dir, 'secret-short');
    writeFileSync(short, 'too short\n', { mode: 0o600 });
    for (const [file, expected] of [
      [join(dir, 'no-such-secret'), /^roi-encode: the secret file .*no-such-secret does not exist \(copy it from the machine whose secret the workers use\)$/],
      [open, /^roi-encode: the secret file .*secret-0644 can be read by others \(mode 644\); run: chmod 600 .*secret-0644$/],
      [short, /^roi-encode: the secret in .*secret-short is 9 characters; use at least 16 /],
    ] as const) {
      const w = new WorkerProcess(`redis://127.0.0.1:${port}`, ['--secret-file', file, '--root', dir]);
      assert.equal(await w.exited, 1);
      assert.equal(w.stderr.trim().split('\n').length, 1, w.stderr);
      assert.match(w.stderr.trim(), expected);
      assert.ok(!w.stderr.includes('ab'.repeat(8)), 'the secret is never printed');
    }
  });

  it('an encode without --redis refuses --secret-file and --chunk-seconds instead of ignoring them', () => {
    for (const [flag, value] of [['--secret-file', join(dir, 'any')], ['--chunk-seconds', '5']] as const) {
      const out = join(dir, `stray${flag}.mp4`);
      const r = cli([SAMPLE, '-o', out, flag, value, '--roi', 'none']);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim(), `roi-encode: ${flag} only applies to an encode sent to workers: drop it, or use --redis`);
      assert.ok(!existsSync(out));
    }
  });
});

describe('worker --root', () => {
  it('refuses to start in / without --root, and with a --root that is not a folder', async () => {
    const port = await freePort();
    for (const [args, cwd, expected] of [
      [[], '/', /^roi-encode: the worker was started in \/, the whole filesystem; give the shared folder jobs use with --root, e\.g\. --root \/shared$/],
      [['--root', join(dir, 'missing')], undefined, /^roi-encode: --root .*missing is not a folder this worker can see$/],
    ] as const) {
      const w = new WorkerProcess(`redis://127.0.0.1:${port}`, [...args], {}, cwd);
      const code = await w.exited;
      assert.equal(code, 1);
      const lines = w.stdout.trim().split('\n');
      assert.equal(lines.length, 1, w.stdout);
      assert.match(w.stderr.trim(), expected);
    }
  });
});
