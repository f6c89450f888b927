// The face-quality target's bench section (npm run bench -- --only match): for each dev clip,
// `roi-encode --match-crf 23` against a uniform CRF 23 encode, both timed as whole CLI processes in
// the same run and measured on the whole video with the same face masks.
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { analyze } from '../src/analysis/analyze.js';
import type { Binaries } from '../src/media/binaries.js';
import { videoStreamBytes } from '../src/media/probe.js';
import { measureQuality } from '../src/report/metrics.js';

const round = (v: number, d = 2) => (Number.isFinite(v) ? Math.round(v * 10 ** d) / 10 ** d : null);

function timedCli(args: string[]): [string, number] {
  const t = performance.now();
  const stdout = execFileSync(process.execPath, [join('dist', 'cli.js'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return [stdout, (performance.now() - t) / 1000];
}

export async function benchMatch(clips: { name: string; file: string }[], out: string, bins: Binaries, crf = 23): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for (const clip of clips) {
    console.error(`== match: ${clip.name}`);
    const uniformFile = join(out, `${clip.name}-uniform-${crf}.mp4`);
    const matchFile = join(out, `${clip.name}-match-${crf}.mp4`);
    const [, uniformSeconds] = timedCli([clip.file, '-o', uniformFile, '--roi', 'none', '--crf', String(crf), '--force', '--json']);
    const [stdout, matchSeconds] = timedCli([clip.file, '-o', matchFile, '--match-crf', String(crf), '--force', '--json']);
    const done = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.type === 'done')!;
    const target = done.target as { crf: number; sampleTries: number; corrected: boolean; reference: { facePsnr: number }; predicted: { sizeRatio: number }; samples: { share: number }; seconds: Record<'analysis' | 'search' | 'encode' | 'measure', number> };
    const plan = await analyze(clip.file);
    const [qu, qm] = [await measureQuality(clip.file, uniformFile, plan, bins), await measureQuality(clip.file, matchFile, plan, bins)];
    const [bu, bm] = [(await videoStreamBytes(uniformFile, bins)).bytes, (await videoStreamBytes(matchFile, bins)).bytes];
    rows.push({
      clip: clip.name,
      'chosen CRF': target.crf,
      'sample tries': target.sampleTries,
      corrected: target.corrected,
      'sample share': target.samples.share,
      'face PSNR uniform': round(qu.facePsnr),
      'face PSNR match': round(qm.facePsnr),
      'Δ face PSNR': round(qm.facePsnr - qu.facePsnr),
      'reference estimate error': round(target.reference.facePsnr - qu.facePsnr),
      'Δ face SSIM': round(qm.faceSsim - qu.faceSsim, 4),
      'size ratio': round(bm / bu, 3),
      'predicted size ratio': target.predicted.sizeRatio,
      'file ratio': round(statSync(matchFile).size / statSync(uniformFile).size, 3),
      'uniform s': round(uniformSeconds),
      'match s': round(matchSeconds),
      'time ratio': round(matchSeconds / uniformSeconds),
      // The match run's phases (wall seconds): analysis, sample search, final encode, whole-output face measurement.
      'analysis s': target.seconds.analysis,
      'search s': target.seconds.search,
      'encode s': target.seconds.encode,
      'measure s': target.seconds.measure,
    });
  }
  return rows;
}
