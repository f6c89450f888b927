import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { CLI, ROOT, workDir } from './helpers.js';

/**
 * Real Redis servers and real `roi-encode worker` / submitter processes for the distributed tests.
 * Nothing is mocked: each test file starts its own redis-server on a free port and stops it.
 */

/**
 * Points HOME at a fresh folder for this test process and every process it spawns, so the default
 * secret file (~/.config/roi-encoder/secret) is made there and never in the real home.
 */
/** tsx's loader by URL, so a process started in another folder (even /) still finds it. */
const TSX = import.meta.resolve('tsx');

export function isolateHome(name: string): string {
  const home = workDir(`${name}-home`);
  process.env.HOME = home;
  delete process.env.ROI_ENCODER_SECRET;
  return home;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export async function waitUntil(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export class RedisServer {
  proc?: ChildProcess;
  output = '';
  /** `extra`: more redis-server arguments (e.g. --requirepass, TLS settings). */
  constructor(readonly port: number, readonly extra: string[] = [], readonly scheme: 'redis' | 'rediss' = 'redis') {}
  get url() {
    return `${this.scheme}://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    const proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...this.extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    let out = '';
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => (out += c));
    await waitUntil('redis-server to start', () => out.includes('Ready to accept connections') || proc.exitCode !== null, 10_000);
    this.output = out;
    assert.equal(proc.exitCode, null, out);
  }
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    const closed = new Promise((r) => proc.once('close', r));
    proc.kill('SIGTERM');
    await closed;
  }
}

export interface WorkerLine { event: string; job?: string; jobId?: string; kind?: string; message?: string; at: number }

export class WorkerProcess {
  readonly events: WorkerLine[] = [];
  stderr = '';
  stdout = '';
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  constructor(url: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}, cwd = ROOT) {
    this.proc = spawn(process.execPath, ['--import', TSX, CLI, 'worker', '--redis', url, '--json', ...extra], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let pending = '';
    this.proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
      this.stdout += c;
      const lines = (pending + c).split('\n');
      pending = lines.pop()!;
      for (const l of lines) if (l.trim()) this.events.push({ ...(JSON.parse(l) as Omit<WorkerLine, 'at'>), at: Date.now() });
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (c: string) => (this.stderr += c));
    this.exited = new Promise((resolve) => this.proc.once('close', resolve));
  }
  ready(): Promise<void> {
    return waitUntil('a worker to connect', () => this.events.some((e) => e.event === 'ready'));
  }
  /** The chunk this worker has been encoding for at least `ms`, if any. */
  chunkInProgress(ms: number): WorkerLine | undefined {
    const started = this.events.filter((e) => e.event === 'start' && e.kind === 'chunk').at(-1);
    if (!started || Date.now() - started.at < ms) return undefined;
    return this.events.some((e) => e.event !== 'start' && e.jobId === started.jobId && e.at >= started.at) ? undefined : started;
  }
  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }
  async stop(): Promise<void> {
    if (!this.alive) return;
    this.proc.kill('SIGTERM');
    await this.exited;
  }
}

export interface Submit { code: number | null; stdout: string; stderr: string; events: Record<string, unknown>[] }

/** Runs the CLI as a submitter; `onEvent` may signal it (its own process group, like a terminal's Ctrl-C). */
export function submit(args: string[], onEvent?: (e: Record<string, unknown>, child: ChildProcess, stderr: () => string) => void, env: NodeJS.ProcessEnv = {}): Promise<Submit> {
  const child = spawn(process.execPath, ['--import', TSX, CLI, ...args, '--json'], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '', stderr = '', pending = '';
  const events: Record<string, unknown>[] = [];
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
    const lines = (pending + c).split('\n');
    pending = lines.pop()!;
    for (const l of lines) {
      if (!l.trim()) continue;
      const e = JSON.parse(l) as Record<string, unknown>;
      events.push(e);
      onEvent?.(e, child, () => stderr);
    }
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr, events })));
}

/** Leftovers of an encode into `folder`: temporary outputs and chunk folders. */
export function leftovers(folder: string): string[] {
  return readdirSync(folder).filter((f) => f.includes('.partial') || f.endsWith('.chunks'));
}
