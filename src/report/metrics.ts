import type { Readable } from 'node:stream';
import { RoiError } from '../errors.js';
import type { Binaries } from '../media/binaries.js';
import { run } from '../media/process.js';
import { rawFrames } from '../media/raw-frames.js';
import type { Plan } from '../plan.js';
import { ProgressMeter, type ProgressListener } from '../progress.js';
import { newSsimSums, SsimPlane } from './ssim.js';

/**
 * Quality of an encode against its source, overall and inside / outside the faces, from one ffmpeg
 * process that decodes both (YUV 4:2:0), runs its psnr and ssim filters for the full-frame numbers,
 * and streams the frame pairs to us, one frame in memory at a time, for the masked numbers.
 *
 * - PSNR is that of the mean squared error over all frames, planes weighted by their sample counts
 *   (what ffmpeg's psnr filter reports as "average"). Identical inputs give Infinity (JSON: null,
 *   shown as "∞").
 * - SSIM: the full-frame value is ffmpeg's "All" (Y, U, V weighted by size); face and background SSIM
 *   are luma SSIM, 8×8 windows at a 4-pixel step as in ffmpeg's filter, pooled over the windows that
 *   lie wholly in the mask.
 * - Face pixels: the face boxes of the analysis samples, moved along their tracks between samples
 *   (not across scene cuts). Salient pixels (with --roi saliency): the salient boxes, the same way,
 *   minus the faces. Background: everything outside
 *   the plan's face and saliency regions of that frame's segment (the feathered margins around
 *   faces are neither).
 */
export interface QualityResult {
  psnr: number;
  ssim: number;
  facePsnr: number;
  faceSsim: number;
  backgroundPsnr: number;
  backgroundSsim: number;
  /** Inside the salient boxes (NaN when the analysis found none). */
  salientPsnr: number;
  salientSsim: number;
  /**
   * Y-PSNR, the convention of codec papers and of x265's own log: luma PSNR of each frame, averaged
   * over the frames (those that have pixels of the class, for the masked ones). The values above are
   * PSNR of the mean squared error pooled over all frames and all three planes (ffmpeg's "average").
   * A frame whose luma is identical is infinite and makes the mean infinite.
   */
  psnrY: number;
  facePsnrY: number;
  backgroundPsnrY: number;
  salientPsnrY: number;
  /** Face PSNR of each frame (NaN where a frame has no face). */
  facePsnrPerFrame: number[];
  frames: number;
  /**
   * Full-frame values computed by the same code as the masked ones, next to ffmpeg's: they agree to
   * rounding, which is what makes the masked numbers trustworthy.
   */
  check: { psnr: number; ssimY: number; ffmpegSsimY: number };
}

export function psnrFromMse(mse: number): number {
  return mse <= 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/**
 * The `share` percentile by nearest rank: with 0.05, the face PSNR of the 5th-percentile frame, a
 * frame worse than 95% of the others (dips from motion, cuts or keyframe cycles). NaN values
 * (frames without a face) are left out; Infinity (a face coded losslessly) counts. NaN if none.
 */
export function lowPercentile(values: number[], share: number): number {
  const finite = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (finite.length === 0) return NaN;
  return finite[Math.max(0, Math.ceil(share * finite.length) - 1)]!;
}

/** Mask classes on the luma grid. */
export const MASK = { neither: 0, face: 1, background: 2, salient: 3 } as const;

type Rect = { x: number; y: number; w: number; h: number };
type TrackedRect = Rect & { track?: number };

/** How the boxes of one sample continue into the next: pairs that move, and boxes held on one side. */
export interface BoxPairing {
  pairs: [Rect, Rect][];
  onlyBefore: Rect[];
  onlyAfter: Rect[];
}

/**
 * Pairs the boxes of two consecutive samples. Boxes of the same track (the analysis followed that
 * face from one sample to the next) pair first. The rest (a track that ends where another begins,
 * as when the tracker lost a face that turned; boxes without track ids from older or hand-edited
 * plans) pair with the nearest remaining box whose centre is within twice the larger width.
 */
export function pairBoxes(before: TrackedRect[], after: TrackedRect[]): BoxPairing {
  const usedA = new Set<number>();
  const usedB = new Set<number>();
  const pairs: [Rect, Rect][] = [];
  before.forEach((a, i) => {
    if (a.track === undefined) return;
    const j = after.findIndex((b, k) => !usedB.has(k) && b.track === a.track);
    if (j < 0) return;
    usedA.add(i);
    usedB.add(j);
    pairs.push([a, after[j]!]);
  });
  const centre = (r: Rect) => [r.x + r.w / 2, r.y + r.h / 2] as const;
  const candidates = before.flatMap((a, i) => after.map((b, j) => ({ i, j, d: Math.hypot(centre(a)[0] - centre(b)[0], centre(a)[1] - centre(b)[1]) })))
    .filter(({ i, j, d }) => !usedA.has(i) && !usedB.has(j) && d < 2 * Math.max(before[i]!.w, after[j]!.w))
    .sort((p, q) => p.d - q.d);
  for (const { i, j } of candidates) {
    if (usedA.has(i) || usedB.has(j)) continue;
    usedA.add(i);
    usedB.add(j);
    pairs.push([before[i]!, after[j]!]);
  }
  return { pairs, onlyBefore: before.filter((_, i) => !usedA.has(i)), onlyAfter: after.filter((_, j) => !usedB.has(j)) };
}

/**
 * Boxes at `t` (0 at the earlier sample, 1 at the later): paired boxes move linearly; a box only one
 * sample has is kept for the half of the interval nearer that sample.
 */
export function boxesAt(pairing: BoxPairing, t: number): Rect[] {
  const lerp = (p: number, q: number) => p + (q - p) * t;
  const out = pairing.pairs.map(([p, q]) => ({ x: lerp(p.x, q.x), y: lerp(p.y, q.y), w: lerp(p.w, q.w), h: lerp(p.h, q.h) }));
  out.push(...(t < 0.5 ? pairing.onlyBefore : pairing.onlyAfter));
  return out;
}

/**
 * Per-frame masks from a plan, for frames visited in increasing order: cursors into the detections,
 * cuts and segments advance with the frame, and each interval's pairing is computed once, so a long
 * video costs linear time.
 */
export class FaceMasks {
  /** Index of the last sample at or before the current frame (0 before the first sample). */
  private detection = 0;
  /** Index of the first scene cut after that sample. */
  private cut = 0;
  private segment = 0;
  private lastFrame = -1;
  private readonly cuts: number[];
  private pairings: { detection: number; faces?: BoxPairing; salient?: BoxPairing } = { detection: -1 };

  constructor(
    private readonly plan: Plan,
    private readonly width: number,
    private readonly height: number,
  ) {
    this.cuts = [...(plan.cuts ?? [])].sort((a, b) => a - b);
  }

  /**
   * Face boxes for a frame: between two samples they move with their track (a face crossing the
   * frame would otherwise be measured up to half a sample step off); across a scene cut each side
   * keeps its own sample's boxes.
   */
  facesAt(frame: number): Rect[] {
    return this.boxesFor(frame, 'faces');
  }

  /** Salient boxes for a frame, the same way (none without --roi saliency). */
  salientAt(frame: number): Rect[] {
    return this.boxesFor(frame, 'salient');
  }

  fill(frame: number, out: Uint8Array): void {
    this.advance(frame);
    out.fill(MASK.background);
    for (const r of this.plan.segments[this.segment]?.regions ?? []) {
      if (r.kind !== 'background') this.rect(out, r, MASK.neither);
    }
    // Faces last: a face inside a salient box counts as a face.
    for (const b of this.salientAt(frame)) this.rect(out, b, MASK.salient);
    for (const b of this.facesAt(frame)) this.rect(out, b, MASK.face);
  }

  private boxesFor(frame: number, kind: 'faces' | 'salient'): Rect[] {
    this.advance(frame);
    const d = this.plan.detections;
    const a = d[this.detection];
    const b = d[this.detection + 1];
    if (!a) return [];
    const list = (x: Plan['detections'][number]) => (kind === 'faces' ? x.faces : (x.salient ?? []));
    if (!b || frame <= a.frame) return list(a);
    const cut = this.cuts[this.cut];
    if (cut !== undefined && cut <= b.frame) return frame < cut ? list(a) : list(b);
    if (this.pairings.detection !== this.detection) this.pairings = { detection: this.detection };
    const pairing = (this.pairings[kind] ??= pairBoxes(list(a), list(b)));
    return boxesAt(pairing, (frame - a.frame) / (b.frame - a.frame));
  }

  private advance(frame: number): void {
    if (frame < this.lastFrame) throw new Error('FaceMasks visits frames in increasing order');
    this.lastFrame = frame;
    const d = this.plan.detections;
    while (this.detection + 1 < d.length && d[this.detection + 1]!.frame <= frame) this.detection++;
    const sampleFrame = d[this.detection]?.frame ?? 0;
    while (this.cut < this.cuts.length && this.cuts[this.cut]! <= sampleFrame) this.cut++;
    const s = this.plan.segments;
    while (this.segment + 1 < s.length && s[this.segment]!.endFrame <= frame) this.segment++;
  }

  private rect(mask: Uint8Array, b: Rect, value: number): void {
    const { width, height } = this;
    const x0 = Math.max(0, Math.floor(b.x)), x1 = Math.min(width, Math.ceil(b.x + b.w));
    const y0 = Math.max(0, Math.floor(b.y)), y1 = Math.min(height, Math.ceil(b.y + b.h));
    for (let y = y0; y < y1; y++) mask.fill(value, y * width + x0, y * width + x1);
  }
}

/** Reads the summary lines ffmpeg's psnr and ssim filters log at the end. */
export function parseFilterSummary(lines: string[]): { psnr?: number; ssim?: number; ssimY?: number } {
  const num = (s: string | undefined) => (s === undefined ? undefined : s === 'inf' ? Infinity : Number(s));
  const out: { psnr?: number; ssim?: number; ssimY?: number } = {};
  for (const line of lines) {
    const p = /\bPSNR .*average:(inf|[\d.]+)/.exec(line);
    if (p) out.psnr = num(p[1]);
    const s = /\bSSIM Y:([\d.]+).* All:([\d.]+)/.exec(line);
    if (s) {
      out.ssimY = num(s[1]);
      out.ssim = num(s[2]);
    }
  }
  return out;
}

export interface MeasureOptions {
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  label?: string;
}

/**
 * Adds the squared errors between a reference plane (at `ref` in `buf`) and a distorted one (at
 * `dist`) to each pixel's mask class. `ratio` is the plane's subsampling (1 luma, 2 chroma): a
 * chroma sample takes the class of its top-left luma pixel. Errors are summed in locals along each
 * run of one class and added to the class's total when the class changes: adding into the typed
 * array at every pixel made each addition wait for the last.
 */
function addPlaneErrors(buf: Uint8Array, ref: number, dist: number, planeWidth: number, planeHeight: number, ratio: number, mask: Uint8Array, maskWidth: number, sse: Float64Array, count: Float64Array): void {
  let cls = mask[0]!;
  let runSse = 0;
  let runCount = 0;
  for (let y = 0; y < planeHeight; y++) {
    const row = y * planeWidth;
    const maskRow = y * ratio * maskWidth;
    for (let x = 0; x < planeWidth; x++) {
      const m = mask[maskRow + x * ratio]!;
      if (m !== cls) {
        sse[cls]! += runSse;
        count[cls]! += runCount;
        cls = m;
        runSse = 0;
        runCount = 0;
      }
      const d = buf[ref + row + x]! - buf[dist + row + x]!;
      runSse += d * d;
      runCount++;
    }
  }
  sse[cls]! += runSse;
  count[cls]! += runCount;
}

export async function measureQuality(reference: string, distorted: string, plan: Plan, bins: Binaries, options: MeasureOptions = {}): Promise<QualityResult> {
  const { width, height, frameCount } = plan.input;
  if (width % 2 || height % 2) throw new RoiError('ODD_SIZE', `quality measurement needs even frame sizes, got ${width}x${height}`);
  const ySize = width * height;
  const cSize = ySize / 4;
  const frameBytes = 2 * (ySize + 2 * cSize);
  const mask = new Uint8Array(ySize);
  const masks = new FaceMasks(plan, width, height);
  const ssimPlane = new SsimPlane(width, height);
  const classes = Object.keys(MASK).length;
  const ssimSums = newSsimSums(classes);
  const meter = new ProgressMeter('measure', frameCount, options.onProgress, options.label);
  // Squared error and sample count per mask class: over the whole clip, and over the current frame.
  const sse = new Float64Array(classes), count = new Float64Array(classes);
  const classSse = new Float64Array(classes), classCount = new Float64Array(classes);
  // Luma only, this frame; and the sum over frames of each class's luma PSNR (the whole frame's last),
  // with the number of frames that had the class.
  const lumaSse = new Float64Array(classes), lumaCount = new Float64Array(classes);
  const psnrYSum = new Float64Array(classes + 1), psnrYFrames = new Float64Array(classes);
  let frameLumaSse = 0;
  let ssimY = 0;
  const perFrame: number[] = [];
  let frame = 0;

  const measureFrame = (buf: Uint8Array) => {
    masks.fill(frame, mask);
    // vstack of two yuv420p frames: Y of both (stacked), then U of both, then V of both.
    classSse.fill(0);
    classCount.fill(0);
    // Luma, then each chroma plane against the mask at its top-left luma sample; by rows, so the
    // hot loops do no division.
    // Luma, then each chroma plane (distorted right after reference, vstack's layout).
    addPlaneErrors(buf, 0, ySize, width, height, 1, mask, width, classSse, classCount);
    lumaSse.set(classSse);
    lumaCount.set(classCount);
    for (const ref of [2 * ySize, 2 * ySize + 2 * cSize]) addPlaneErrors(buf, ref, ref + cSize, width / 2, height / 2, 2, mask, width, classSse, classCount);
    frameLumaSse = 0;
    for (let c = 0; c < classes; c++) {
      sse[c]! += classSse[c]!;
      count[c]! += classCount[c]!;
      frameLumaSse += lumaSse[c]!;
      if (lumaCount[c]!) {
        psnrYSum[c]! += psnrFromMse(lumaSse[c]! / lumaCount[c]!);
        psnrYFrames[c]! += 1;
      }
    }
    psnrYSum[classes]! += psnrFromMse(frameLumaSse / ySize);
    ssimY += ssimPlane.accumulate(buf.subarray(0, ySize), buf.subarray(ySize, 2 * ySize), ssimSums, mask);
    perFrame.push(classCount[MASK.face] ? psnrFromMse(classSse[MASK.face]! / classCount[MASK.face]!) : NaN);
    frame++;
    meter.update(frame);
  };

  const consume = async (stdout: Readable) => {
    for await (const pair of rawFrames(stdout, frameBytes)) measureFrame(pair);
  };
  const log: string[] = [];
  await run(bins.ffmpeg, [
    // Info level: the psnr and ssim filters print their summaries there.
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info',
    '-noautorotate', '-i', reference, '-noautorotate', '-i', distorted,
    '-filter_complex',
    // Both from their own first frame: an encode may start at 0 where its source's video starts later
    // (after its audio, or at a stored start time); frames pair by time from there.
    '[0:v:0]setpts=PTS-STARTPTS,format=yuv420p,setsar=1,split=3[r1][r2][r3];[1:v:0]setpts=PTS-STARTPTS,format=yuv420p,setsar=1[d0];' +
      '[d0][r1]psnr[d1];[d1][r2]ssim[d2];[r3][d2]vstack',
    '-fps_mode', 'passthrough', '-f', 'rawvideo', 'pipe:1',
  ], {
    signal: options.signal,
    consumeStdout: consume,
    what: 'measuring quality',
    onStderrLine: (line) => {
      if (/\b(PSNR|SSIM) /.test(line)) log.push(line);
    },
  });
  if (frame !== frameCount) {
    throw new RoiError('FRAME_MISMATCH', `measured ${frame} frames but the source has ${frameCount}: ${distorted} does not line up with ${reference}`);
  }
  const summary = parseFilterSummary(log);
  if (summary.psnr === undefined || summary.ssim === undefined || summary.ssimY === undefined) {
    throw new RoiError('MEASURE_FAILED', `ffmpeg's psnr/ssim filters printed no summary while comparing ${distorted} with ${reference}`);
  }
  const psnrOf = (cls: number) => (count[cls] ? psnrFromMse(sse[cls]! / count[cls]!) : NaN);
  const ssimOf = (cls: number) => (ssimSums.count[cls]! ? ssimSums.sum[cls]! / ssimSums.count[cls]! : NaN);
  const psnrYOf = (cls: number) => (psnrYFrames[cls]! ? psnrYSum[cls]! / psnrYFrames[cls]! : NaN);
  return {
    psnr: summary.psnr,
    ssim: summary.ssim,
    facePsnr: psnrOf(MASK.face),
    faceSsim: ssimOf(MASK.face),
    backgroundPsnr: psnrOf(MASK.background),
    backgroundSsim: ssimOf(MASK.background),
    salientPsnr: psnrOf(MASK.salient),
    salientSsim: ssimOf(MASK.salient),
    psnrY: frame ? psnrYSum[classes]! / frame : NaN,
    facePsnrY: psnrYOf(MASK.face),
    backgroundPsnrY: psnrYOf(MASK.background),
    salientPsnrY: psnrYOf(MASK.salient),
    facePsnrPerFrame: perFrame,
    frames: frame,
    check: { psnr: psnrFromMse(sse.reduce((a, b) => a + b, 0) / count.reduce((a, b) => a + b, 0)), ssimY: ssimY / frame, ffmpegSsimY: summary.ssimY },
  };
}
