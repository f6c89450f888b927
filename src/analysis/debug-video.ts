import { writeFile } from 'node:fs/promises';
import type { Binaries } from '../media/binaries.js';
import { run } from '../media/process.js';
import { writeAtomically } from '../media/output-file.js';
import { ProgressMeter, type ProgressListener } from '../media/progress.js';
import type { Plan, RegionKind } from '../plan/plan.js';
import { RoiError } from '../media/errors.js';
import { segmentedGraph, type GraphPiece } from '../media/segmented-graph.js';
import { probeVideo } from '../media/probe.js';

/**
 * A video a person can check the analysis against: each segment's regions filled in a translucent
 * colour whose strength follows their importance (a heatmap on the block grid), and the raw
 * detections outlined from each sample until the next (faces lime, salient regions yellow; salient
 * regions of the plan are cyan, faces red).
 */
const KIND_COLOUR: Record<RegionKind, string> = { face: 'red', saliency: 'cyan', background: 'black' };

/**
 * Per plan segment, the drawbox filters its frames go through: the segment's regions, and each
 * detection's box on the frames from its sample to the next that fall in the segment (counted from
 * the segment's first frame, as its filters see them). One drawbox per detection over the whole
 * video would make every frame evaluate thousands of them: a 10-minute clip took 215 s to render.
 */
export function debugPieces(plan: Plan): GraphPiece[] {
  const spans = plan.detections.map((d, i) => ({ d, end: (plan.detections[i + 1]?.frame ?? plan.input.frameCount) - 1 }));
  let first = 0;
  return plan.segments.map((seg) => {
    const chain: string[] = [];
    // Draw the least important first so the most important ends on top.
    for (const r of [...seg.regions].reverse()) {
      if (r.kind === 'background') continue;
      const alpha = (0.1 + 0.3 * (r.importance ?? 0.5)).toFixed(2);
      chain.push(`drawbox=x=${r.x}:y=${r.y}:w=${r.w}:h=${r.h}:color=${KIND_COLOUR[r.kind]}@${alpha}:t=fill`);
    }
    while (first < spans.length && spans[first]!.end < seg.startFrame) first++;
    for (let i = first; i < spans.length && spans[i]!.d.frame < seg.endFrame; i++) {
      const { d, end } = spans[i]!;
      const enable = `between(n\\,${Math.max(d.frame, seg.startFrame) - seg.startFrame}\\,${Math.min(end, seg.endFrame - 1) - seg.startFrame})`;
      for (const f of d.faces) chain.push(`drawbox=x=${f.x}:y=${f.y}:w=${f.w}:h=${f.h}:color=lime@0.9:t=2:enable='${enable}'`);
      for (const f of d.salient ?? []) chain.push(`drawbox=x=${f.x}:y=${f.y}:w=${f.w}:h=${f.h}:color=yellow@0.9:t=2:enable='${enable}'`);
    }
    return { startFrame: seg.startFrame, endFrame: seg.endFrame, chain };
  });
}

/** The debug video's filtergraph (for -filter_complex_script), output pad [v]; frameTimes from probing the input. */
export function debugFilter(plan: Plan, frameTimes: Float64Array): string {
  return `${segmentedGraph('[0:v:0]', debugPieces(plan), frameTimes, 'drawn')};\n[drawn]format=yuv420p[v]`;
}

/**
 * Renders the debug video of `plan` over its input (probed again for its frame times, which the
 * output keeps exactly).
 */
export async function renderDebugVideo(plan: Plan, output: string, bins: Binaries, options: { signal?: AbortSignal; onProgress?: ProgressListener; filterScript: string }): Promise<void> {
  const info = await probeVideo(plan.input.path, bins, options.signal);
  if (info.frameCount !== plan.input.frameCount || info.width !== plan.input.width || info.height !== plan.input.height) {
    throw new RoiError('PLAN_MISMATCH', `the plan is for a ${plan.input.width}x${plan.input.height} video of ${plan.input.frameCount} frames, but ${plan.input.path} is ${info.width}x${info.height} with ${info.frameCount} frames`);
  }
  await writeFile(options.filterScript, debugFilter(plan, info.frameTimes));
  const meter = new ProgressMeter('debug-video', plan.input.frameCount, options.onProgress);
  await writeAtomically(output, (temp) =>
    run(bins.ffmpeg, [
      '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error', '-y',
      '-noautorotate', '-i', plan.input.path,
      '-filter_complex_script', options.filterScript,
      '-map', '[v]', '-fps_mode', 'passthrough',
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
