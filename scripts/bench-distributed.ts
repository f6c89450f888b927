// The distributed section of `npm run bench` (alone: `npm run bench -- --only distributed`).
// Throughput of one and two `roi-encode worker` processes on a long clip, x265 pinned to one thread
// per worker (pools=1, frame-threads=1) so two workers on two cores is a fair test, and the size and
// face-PSNR cost of chunking against one encode of the same plan. Starts its own redis-server.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { analyze } from '../src/analysis/analyze.js';
import { encode } from '../src/runners/encode.js';
import { resolveBinaries } from '../src/media/binaries.js';
import { measureQuality } from '../src/report/metrics.js';

const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

function waitForOutput(proc: ChildProcess, stream: 'stdout' | 'stderr', text: string): Promise<void> {
  return new Promise((res, rej) => {
    let seen = '';
    const output = proc[stream]!.setEncoding('utf8');
    // Once found, stop collecting and only drain: a worker's --json events would otherwise pile up
    // here and be searched again on every chunk of output, taking CPU from the workers being timed.
    const onData = (c: string) => {
      seen += c;
      if (!seen.includes(text)) return;
      output.off('data', onData);
      output.resume();
      res();
    };
    output.on('data', onData);
    proc.once('close', () => rej(new Error(`${proc.spawnargs.join(' ')} exited before printing '${text}': ${seen}`)));
  });
}

function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    proc.once('close', () => res());
    proc.kill('SIGTERM');
  });
}

export async function benchDistributed(out: string, head: string): Promise<Record<string, unknown>> {
  const seconds = Number(process.env.BENCH_DISTRIBUTED_SECONDS ?? 90);
  const chunkSeconds = Number(process.env.BENCH_DISTRIBUTED_CHUNK_SECONDS ?? 15);
  const clip = resolve(out, `distributed-${seconds}s.mp4`);
  if (!existsSync(clip)) {
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-stream_loop', '-1', '-i', head, '-t', String(seconds), '-an', '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '14', clip]);
  }
  const bins = resolveBinaries();
  // The bench's own secret (its workers inherit the environment), so it never makes or reads the
  // user's ~/.config/roi-encoder/secret.
  process.env.ROI_ENCODER_SECRET ??= randomBytes(32).toString('hex');
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await waitForOutput(redis, 'stdout', 'Ready to accept connections');
  const result: Record<string, unknown> = { clip, seconds, chunkSeconds, preset: 'medium', x265: 'pools=1:frame-threads=1 per worker' };
  try {
    const plan = await analyze(clip);
    const runs: Record<string, unknown>[] = [];
    let last: { output: string; bytes: number } | undefined;
    for (const count of [1, 2]) {
      const workers = Array.from({ length: count }, () =>
        spawn(process.execPath, ['--import', 'tsx', join('src', 'cli.ts'), 'worker', '--redis', url, '--threads', '1', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] }));
      workers.forEach((w) => w.stderr!.resume());
      await Promise.all(workers.map((w) => waitForOutput(w, 'stdout', '"event":"ready"')));
      const output = join(out, `distributed-${count}-workers.mp4`);
      const r = await encode(clip, output, { plan, redis: url, chunkSeconds, force: true, videoOnly: true });
      await Promise.all(workers.map(stop));
      runs.push({ workers: count, wallSeconds: round(r.encodeSeconds), fps: round(r.frames / r.encodeSeconds, 1) });
      console.error(`distributed: ${count} worker(s): ${r.frames} frames in ${r.encodeSeconds.toFixed(1)} s`);
      last = { output, bytes: r.bytes };
    }
    const ratio = (runs[1]!.fps as number) / (runs[0]!.fps as number);
    // Cost of chunking: one ordinary encode of the same plan (x265's own threading) against the chunked one.
    const oneFile = join(out, 'distributed-one-encode.mp4');
    const one = await encode(clip, oneFile, { plan, force: true, videoOnly: true });
    const [qOne, qChunked] = [await measureQuality(clip, oneFile, plan, bins), await measureQuality(clip, last!.output, plan, bins)];
    Object.assign(result, {
      throughput: runs,
      twoWorkerSpeedup: round(ratio),
      oneEncode: { bytes: one.bytes, facePsnr: round(qOne.facePsnr, 3), psnr: round(qOne.psnr, 3), encodeSeconds: round(one.encodeSeconds) },
      chunked: { bytes: last!.bytes, facePsnr: round(qChunked.facePsnr, 3), psnr: round(qChunked.psnr, 3) },
      chunkingCost: {
        bytesPercent: round((100 * (last!.bytes - one.bytes)) / one.bytes, 2),
        facePsnrDb: round(qChunked.facePsnr - qOne.facePsnr, 3),
        psnrDb: round(qChunked.psnr - qOne.psnr, 3),
      },
    });
    console.log('\nDistributed encoding (BullMQ workers, x265 medium, one thread per worker)');
    console.table(runs);
    console.log(`two workers / one: ${round(ratio)}x; chunking cost: ${(result.chunkingCost as { bytesPercent: number }).bytesPercent}% bytes, ${(result.chunkingCost as { facePsnrDb: number }).facePsnrDb} dB face PSNR`);
  } finally {
    await stop(redis);
  }
  return result;
}
