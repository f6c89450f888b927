import { emitJson } from './output.js';
import { startWorker, type WorkerEvent } from '../distributed/worker.js';
import { RoiError } from '../media/errors.js';
import { interruptSignal } from './run.js';

/**
 * `roi-encode worker`: runs a worker until SIGINT/SIGTERM, printing one line per job (NDJSON with
 * --json). A signal hands the current jobs back to the queue and exits 0; a second one exits at once.
 */
export async function runWorkerCommand(argv: Record<string, unknown>): Promise<void> {
  const json = Boolean(argv.json);
  const redis = (argv.redis as string | undefined) ?? process.env.REDIS_URL;
  if (!redis) throw new RoiError('MISSING_REDIS', 'give the Redis address with --redis redis://host:6379 (or set REDIS_URL)');
  const signal = interruptSignal();
  const print = (e: WorkerEvent) => {
    if (json) {
      emitJson({ ...e, type: 'worker', event: e.type });
      return;
    }
    const text = e.job
      ? `${e.type} ${e.job}${e.seconds !== undefined ? ` in ${e.seconds.toFixed(1)} s` : ''}${e.message ? `: ${e.message}` : ''}`
      : `${e.type === 'redis-error' ? 'redis: ' : ''}${e.message ?? e.type}`;
    process.stderr.write(`roi-encode worker: ${text}\n`);
  };
  const root = argv.root as string | string[] | undefined;
  const worker = await startWorker({
    redis,
    roots: root === undefined ? undefined : [root].flat(),
    secretFile: argv['secret-file'] as string | undefined,
    concurrency: argv.concurrency as number | undefined,
    threads: argv.threads as number | undefined,
    ffmpegPath: argv.ffmpeg as string | undefined,
    signal,
    onEvent: print,
  });
  await worker.closed;
  // BullMQ's own connections may still be retrying an unreachable Redis; the worker is done.
  process.exit(0);
}
