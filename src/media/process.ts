import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { AbortError, ProcessError, RoiError } from './errors.js';

/**
 * The one process runner for ffmpeg and ffprobe. Every failure names the command and carries a
 * bounded stderr tail; an AbortSignal kills the child; stdout is either collected, split into
 * lines, or handed to a consumer that reads it with backpressure (raw video frames).
 */
export interface RunOptions {
  signal?: AbortSignal;
  /** Reads stdout as a stream; the child is paused while the consumer is busy. */
  consumeStdout?: (stdout: Readable) => Promise<void>;
  /**
   * Reads a second output stream, the child's fd 3 (ffmpeg writes there as `pipe:3`), with
   * backpressure, alongside stdout: the face-quality target keeps the source frames its encode decodes.
   */
  consumeFd3?: (fd3: Readable) => Promise<void>;
  /** Called for each stdout line (used for `-progress pipe:1`). Ignored with consumeStdout. */
  onStdoutLine?: (line: string) => void;
  /** Called for each stderr line, before it goes into the tail. */
  onStderrLine?: (line: string) => void;
  /** Short description for error messages, e.g. "decoding frames". */
  what?: string;
  /** Piped into the child's stdin (another process's output); without it stdin is closed. */
  stdin?: Readable;
}

export interface RunResult {
  /** Collected stdout when neither consumeStdout nor onStdoutLine is given. */
  stdout: string;
  stderrTail: string;
}

const TAIL_LINES = 25;
const TAIL_CHARS = 4000;

/** Keeps the last lines of a stream within a line and character budget. */
class LineTail {
  private lines: string[] = [];
  private partial = '';
  constructor(private readonly onLine?: (line: string) => void) {}
  push(chunk: string): void {
    const parts = (this.partial + chunk).split(/\r?\n|\r/);
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.add(line);
  }
  end(): void {
    if (this.partial) this.add(this.partial);
    this.partial = '';
  }
  private add(line: string): void {
    this.onLine?.(line);
    if (!line.trim()) return;
    this.lines.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
    if (this.lines.length > TAIL_LINES) this.lines.shift();
  }
  text(): string {
    const text = this.lines.join('\n');
    return text.length > TAIL_CHARS ? text.slice(-TAIL_CHARS) : text;
  }
}

export function quoteCommand(command: string, args: readonly string[]): string {
  return [command, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/**
 * ffmpeg's closing lines that only say that something failed ("Error initializing output stream 0:0
 * --", "Conversion failed!"): the cause is on an earlier line.
 */
const GENERIC_FAILURE = /^(Error initializing output stream|Conversion failed|Could not write header for output file|Error while opening encoder for output stream|Error while filtering|Failed to inject frame into filter network|Error while processing the decoded data|Nothing was written into output file|Exiting normally)/i;
const WARNING = /\[warning\]|^x265 \[info\]/i;

/**
 * The most specific meaningful stderr line, for one-line error messages: the last one that is not a
 * generic "it failed" or a warning, without ffmpeg's "[mp4 @ 0x55…]" prefix.
 */
export function lastErrorLine(tail: string): string {
  const lines = tail.split('\n').map((l) => l.trim().replace(/^\[[\w:. -]+ @ 0x[0-9a-f]+\]\s*/i, '')).filter(Boolean);
  const specific = lines.filter((l) => !GENERIC_FAILURE.test(l) && !WARNING.test(l));
  return specific[specific.length - 1] ?? lines[lines.length - 1] ?? 'no error output';
}

export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(new AbortError());
  const printable = quoteCommand(command, args);
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(command, args, { stdio: options.consumeFd3 ? ['pipe', 'pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe'] });
    // A child that exits early closes its stdin: its exit status says why, not the broken pipe.
    child.stdin.on('error', () => undefined);
    if (options.stdin) options.stdin.pipe(child.stdin);
    else child.stdin.end();
    const tail = new LineTail(options.onStderrLine);
    const outLines = options.onStdoutLine ? new LineTail(options.onStdoutLine) : undefined;
    let stdout = '';
    let consumerError: unknown;
    const consumers: Promise<void>[] = [];
    let aborted = false;
    let settled = false;

    const onAbort = () => {
      aborted = true;
      child.kill('SIGKILL');
      // A consumer may have stopped reading (stdout piped into a process that is gone): a paused
      // stream never ends, so neither would the consumer nor this run. Closing the outputs ends both.
      child.stdout.destroy();
      (child.stdio[3] as Readable | null | undefined)?.destroy();
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => tail.push(chunk));

    const consume = (read: (stream: Readable) => Promise<void>, stream: Readable) => {
      consumers.push(read(stream).then(
        // A consumer that returns before the end still lets the child finish: the rest is drained.
        () => void stream.resume(),
        (error: unknown) => {
          consumerError ??= error;
          child.kill('SIGKILL');
        },
      ));
    };
    if (options.consumeFd3) consume(options.consumeFd3, child.stdio[3] as Readable);
    if (options.consumeStdout) {
      consume(options.consumeStdout, child.stdout);
    } else {
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        if (outLines) outLines.push(chunk);
        else stdout += chunk;
      });
    }

    const finish = (error: unknown, result?: RunResult) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve(result as RunResult);
    };

    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') {
        finish(new RoiError('BINARY_NOT_FOUND', `${command} was not found; install ffmpeg (Debian: apt-get install -y ffmpeg) or set FFMPEG_PATH`));
      } else {
        finish(new ProcessError(`could not start ${command}: ${error.message}`, printable, null, ''));
      }
    });

    child.on('close', (code, killedBy) => {
      tail.end();
      outLines?.end();
      void Promise.all(consumers).then(() => {
        const stderrTail = tail.text();
        if (aborted) return finish(new AbortError());
        if (consumerError) return finish(consumerError);
        if (code !== 0) {
          const what = options.what ? `${options.what}: ` : '';
          const why = killedBy ? `killed by ${killedBy}` : lastErrorLine(stderrTail);
          return finish(new ProcessError(`${what}${command.split('/').pop()} failed (${why})`, printable, code, stderrTail));
        }
        finish(undefined, { stdout, stderrTail });
      });
    });
  });
}
