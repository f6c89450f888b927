import type { Plan, PlanRegion, PlanZone } from '../plan.js';

/**
 * Plan → ffmpeg filtergraph. `addroi` is static per instance, so the timeline is split:
 * `split=N`, then per segment `trim` (exact frame numbers) and one `addroi` per region in plan order
 * (libx265 lets the first region listed win where regions overlap), then `concat`; past FLAT_SEGMENTS
 * segments, in two such levels.
 *
 * concat re-times every segment after the first from its own idea of segment durations, which is
 * wrong for variable frame rate. A final `setpts` puts every frame back on its original time: at each
 * segment's first frame it stores the shift between concat's timestamp and the source's (known
 * exactly from probing), and subtracts it for the rest of the segment.
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
}

/** addroi's qoffset is a share of the QP range: libx265 multiplies it by 51. */
export function qoffsetFor(qpOffset: number, strength: number): number {
  return Math.max(-1, Math.min(1, (qpOffset * strength) / 51));
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
export function addroiChain(regions: PlanRegion[], strength: number, width: number, height: number): string[] {
  const clamped = regions.map((r) => {
    const x0 = Math.max(0, Math.min(width, Math.round(r.x)));
    const y0 = Math.max(0, Math.min(height, Math.round(r.y)));
    const x1 = Math.max(x0, Math.min(width, Math.round(r.x + r.w)));
    const y1 = Math.max(y0, Math.min(height, Math.round(r.y + r.h)));
    return { x0, y0, x1, y1, q: qoffsetFor(r.qpOffset, strength) };
  }).filter((r) => r.x1 > r.x0 && r.y1 > r.y0);
  const overlaps = (a: (typeof clamped)[number], b: (typeof clamped)[number]) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
  return clamped
    .filter((r, i) => r.q !== 0 || clamped.slice(i + 1).some((later) => later.q !== 0 && overlaps(r, later)))
    .map((r) => `addroi=x=${r.x0}:y=${r.y0}:w=${r.x1 - r.x0}:h=${r.y1 - r.y0}:qoffset=${num(r.q)}:clear=0`);
}

/** Per segment, the addroi chain; empty chains get a whole-frame zero region if any chain is not empty. */
export function segmentChains(plan: Plan, strength: number): string[][] {
  const { width, height } = plan.input;
  const chains = plan.segments.map((seg) => addroiChain(seg.regions, strength, width, height));
  if (chains.every((c) => c.length === 0)) return chains;
  return chains.map((c) => (c.length ? c : [`addroi=x=0:y=0:w=${width}:h=${height}:qoffset=0:clear=0`]));
}

/**
 * Segments one split/trim/concat level takes. Every frame passes through each trim of the level, and
 * FFmpeg 5.1 picks the next filter to run by scanning the whole graph, so a flat graph costs O(N²)
 * per frame: on a 20-minute 320×180 video, 400 segments took 68 s to filter against 6 s for one.
 * Past this many, segments are grouped in two levels (about √N groups of √N).
 */
export const FLAT_SEGMENTS = 32;

type Piece = { startFrame: number; endFrame: number; chain: string[] } | { startFrame: number; endFrame: number; children: Piece[] };

/**
 * One level: `input` split over the pieces, each trimmed to its frames (counted from `origin`, where
 * the input starts) and given its addroi chain, or split again for a group, then joined by concat,
 * which `end` follows. Labels are prefixed with `tag`.
 */
function splitTrimConcat(input: string, pieces: Piece[], origin: number, tag: string, end: string, lines: string[]): void {
  lines.push(`${input}split=${pieces.length}${pieces.map((_, i) => `[${tag}s${i}]`).join('')};`);
  pieces.forEach((p, i) => {
    const trim = `trim=start_frame=${p.startFrame - origin}:end_frame=${p.endFrame - origin}`;
    if ('children' in p) splitTrimConcat(`[${tag}s${i}]${trim},`, p.children, p.startFrame, `${tag}g${i}`, `[${tag}v${i}];`, lines);
    else lines.push(`[${tag}s${i}]${[trim, ...p.chain].join(',')}[${tag}v${i}];`);
  });
  lines.push(`${pieces.map((_, i) => `[${tag}v${i}]`).join('')}concat=n=${pieces.length}:v=1:a=0${end}`);
}

export function buildRoiFilterGraph(plan: Plan, options: GraphOptions): string {
  const { strength, frameTimes, outputLabel } = options;
  const source = `[${options.inputLabel ?? '0:v:0'}]`;
  const segments = plan.segments;
  const chains = segmentChains(plan, strength);
  if (segments.length === 1) {
    const chain = chains[0]!;
    return `${source}${chain.length ? chain.join(',') : 'null'}[${outputLabel}]`;
  }
  let pieces: Piece[] = segments.map((seg, i) => ({ startFrame: seg.startFrame, endFrame: seg.endFrame, chain: chains[i]! }));
  if (pieces.length > FLAT_SEGMENTS) {
    const size = Math.ceil(Math.sqrt(pieces.length));
    pieces = Array.from({ length: Math.ceil(pieces.length / size) }, (_, g) => {
      const children = pieces.slice(g * size, (g + 1) * size);
      return { startFrame: children[0]!.startFrame, endFrame: children.at(-1)!.endFrame, children };
    });
  }
  const lines: string[] = [];
  splitTrimConcat(source, pieces, 0, '', ',', lines);
  const starts = segments.slice(1).map((s) => s.startFrame);
  lines.push(`${restoreTimestamps(starts, frameTimes).join(',')}[${outputLabel}]`);
  return lines.join('\n');
}

/**
 * Segment starts one setpts filter handles. FFmpeg's expression parser refuses a sum of about 90 or
 * more eq() terms (measured: 80 parse, 100 do not), which a long video or a fast-moving face reaches.
 */
export const STARTS_PER_SETPTS = 40;

/**
 * The setpts filters that put every frame back on its source time after concat: at each segment's
 * first frame, store the shift between concat's timestamp and the source's; subtract it for the
 * rest of the segment. Past STARTS_PER_SETPTS starts the work is split over a chain of filters, each
 * touching only the frames from its first start to the next filter's first (its own st/ld
 * variable is set at its first start, before any frame reads it).
 */
export function restoreTimestamps(starts: number[], frameTimes: Float64Array): string[] {
  const filters: string[] = [];
  for (let i = 0; i < starts.length; i += STARTS_PER_SETPTS) {
    const group = starts.slice(i, i + STARTS_PER_SETPTS);
    const next = starts[i + STARTS_PER_SETPTS];
    // Inside the single quotes commas need no escaping.
    // Nanosecond precision, and round(): setpts truncates, which could move a frame one tick early.
    const shift = group.map((f) => `eq(N,${f})*(PTS-STARTPTS-${Number(frameTimes[f]!.toFixed(9))}/TB)`).join('+');
    const isStart = group.map((f) => `eq(N,${f})`).join('+');
    const restored = `round(PTS-st(0,if(${isStart},${shift},ld(0))))`;
    const single = starts.length <= STARTS_PER_SETPTS;
    const range = next === undefined ? `gte(N,${group[0]})` : `between(N,${group[0]},${next - 1})`;
    filters.push(`setpts='${single ? restored : `if(${range},${restored},PTS)`}'`);
  }
  return filters;
}

/** x265 `zones`: frame ranges (inclusive end) with a bitrate multiplier. */
export function zonesParam(zones: PlanZone[]): string | undefined {
  const parts = zones.filter((z) => z.bitrateFactor !== 1).map((z) => `${z.startFrame},${z.endFrame - 1},b=${num(z.bitrateFactor)}`);
  return parts.length ? parts.join('/') : undefined;
}
