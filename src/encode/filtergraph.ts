import { segmentedGraph } from '../media/segmented-graph.js';
import type { Plan, PlanRegion, PlanZone } from '../plan/plan.js';
import { relieveKeyframes } from './keyframes.js';
import { scaleFilter, scalePlan, type PictureSize } from './scale.js';

/**
 * Plan → ffmpeg filtergraph. `addroi` is static per instance, so the timeline is split per segment
 * (media/segmented-graph.ts: split, trim, concat, every frame back on its source time), each segment
 * with one `addroi` per region in plan order (libx265 lets the first region listed win where regions
 * overlap).
 *
 * x265 3.5 allocates a frame slot's QP-offset buffer only if the first picture placed in that slot
 * carried offsets, and copies offsets only from pictures that carry them: ROI that starts after frame
 * 0 crashes it (SIGSEGV), ROI that stops leaves stale offsets on later frames. So whenever any segment
 * has ROI, every segment has some: a whole-frame region at offset 0 where nothing else applies.
 */
export interface GraphOptions {
  /** Scales every region's QP offset; 0 gives a uniform encode, 1 the plan as written. */
  strength: number;
  /** Presentation time of each frame, seconds from the first (from probing the input). */
  frameTimes: Float64Array;
  /** Label of the graph's output pad. */
  outputLabel: string;
  /** Input pad label (default the input's first video stream, 0:v:0); distributed chunks feed a trimmed stream. */
  inputLabel?: string;
  /** Bits per sample the encoder receives (default 8): libx265 scales addroi's qoffset by its QP range at that depth. */
  bitDepth?: number;
}

/**
 * addroi's qoffset is a share of the QP range: libx265 multiplies it by 51 + 6 × (bit depth − 8) (63
 * at 10 bits; ffmpeg's libx265.c `qp_range`), libx264 by 51 (its input is 8-bit here). Dividing by
 * the same range makes a plan's −2 a QP offset of −2 at any depth (at 10 bits, /51 would give −2.47).
 */
export function qpRange(bitDepth = 8): number {
  return 51 + 6 * (bitDepth - 8);
}

export function qoffsetFor(qpOffset: number, strength: number, bitDepth = 8): number {
  return Math.max(-1, Math.min(1, (qpOffset * strength) / qpRange(bitDepth)));
}

function num(v: number): string {
  return Number(v.toFixed(6)).toString();
}

/**
 * One addroi per region, in plan order, clamped to the frame. A region with a zero offset still
 * matters when a later region with an offset overlaps it: listed first, it wins there and keeps those
 * blocks at the base QP (a face margin inside a +4 background). Only zero regions that shield
 * nothing are left out.
 */
export function addroiChain(regions: PlanRegion[], strength: number, width: number, height: number, bitDepth = 8): string[] {
  const clamped = regions.map((r) => {
    const x0 = Math.max(0, Math.min(width, Math.round(r.x)));
    const y0 = Math.max(0, Math.min(height, Math.round(r.y)));
    const x1 = Math.max(x0, Math.min(width, Math.round(r.x + r.w)));
    const y1 = Math.max(y0, Math.min(height, Math.round(r.y + r.h)));
    return { x0, y0, x1, y1, q: qoffsetFor(r.qpOffset, strength, bitDepth) };
  }).filter((r) => r.x1 > r.x0 && r.y1 > r.y0);
  const overlaps = (a: (typeof clamped)[number], b: (typeof clamped)[number]) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
  return clamped
    .filter((r, i) => r.q !== 0 || clamped.slice(i + 1).some((later) => later.q !== 0 && overlaps(r, later)))
    .map((r) => `addroi=x=${r.x0}:y=${r.y0}:w=${r.x1 - r.x0}:h=${r.y1 - r.y0}:qoffset=${num(r.q)}:clear=0`);
}

/** Per segment, the addroi chain; empty chains get a whole-frame zero region if any chain is not empty. */
export function segmentChains(plan: Plan, strength: number, bitDepth = 8): string[][] {
  const { width, height } = plan.input;
  const chains = plan.segments.map((seg) => addroiChain(seg.regions, strength, width, height, bitDepth));
  if (chains.every((c) => c.length === 0)) return chains;
  return chains.map((c) => (c.length ? c : [`addroi=x=0:y=0:w=${width}:h=${height}:qoffset=0:clear=0`]));
}

/** The plan's keyframe cap (keyframes.ts) is applied here, so every encode path (whole, chunked, samples) gets it. */
export function buildRoiFilterGraph(written: Plan, options: GraphOptions): string {
  const plan = relieveKeyframes(written);
  const chains = segmentChains(plan, options.strength, options.bitDepth);
  const pieces = plan.segments.map((seg, i) => ({ startFrame: seg.startFrame, endFrame: seg.endFrame, chain: chains[i]! }));
  return segmentedGraph(`[${options.inputLabel ?? '0:v:0'}]`, pieces, options.frameTimes, options.outputLabel);
}

/** Label of the scaled picture inside the graph (segmentedGraph's own labels are s0, v0, g0s0, …). */
const SCALED = 'scaled';

/**
 * The encode's whole video graph: the output size first when it is not the source's (`size`), then
 * the plan's ROI. ffmpeg's scale passes ROI side data on without rescaling it, so addroi has to come
 * after it, with the plan's regions in output blocks (scale.ts scalePlan). Undefined
 * when there is nothing to filter (a uniform encode at the source's size).
 */
export function buildVideoGraph(plan: Plan | undefined, options: GraphOptions & { size?: PictureSize; blockSize: number; tapLabel?: string }): string | undefined {
  const input = options.inputLabel ?? '0:v:0';
  if (!options.size) return plan ? buildRoiFilterGraph(plan, options) : undefined;
  // `tapLabel`: a second pad with the scaled frames before any ROI, for the face-quality target's tap.
  const scale = (label: string) => `[${input}]${scaleFilter(options.size!)}${options.tapLabel ? `,split=2[${label}][${options.tapLabel}]` : `[${label}]`}`;
  if (!plan) return scale(options.outputLabel);
  const scaled = scalePlan(plan, options.size, options.blockSize);
  return `${scale(SCALED)};\n${buildRoiFilterGraph(scaled, { ...options, inputLabel: SCALED })}`;
}

/** x265 `zones`: frame ranges (inclusive end) with a bitrate multiplier. */
export function zonesParam(zones: PlanZone[]): string | undefined {
  const parts = zones.filter((z) => z.bitrateFactor !== 1).map((z) => `${z.startFrame},${z.endFrame - 1},b=${num(z.bitrateFactor)}`);
  return parts.length ? parts.join('/') : undefined;
}
