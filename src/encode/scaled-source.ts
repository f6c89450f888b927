import { join } from 'node:path';
import type { Binaries } from '../media/binaries.js';
import { run } from '../media/process.js';
import { scaleFilter, type PictureSize } from './scale.js';

/**
 * The source at a scaled output's size, losslessly (FFV1), every frame in order: what a measurement
 * of a scaled output pairs against, frame by frame (pairBy 'index'): compare's measurements, and the
 * face-quality target's when the final encode's own tap cannot serve (a source not yuv420p, face
 * regions over its kept-bytes limit) and for verifyReference.
 */
export async function scaledSourceCopy(input: string, dir: string, size: PictureSize, bins: Binaries, signal?: AbortSignal): Promise<string> {
  const file = join(dir, 'scaled-source.mkv');
  await run(bins.ffmpeg, [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error', '-y', '-noautorotate', '-i', input,
    '-map', '0:v:0', '-vf', scaleFilter(size), '-fps_mode', 'passthrough', '-c:v', 'ffv1', '-an', '-sn', '-dn', file,
  ], { signal, what: 'scaling the source to measure the output against' });
  return file;
}
