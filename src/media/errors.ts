/**
 * Errors that reach users. Every message is one line that says what is wrong and, where it can,
 * what to do; the CLI prints `message` alone, never a stack trace.
 */
export class RoiError extends Error {
  override name = 'RoiError';
  /** Machine-readable kind, stable across versions (e.g. 'INVALID_OPTION', 'INPUT_NOT_FOUND'). */
  readonly code: string;
  /**
   * The library option the message is about (e.g. 'crf', 'force'), named as the library names it; the
   * CLI puts its own flag (--crf, --force) in its place.
   */
  readonly option?: string;
  constructor(code: string, message: string, options?: { cause?: unknown; option?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.option) this.option = options.option;
  }
}

/** A child process (ffmpeg, ffprobe) failed. Carries the command line and a bounded stderr tail. */
export class ProcessError extends RoiError {
  override name = 'ProcessError';
  readonly command: string;
  readonly exitCode: number | null;
  readonly stderrTail: string;
  constructor(message: string, command: string, exitCode: number | null, stderrTail: string) {
    super('PROCESS_FAILED', message);
    this.command = command;
    this.exitCode = exitCode;
    this.stderrTail = stderrTail;
  }
}

/** Thrown when an AbortSignal fires; `name` is 'AbortError' as in the web platform. */
export class AbortError extends Error {
  override name = 'AbortError';
  readonly code = 'ABORTED';
  constructor(message = 'The operation was aborted') {
    super(message);
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError();
}
