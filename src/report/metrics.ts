import type { Readable } from 'node:stream';
import { RoiError } from '../errors.js';
import type { Binaries } from '../media/binaries.js';
import { run } from '../media/process.js';
import type { Plan } from '../plan.js';
import { ProgressMeter, type ProgressListener } from '../progress.js';

/**
 * Quality of an encode against its source, overall and inside / outside the faces, computed over
 * decoded frames streamed from one ffmpeg process (source on top of encode, YUV 4:2:0), one frame in
 * memory at a time. PSNR is that of the mean squared error over the frames (as ffmpeg's psnr filter
 * reports its average), with the planes weighted by their pixel counts; identical inputs give
 * Infinity (JSON: null, shown as "∞").
 */
export interface QualityResult {
  psnr: number;
  facePsnr: number;
  backgroundPsnr: number;
  /** Face PSNR of each frame (NaN where a frame has no face). */
  facePsnrPerFrame: number[];
  frames: number;
}

export function psnrFromMse(mse: number): number {
  return mse <= 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/** Face boxes for a frame: the detections of the nearest sample. */
export function faceBoxesAt(plan: Plan, frame: number): { x: number; y: number; w: number; h: number }[] {
  let best = plan.detections[0];
  for (const d of plan.detections) if (Math.abs(d.frame - frame) < Math.abs((best?.frame ?? 0) - frame)) best = d;
  return best?.faces ?? [];
}

/** Masks on the luma grid: 1 = face, 2 = background, 0 = neither (face margins). */
export function masksFor(plan: Plan, frame: number, width: number, height: number, out: Uint8Array): void {
  out.fill(2);
  const seg = plan.segments.find((s) => s.startFrame <= frame && frame < s.endFrame);
  for (const r of seg?.regions ?? []) {
    if (r.kind === 'background') continue;
    fillRect(out, width, height, r, 0);
  }
  for (const b of faceBoxesAt(plan, frame)) fillRect(out, width, height, b, 1);
}

function fillRect(mask: Uint8Array, width: number, height: number, b: { x: number; y: number; w: number; h: number }, value: number): void {
  const x0 = Math.max(0, Math.floor(b.x)), x1 = Math.min(width, Math.ceil(b.x + b.w));
  const y0 = Math.max(0, Math.floor(b.y)), y1 = Math.min(height, Math.ceil(b.y + b.h));
  for (let y = y0; y < y1; y++) mask.fill(value, y * width + x0, y * width + x1);
}

export async function measureQuality(reference: string, distorted: string, plan: Plan, bins: Binaries, options: { signal?: AbortSignal; onProgress?: ProgressListener; label?: string } = {}): Promise<QualityResult> {
  const { width, height, frameCount } = plan.input;
  if (width % 2 || height % 2) throw new RoiError('ODD_SIZE', `quality measurement needs even frame sizes, got ${width}x${height}`);
  const ySize = width * height;
  const cSize = ySize / 4;
  const frameBytes = 2 * (ySize + 2 * cSize);
  const mask = new Uint8Array(ySize);
  const meter = new ProgressMeter('measure', frameCount, options.onProgress, options.label);
  let sseAll = 0, nAll = 0, sseFace = 0, nFace = 0, sseBg = 0, nBg = 0;
  const perFrame: number[] = [];
  let frame = 0;

  const consume = async (stdout: Readable) => {
    let pending: Buffer = Buffer.alloc(0);
    for await (const chunk of stdout as AsyncIterable<Buffer>) {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= frameBytes) {
        const buf = pending.subarray(0, frameBytes);
        masksFor(plan, frame, width, height, mask);
        // vstack of two yuv420p frames: Y of both (stacked), then U of both, then V of both.
        let fs = 0, fn = 0;
        const planes: [number, number, number][] = [[0, ySize, width], [2 * ySize, cSize, width / 2], [2 * ySize + 2 * cSize, cSize, width / 2]];
        for (const [offset, size, pw] of planes) {
          const sub = pw === width ? 1 : 2;
          for (let i = 0; i < size; i++) {
            const d = buf[offset + i]! - buf[offset + size + i]!;
            const e = d * d;
            sseAll += e;
            nAll++;
            const m = sub === 1 ? mask[i]! : mask[(Math.floor(i / pw) * 2) * width + (i % pw) * 2]!;
            if (m === 1) {
              sseFace += e;
              nFace++;
              fs += e;
              fn++;
            } else if (m === 2) {
              sseBg += e;
              nBg++;
            }
          }
        }
        perFrame.push(fn ? psnrFromMse(fs / fn) : NaN);
        frame++;
        meter.update(frame);
        pending = pending.subarray(frameBytes);
      }
    }
  };
  await run(bins.ffmpeg, [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error',
    '-noautorotate', '-i', reference, '-noautorotate', '-i', distorted,
    '-filter_complex', '[0:v:0]format=yuv420p,setsar=1[a];[1:v:0]format=yuv420p,setsar=1[b];[a][b]vstack',
    '-fps_mode', 'passthrough', '-f', 'rawvideo', 'pipe:1',
  ], { signal: options.signal, consumeStdout: consume, what: 'measuring quality' });
  if (frame !== frameCount) {
    throw new RoiError('FRAME_MISMATCH', `measured ${frame} frames but the source has ${frameCount}: ${distorted} does not line up with ${reference}`);
  }
  return {
    psnr: psnrFromMse(sseAll / nAll),
    facePsnr: nFace ? psnrFromMse(sseFace / nFace) : NaN,
    backgroundPsnr: nBg ? psnrFromMse(sseBg / nBg) : NaN,
    facePsnrPerFrame: perFrame,
    frames: frame,
  };
}
