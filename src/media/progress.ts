/** Progress reported by long-running library calls (and shown by the CLI). */
export interface ProgressEvent {
  /** What is running: 'probe', 'analyze', 'encode', 'measure', … */
  stage: string;
  /** Free-text detail, e.g. which encode of a comparison. */
  label?: string;
  /** Work done and total, in source frames. */
  done: number;
  total: number;
  /** 0–100. */
  percent: number;
  /** Source frames per second so far. */
  fps: number;
  elapsedSeconds: number;
  /** Estimated seconds left in this stage, when known. */
  etaSeconds?: number;
}

export type ProgressListener = (event: ProgressEvent) => void;

/**
 * Turns "done of total" updates into ProgressEvents with rate and ETA.
 *
 * The ETA comes from the rate since the first update that reported work done, not since the meter
 * started: a process's start-up (ffmpeg opening files, x265 allocating its lookahead) is not part of
 * the work still to do, and counting it made the first ETA of an encode many times too long. It is
 * given once that rate has been measured over at least MIN_RATE_SECONDS.
 */
const MIN_RATE_SECONDS = 0.4;

export class ProgressMeter {
  private readonly started: number;
  private first?: { at: number; done: number };
  constructor(
    private readonly stage: string,
    private readonly total: number,
    private readonly listener: ProgressListener | undefined,
    private readonly label?: string,
  ) {
    this.started = performance.now();
  }

  update(done: number): void {
    if (!this.listener) return;
    const at = performance.now();
    const elapsedSeconds = (at - this.started) / 1000;
    const fps = elapsedSeconds > 0 ? done / elapsedSeconds : 0;
    const clamped = Math.min(done, this.total);
    if (!this.first && clamped > 0) this.first = { at, done: clamped };
    let etaSeconds: number | undefined;
    if (clamped >= this.total) etaSeconds = 0;
    else if (this.first && at - this.first.at >= MIN_RATE_SECONDS * 1000 && clamped > this.first.done) {
      const rate = (clamped - this.first.done) / ((at - this.first.at) / 1000);
      etaSeconds = (this.total - clamped) / rate;
    }
    this.listener({
      stage: this.stage,
      ...(this.label ? { label: this.label } : {}),
      done: clamped,
      total: this.total,
      percent: this.total ? Math.min(100, (100 * clamped) / this.total) : 100,
      fps,
      elapsedSeconds,
      ...(etaSeconds !== undefined ? { etaSeconds } : {}),
    });
  }
}
