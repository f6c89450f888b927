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

/** Turns "done of total" updates into ProgressEvents with rate and ETA. */
export class ProgressMeter {
  private readonly started = performance.now();
  constructor(
    private readonly stage: string,
    private readonly total: number,
    private readonly listener: ProgressListener | undefined,
    private readonly label?: string,
  ) {}

  update(done: number): void {
    if (!this.listener) return;
    const elapsedSeconds = (performance.now() - this.started) / 1000;
    const fps = elapsedSeconds > 0 ? done / elapsedSeconds : 0;
    const clamped = Math.min(done, this.total);
    this.listener({
      stage: this.stage,
      ...(this.label ? { label: this.label } : {}),
      done: clamped,
      total: this.total,
      percent: this.total ? Math.min(100, (100 * clamped) / this.total) : 100,
      fps,
      elapsedSeconds,
      ...(fps > 0 && clamped > 0 ? { etaSeconds: (this.total - clamped) / fps } : {}),
    });
  }
}
