import { writeFile } from 'node:fs/promises';
import type { Binaries } from '../media/binaries.js';
import { run } from '../media/process.js';
import { writeAtomically } from '../media/output-file.js';
import { ProgressMeter, type ProgressListener } from '../progress.js';
import type { Plan, RegionKind } from '../plan.js';

/**
 * A video a person can check the analysis against: each segment's regions filled in a translucent
 * colour whose strength follows their importance (a heatmap on the block grid), and the raw
 * detections outlined from each sample until the next (faces lime, salient regions yellow; salient
 * regions of the plan are cyan, faces red).
 */
const KIND_COLOUR: Record<RegionKind, string> = { face: 'red', saliency: 'cyan', background: 'black' };

export function debugFilter(plan: Plan): string {
  const filters: string[] = [];
  for (const seg of plan.segments) {
    const enable = `between(n\\,${seg.startFrame}\\,${seg.endFrame - 1})`;
    // Draw the least important first so the most important ends on top.
    for (const r of [...seg.regions].reverse()) {
      if (r.kind === 'background') continue;
      const alpha = (0.1 + 0.3 * (r.importance ?? 0.5)).toFixed(2);
      filters.push(`drawbox=x=${r.x}:y=${r.y}:w=${r.w}:h=${r.h}:color=${KIND_COLOUR[r.kind]}@${alpha}:t=fill:enable='${enable}'`);
    }
  }
  plan.detections.forEach((d, i) => {
    const end = (plan.detections[i + 1]?.frame ?? plan.input.frameCount) - 1;
    for (const f of d.faces) {
      filters.push(`drawbox=x=${f.x}:y=${f.y}:w=${f.w}:h=${f.h}:color=lime@0.9:t=2:enable='between(n\\,${d.frame}\\,${end})'`);
    }
    for (const f of d.salient ?? []) {
      filters.push(`drawbox=x=${f.x}:y=${f.y}:w=${f.w}:h=${f.h}:color=yellow@0.9:t=2:enable='between(n\\,${d.frame}\\,${end})'`);
    }
  });
  filters.push('format=yuv420p');
  return filters.join(',\n');
}

export async function renderDebugVideo(plan: Plan, output: string, bins: Binaries, options: { signal?: AbortSignal; onProgress?: ProgressListener; filterScript: string }): Promise<void> {
  await writeFile(options.filterScript, debugFilter(plan));
  const meter = new ProgressMeter('debug-video', plan.input.frameCount, options.onProgress);
  await writeAtomically(output, (temp) =>
    run(bins.ffmpeg, [
      '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error', '-y',
      '-noautorotate', '-i', plan.input.path,
      '-filter_script:v', options.filterScript,
      '-map', '0:v:0', '-fps_mode', 'passthrough',
      '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23',
      '-progress', 'pipe:1',
      temp,
    ], {
      signal: options.signal,
      what: 'rendering the debug video',
      onStdoutLine: (line) => {
        const m = /^frame=(\d+)/.exec(line);
        if (m) meter.update(Number(m[1]));
      },
    }),
  );
}
