import type { ProgressEvent, ProgressListener } from '../media/progress.js';

/**
 * What the CLI prints while it works: a one-line progress display on stderr when stderr is a
 * terminal, or NDJSON events on stdout with --json. Nothing when neither applies (pipes, CI logs).
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export function formatProgress(e: ProgressEvent): string {
  const label = e.label ? `${e.stage} ${e.label}` : e.stage;
  const eta = e.etaSeconds !== undefined ? ` ETA ${formatDuration(e.etaSeconds)}` : '';
  return `${label} ${e.percent.toFixed(0).padStart(3)}%  ${e.fps.toFixed(1)} fps${eta}`;
}

export function emitJson(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

export class ProgressDisplay {
  private lastDraw = 0;
  private drawn = false;
  readonly listener: ProgressListener | undefined;

  constructor(json: boolean) {
    if (json) {
      let last = 0;
      this.listener = (e) => {
        const now = performance.now();
        // Bounded rate so a fast stage does not flood the consumer.
        if (now - last < 250 && e.percent < 100) return;
        last = now;
        const r1 = (v: number) => Math.round(v * 10) / 10;
        emitJson({ type: 'progress', ...e, percent: r1(e.percent), fps: r1(e.fps), elapsedSeconds: r1(e.elapsedSeconds), ...(e.etaSeconds !== undefined ? { etaSeconds: r1(e.etaSeconds) } : {}) });
      };
    } else if (process.stderr.isTTY) {
      this.listener = (e) => {
        const now = performance.now();
        if (now - this.lastDraw < 100 && e.percent < 100) return;
        this.lastDraw = now;
        const width = process.stderr.columns || 80;
        process.stderr.write(`\r${formatProgress(e).slice(0, width - 1).padEnd(width - 1)}`);
        this.drawn = true;
      };
    }
  }

  /** Clears the progress line before other output. */
  clear(): void {
    if (this.drawn && process.stderr.isTTY) process.stderr.write(`\r${' '.repeat((process.stderr.columns || 80) - 1)}\r`);
    this.drawn = false;
  }
}
