// Analysis speed against a plain x265 encode, as a user meets them: each is a whole process
// (`node dist/cli.js analyze` and `ffmpeg -c:v libx265 -preset medium`), run in turn on the same clip
// in the same run, so the ratio holds when the shared machine's speed drifts. Medians of a few runs.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../src/plan/plan.js';

export interface SpeedClip {
  name: string;
  file: string;
}

export interface SpeedVariant {
  name: string;
  args: string[];
  /** Timed runs (median quoted); 1 for variants that are only context. */
  runs: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

function wall(command: string, args: string[]): number {
  const t = performance.now();
  const r = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${r.stderr.trim().split('\n').pop()}`);
  return (performance.now() - t) / 1000;
}

export interface SpeedResult {
  plan: Plan;
  analysisSeconds: number;
  x265Seconds: number;
  ratio: number;
  runs: number;
}

/**
 * Times `roi-encode analyze` (built CLI) and a plain x265 medium encode of `clip` alternately,
 * `variant.runs` times each, and returns the medians with the last plan written.
 */
export function timeAnalysis(clip: SpeedClip, variant: SpeedVariant, out: string): SpeedResult {
  const planFile = join(out, `${clip.name.replace(/\W+/g, '-')}-${variant.name.replace(/\W+/g, '-')}.plan.json`);
  const analysis: number[] = [];
  const x265: number[] = [];
  for (let i = 0; i < variant.runs; i++) {
    x265.push(wall('ffmpeg', ['-v', 'error', '-y', '-i', clip.file, '-an', '-c:v', 'libx265', '-preset', 'medium', '-x265-params', 'log-level=error', join(out, 'plain.mp4')]));
    analysis.push(wall(process.execPath, [join('dist', 'cli.js'), 'analyze', clip.file, '-o', planFile, '--force', ...variant.args]));
  }
  const plan = JSON.parse(readFileSync(planFile, 'utf8')) as Plan;
  const analysisSeconds = median(analysis);
  const x265Seconds = median(x265);
  return { plan, analysisSeconds, x265Seconds, ratio: analysisSeconds / x265Seconds, runs: variant.runs };
}

/** The CLI the speed runs time is the built one: build it from the current source first. */
export function buildCli(): void {
  execFileSync(process.execPath, [join('node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
