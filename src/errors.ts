/**
 * Errors that reach users. Every message is one line that says what is wrong and, where it can,
 * what to do; the CLI prints `message` alone, never a stack trace.
 */
export class RoiError extends Error {
  override name = 'RoiError';
  /** Machine-readable kind, stable across versions (e.g. 'INVALID_OPTION', 'INPUT_NOT_FOUND'). */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
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
