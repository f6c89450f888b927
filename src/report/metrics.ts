import type { Readable } from 'node:stream';
import { RoiError } from '../media/errors.js';
import type { Binaries } from '../media/binaries.js';
import { run } from '../media/process.js';
import { rawFrames } from '../media/raw-frames.js';
import type { Plan } from '../plan/plan.js';
import { ProgressMeter, type ProgressListener } from '../media/progress.js';
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
  /**
   * How frames of the two files pair up: by time from each file's first frame, to the millisecond
   * (default: a video and its encode, in any containers), or by position, for files that hold the
   * same frames in the same order (the face target's sample file and its sample encodes).
   */
  pairBy?: 'time' | 'index';
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

/** Mask classes' squared errors, sample counts and SSIM windows, summed over a clip from frame regions in vstack layout. */
class ClassSums {
  readonly classes = Object.keys(MASK).length;
  /** Over the clip: squared error and sample count per class, all planes. */
  readonly sse = new Float64Array(this.classes);
  readonly count = new Float64Array(this.classes);
  readonly ssim = newSsimSums(this.classes);
  /** Sum over frames of each class's luma PSNR (the regions' whole luma last), and the frames that had the class. */
  readonly psnrYSum = new Float64Array(this.classes + 1);
  readonly psnrYFrames = new Float64Array(this.classes);
  /** Sum over frames of the regions' mean SSIM (luma, all windows). */
  ssimY = 0;
  frames = 0;
  /** Face PSNR of each frame (NaN where a frame has no face). */
  readonly facePsnrPerFrame: number[] = [];
  // This frame: luma, and chroma, per class; its SSIM windows.
  private readonly lumaSse = new Float64Array(this.classes);
  private readonly lumaCount = new Float64Array(this.classes);
  private readonly chromaSse = new Float64Array(this.classes);
  private readonly chromaCount = new Float64Array(this.classes);
  private frameSsim = { sum: 0, windows: 0, regions: 0, mean: 1 };
  private ssimPlane?: SsimPlane;

  /**
   * Adds one region of the current frame: `buf` holds reference and distorted of a width × height
   * yuv420p region in vstack's layout (Y of both, then U of both, then V of both); `mask` its luma mask.
   */
  add(buf: Uint8Array, width: number, height: number, mask: Uint8Array): void {
    const ySize = width * height;
    const cSize = ySize / 4;
    // Luma, then each chroma plane against the mask at its top-left luma sample; by rows, so the
    // hot loops do no division.
    addPlaneErrors(buf, 0, ySize, width, height, 1, mask, width, this.lumaSse, this.lumaCount);
    for (const ref of [2 * ySize, 2 * ySize + 2 * cSize]) addPlaneErrors(buf, ref, ref + cSize, width / 2, height / 2, 2, mask, width, this.chromaSse, this.chromaCount);
    if (this.ssimPlane?.width !== width || this.ssimPlane.height !== height) this.ssimPlane = new SsimPlane(width, height);
    const mean = this.ssimPlane.accumulate(buf.subarray(0, ySize), buf.subarray(ySize, 2 * ySize), this.ssim, mask);
    const windows = Math.max(0, (width >> 2) - 1) * Math.max(0, (height >> 2) - 1);
    this.frameSsim = { sum: this.frameSsim.sum + mean * windows, windows: this.frameSsim.windows + windows, regions: this.frameSsim.regions + 1, mean };
  }

  /** Closes the current frame: its per-class sums go to the clip's, its PSNRs to the per-frame figures. */
  endFrame(): void {
    const { classes, lumaSse, lumaCount, chromaSse, chromaCount } = this;
    let frameLumaSse = 0, frameLumaCount = 0;
    for (let c = 0; c < classes; c++) {
      this.sse[c]! += lumaSse[c]! + chromaSse[c]!;
      this.count[c]! += lumaCount[c]! + chromaCount[c]!;
      frameLumaSse += lumaSse[c]!;
      frameLumaCount += lumaCount[c]!;
      if (lumaCount[c]!) {
        this.psnrYSum[c]! += psnrFromMse(lumaSse[c]! / lumaCount[c]!);
        this.psnrYFrames[c]! += 1;
      }
    }
    this.psnrYSum[classes]! += psnrFromMse(frameLumaSse / frameLumaCount);
    // One region (the whole frame, for measureQuality): its mean as the SSIM filter gives it.
    const f = this.frameSsim;
    this.ssimY += f.regions === 1 ? f.mean : f.windows ? f.sum / f.windows : 1;
    const face = MASK.face;
    const faceCount = lumaCount[face]! + chromaCount[face]!;
    this.facePsnrPerFrame.push(faceCount ? psnrFromMse((lumaSse[face]! + chromaSse[face]!) / faceCount) : NaN);
    for (const a of [lumaSse, lumaCount, chromaSse, chromaCount]) a.fill(0);
    this.frameSsim = { sum: 0, windows: 0, regions: 0, mean: 1 };
    this.frames++;
  }

  psnrOf(cls: number): number {
    return this.count[cls] ? psnrFromMse(this.sse[cls]! / this.count[cls]!) : NaN;
  }

  ssimOf(cls: number): number {
    return this.ssim.count[cls]! ? this.ssim.sum[cls]! / this.ssim.count[cls]! : NaN;
  }

  psnrYOf(cls: number): number {
    return this.psnrYFrames[cls]! ? this.psnrYSum[cls]! / this.psnrYFrames[cls]! : NaN;
  }
}

/**
 * Decodes both videos in one ffmpeg process (YUV 4:2:0, each from its own first frame, paired by
 * time) and hands each frame pair, vstacked, to `onPair`; with `fullFrameFilters`, ffmpeg's psnr and
 * ssim filters run on the way and their summary is returned. Checks that the frame counts agree.
 */
async function streamFramePairs(reference: string, distorted: string, plan: Plan, bins: Binaries, options: MeasureOptions, fullFrameFilters: boolean, onPair: (pair: Uint8Array, frame: number) => void): Promise<ReturnType<typeof parseFilterSummary>> {
  const { width, height, frameCount } = plan.input;
  if (width % 2 || height % 2) throw new RoiError('ODD_SIZE', `quality measurement needs even frame sizes, got ${width}x${height}`);
  const frameBytes = 3 * width * height;
  const meter = new ProgressMeter('measure', frameCount, options.onProgress, options.label);
  let frame = 0;
  const consume = async (stdout: Readable) => {
    for await (const pair of rawFrames(stdout, frameBytes)) {
      onPair(pair, frame);
      frame++;
      meter.update(frame);
    }
  };
  const log: string[] = [];
  // Both from their own first frame: an encode may start at 0 where its source's video starts later
  // (after its audio, or at a stored start time); frames pair by time from there, both rounded to
  // whole milliseconds as Matroska stores them: at 30 fps an .mkv encode's 33 ms against its MP4
  // source's 1/30 s made vstack emit 150 frames for 90.
  const prepare = `${options.pairBy === 'index' ? 'settb=1,setpts=N' : 'setpts=PTS-STARTPTS,settb=1/1000'},format=yuv420p,setsar=1`;
  await run(bins.ffmpeg, [
    // Info level: the psnr and ssim filters print their summaries there.
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info',
    '-noautorotate', '-i', reference, '-noautorotate', '-i', distorted,
    '-filter_complex',
    fullFrameFilters
      ? `[0:v:0]${prepare},split=3[r1][r2][r3];[1:v:0]${prepare}[d0];[d0][r1]psnr[d1];[d1][r2]ssim[d2];[r3][d2]vstack`
      : `[0:v:0]${prepare}[r];[1:v:0]${prepare}[d];[r][d]vstack`,
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
  return parseFilterSummary(log);
}

export async function measureQuality(reference: string, distorted: string, plan: Plan, bins: Binaries, options: MeasureOptions = {}): Promise<QualityResult> {
  const { width, height } = plan.input;
  const mask = new Uint8Array(width * height);
  const masks = new FaceMasks(plan, width, height);
  const sums = new ClassSums();
  const summary = await streamFramePairs(reference, distorted, plan, bins, options, true, (pair, frame) => {
    masks.fill(frame, mask);
    sums.add(pair, width, height, mask);
    sums.endFrame();
  });
  if (summary.psnr === undefined || summary.ssim === undefined || summary.ssimY === undefined) {
    throw new RoiError('MEASURE_FAILED', `ffmpeg's psnr/ssim filters printed no summary while comparing ${distorted} with ${reference}`);
  }
  const { frames, classes } = sums;
  return {
    psnr: summary.psnr,
    ssim: summary.ssim,
    facePsnr: sums.psnrOf(MASK.face),
    faceSsim: sums.ssimOf(MASK.face),
    backgroundPsnr: sums.psnrOf(MASK.background),
    backgroundSsim: sums.ssimOf(MASK.background),
    salientPsnr: sums.psnrOf(MASK.salient),
    salientSsim: sums.ssimOf(MASK.salient),
    psnrY: frames ? sums.psnrYSum[classes]! / frames : NaN,
    facePsnrY: sums.psnrYOf(MASK.face),
    backgroundPsnrY: sums.psnrYOf(MASK.background),
    salientPsnrY: sums.psnrYOf(MASK.salient),
    facePsnrPerFrame: sums.facePsnrPerFrame,
    frames,
    check: { psnr: psnrFromMse(sums.sse.reduce((a, b) => a + b, 0) / sums.count.reduce((a, b) => a + b, 0)), ssimY: sums.ssimY / frames, ffmpegSsimY: summary.ssimY },
  };
}

/** The face figures of measureQuality, which measureFaces gives alone. */
export type FaceQuality = Pick<QualityResult, 'facePsnr' | 'faceSsim' | 'facePsnrY' | 'facePsnrPerFrame' | 'frames'>;

type PixelRect = { x0: number; y0: number; x1: number; y1: number };

/**
 * Pure: the regions of a frame that hold all its face pixels and every SSIM window wholly on a face:
 * each face box's pixels widened to the 4-pixel SSIM block grid, boxes whose widened extents come
 * within a block of each other merged into one region (a window may straddle two boxes).
 */
export function faceRegions(faces: Rect[], width: number, height: number): PixelRect[] {
  const down4 = (v: number) => Math.floor(v / 4) * 4;
  const up4 = (v: number) => Math.ceil(v / 4) * 4;
  let regions: PixelRect[] = [];
  for (const b of faces) {
    const x0 = Math.max(0, Math.floor(b.x)), x1 = Math.min(width, Math.ceil(b.x + b.w));
    const y0 = Math.max(0, Math.floor(b.y)), y1 = Math.min(height, Math.ceil(b.y + b.h));
    if (x1 > x0 && y1 > y0) regions.push({ x0: down4(x0), y0: down4(y0), x1: Math.min(width, up4(x1)), y1: Math.min(height, up4(y1)) });
  }
  for (let merged = true; merged;) {
    merged = false;
    const out: PixelRect[] = [];
    for (const r of regions) {
      const near = out.find((o) => r.x0 <= o.x1 + 4 && o.x0 <= r.x1 + 4 && r.y0 <= o.y1 + 4 && o.y0 <= r.y1 + 4);
      if (!near) {
        out.push({ ...r });
        continue;
      }
      merged = true;
      Object.assign(near, { x0: Math.min(near.x0, r.x0), y0: Math.min(near.y0, r.y0), x1: Math.max(near.x1, r.x1), y1: Math.max(near.y1, r.y1) });
    }
    regions = out;
  }
  return regions;
}

/** Where a yuv420p picture, or a rectangle of one, lies in a buffer: its planes' offsets, its luma stride, and the frame pixel it starts at. */
interface Planes {
  buf: Uint8Array;
  y: number;
  u: number;
  v: number;
  stride: number;
  x0: number;
  y0: number;
}

/**
 * Copies rectangle `r` (even corners) of a yuv420p picture into `out` as Y, U and V planes of r's
 * size, at offsets `oy`, `ou`, `ov`: contiguous planes, or measureFaces' vstack layout, where the
 * reference's and the encode's planes alternate.
 */
function copyRegion(p: Planes, r: PixelRect, out: Uint8Array, oy: number, ou: number, ov: number): void {
  const w = r.x1 - r.x0, h = r.y1 - r.y0;
  const col = r.x0 - p.x0, row = r.y0 - p.y0;
  for (let y = 0; y < h; y++) {
    const from = p.y + (row + y) * p.stride + col;
    out.set(p.buf.subarray(from, from + w), oy + y * w);
  }
  const cStride = p.stride / 2, cw = w / 2;
  for (let y = 0; y < h / 2; y++) {
    const from = (row / 2 + y) * cStride + col / 2;
    out.set(p.buf.subarray(p.u + from, p.u + from + cw), ou + y * cw);
    out.set(p.buf.subarray(p.v + from, p.v + from + cw), ov + y * cw);
  }
}

/** A whole width × height yuv420p frame at `at` in `buf`. */
const framePlanes = (buf: Uint8Array, width: number, height: number, at = 0): Planes => ({ buf, y: at, u: at + width * height, v: at + (width * height * 5) / 4, stride: width, x0: 0, y0: 0 });

/**
 * Adds one frame's face regions to `sums`: each region of the reference and of the encode cut out
 * into vstack's layout (what ClassSums takes), with its part of the frame's mask. `scratch` is reused
 * from frame to frame.
 */
function addFaceRegions(sums: ClassSums, regions: PixelRect[], mask: Uint8Array, width: number, reference: (r: PixelRect, i: number) => Planes, encoded: Planes, scratch: { region: Uint8Array; mask: Uint8Array }): void {
  regions.forEach((r, i) => {
    const w = r.x1 - r.x0, h = r.y1 - r.y0, ry = w * h, rc = ry / 4;
    if (scratch.region.length < 3 * ry) Object.assign(scratch, { region: new Uint8Array(3 * ry), mask: new Uint8Array(ry) });
    for (let y = 0; y < h; y++) {
      const from = (r.y0 + y) * width + r.x0;
      scratch.mask.set(mask.subarray(from, from + w), y * w);
    }
    copyRegion(reference(r, i), r, scratch.region, 0, 2 * ry, 2 * ry + 2 * rc);
    copyRegion(encoded, r, scratch.region, ry, 2 * ry + rc, 2 * ry + 3 * rc);
    sums.add(scratch.region.subarray(0, 3 * ry), w, h, scratch.mask.subarray(0, ry));
  });
  sums.endFrame();
}

const faceQuality = (sums: ClassSums): FaceQuality => ({ facePsnr: sums.psnrOf(MASK.face), faceSsim: sums.ssimOf(MASK.face), facePsnrY: sums.psnrYOf(MASK.face), facePsnrPerFrame: sums.facePsnrPerFrame, frames: sums.frames });

/**
 * Face PSNR and SSIM (and Y-PSNR, per frame) exactly as measureQuality computes them, for less: the
 * same decode and the same face masks, but without ffmpeg's full-frame filters, and the per-pixel
 * work done only in the regions around each frame's faces (faceRegions), which hold every face pixel
 * and every SSIM window wholly on a face. For a face-quality check, where nothing else is needed.
 */
export async function measureFaces(reference: string, distorted: string, plan: Plan, bins: Binaries, options: MeasureOptions = {}): Promise<FaceQuality> {
  const { width, height } = plan.input;
  const ySize = width * height;
  const cSize = ySize / 4;
  const mask = new Uint8Array(ySize);
  const masks = new FaceMasks(plan, width, height);
  const sums = new ClassSums();
  const scratch = { region: new Uint8Array(0), mask: new Uint8Array(0) };
  await streamFramePairs(reference, distorted, plan, bins, options, false, (pair, frame) => {
    const regions = faceRegions(masks.facesAt(frame), width, height);
    if (regions.length) masks.fill(frame, mask);
    // vstack: the reference's Y above the encode's, then both U, then both V.
    const ref: Planes = { buf: pair, y: 0, u: 2 * ySize, v: 2 * ySize + 2 * cSize, stride: width, x0: 0, y0: 0 };
    const enc: Planes = { buf: pair, y: ySize, u: 2 * ySize + cSize, v: 2 * ySize + 3 * cSize, stride: width, x0: 0, y0: 0 };
    addFaceRegions(sums, regions, mask, width, () => ref, enc, scratch);
  });
  return faceQuality(sums);
}

/** Source face regions kept in memory at most (bytes); above it, the source is decoded again to measure. */
export const KEPT_FACE_BYTES = 256 * 2 ** 20;
const KEPT_FRAME_OVERHEAD = 1024;
const KEPT_REGION_OVERHEAD = 256;

/**
 * The source's face regions (faceRegions of each frame, Y, U and V), kept from a stream of its
 * decoded yuv420p frames, so that an encode of it can be measured later by decoding the encode alone
 * (measureKeptFaces). The face-quality target feeds it the frames its final encode decodes anyway:
 * decoding an FFV1 source a second time cost the dev composite's check 5 of its 7 seconds.
 */
export class KeptFaces {
  private readonly masks: FaceMasks;
  readonly frames: { regions: PixelRect[]; pixels: Uint8Array[] }[] = [];

  constructor(readonly plan: Plan) {
    this.masks = new FaceMasks(plan, plan.input.width, plan.input.height);
  }

  /**
   * Pure: the memory KeptFaces would hold for `plan`: the face regions' pixels, plus the JavaScript
   * objects around them (measured at about 0.7 KB per frame on Node 20, counted as 1 KB per frame
   * and 256 bytes per region).
   */
  static bytesFor(plan: Plan): number {
    const { width, height, frameCount } = plan.input;
    const masks = new FaceMasks(plan, width, height);
    let bytes = frameCount * KEPT_FRAME_OVERHEAD;
    for (let f = 0; f < frameCount; f++) {
      for (const r of faceRegions(masks.facesAt(f), width, height)) bytes += KEPT_REGION_OVERHEAD + 1.5 * (r.x1 - r.x0) * (r.y1 - r.y0);
    }
    return bytes;
  }

  /** Keeps the face regions of the next frame (a whole yuv420p frame of the plan's size). */
  keep(frame: Uint8Array): void {
    const { width, height } = this.plan.input;
    const regions = faceRegions(this.masks.facesAt(this.frames.length), width, height);
    const planes = framePlanes(frame, width, height);
    const pixels = regions.map((r) => {
      const ry = (r.x1 - r.x0) * (r.y1 - r.y0);
      const out = new Uint8Array(1.5 * ry);
      copyRegion(planes, r, out, 0, ry, (ry * 5) / 4);
      return out;
    });
    this.frames.push({ regions, pixels });
  }

  /** Reads a stream of raw yuv420p frames into keep(). */
  async keepAll(stream: Readable): Promise<void> {
    const { width, height } = this.plan.input;
    for await (const frame of rawFrames(stream, 1.5 * width * height)) this.keep(frame);
  }
}

/**
 * measureFaces' figures for an encode of a source whose face regions were kept (KeptFaces): the
 * encode is decoded alone and paired with them frame by frame, in order. Identical to measureFaces
 * on the same files (the same regions, masks and sums).
 */
export async function measureKeptFaces(kept: KeptFaces, distorted: string, bins: Binaries, options: Omit<MeasureOptions, 'pairBy'> = {}): Promise<FaceQuality> {
  const { plan } = kept;
  const { width, height, frameCount } = plan.input;
  if (kept.frames.length !== frameCount) {
    throw new RoiError('FRAME_MISMATCH', `kept the faces of ${kept.frames.length} frames but the source has ${frameCount}`);
  }
  const mask = new Uint8Array(width * height);
  const masks = new FaceMasks(plan, width, height);
  const sums = new ClassSums();
  const scratch = { region: new Uint8Array(0), mask: new Uint8Array(0) };
  const meter = new ProgressMeter('measure', frameCount, options.onProgress, options.label);
  let frame = 0;
  await run(bins.ffmpeg, [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error', '-noautorotate', '-i', distorted,
    '-map', '0:v:0', '-vf', 'format=yuv420p', '-fps_mode', 'passthrough', '-f', 'rawvideo', 'pipe:1',
  ], {
    signal: options.signal,
    what: 'measuring faces',
    consumeStdout: async (stdout) => {
      for await (const decoded of rawFrames(stdout, 1.5 * width * height)) {
        const k = kept.frames[frame];
        if (!k) throw new RoiError('FRAME_MISMATCH', `${distorted} has more frames than its source's ${frameCount}`);
        if (k.regions.length) masks.fill(frame, mask);
        addFaceRegions(sums, k.regions, mask, width, (r, i) => ({ buf: k.pixels[i]!, y: 0, u: (r.x1 - r.x0) * (r.y1 - r.y0), v: ((r.x1 - r.x0) * (r.y1 - r.y0) * 5) / 4, stride: r.x1 - r.x0, x0: r.x0, y0: r.y0 }), framePlanes(decoded, width, height), scratch);
        frame++;
        meter.update(frame);
      }
    },
  });
  if (frame !== frameCount) throw new RoiError('FRAME_MISMATCH', `measured ${frame} frames but the source has ${frameCount}: ${distorted} does not line up with its source`);
  return faceQuality(sums);
}
