/**
 * Sending each frame range of a video through its own chain of filters. Filters like `addroi` and
 * `drawbox` are static per instance (or evaluate an expression on every frame), so the timeline is
 * split: `split=N`, per range `trim` (exact frame numbers) and its chain, then `concat`; past
 * FLAT_SEGMENTS ranges, in two such levels.
 *
 * concat re-times every range after the first from its own idea of range durations, which is wrong
 * for variable frame rate. A final `setpts` puts every frame back on its original time: at each
 * range's first frame it stores the shift between concat's timestamp and the source's (known exactly
 * from probing), and subtracts it for the rest of the range.
 */

/**
 * Segments one split/trim/concat level takes. Every frame passes through each trim of the level, and
 * FFmpeg 5.1 picks the next filter to run by scanning the whole graph, so a flat graph costs O(N²)
 * per frame: on a 20-minute 320×180 video, 400 segments took 68 s to filter against 6 s for one.
 * Past this many, segments are grouped in two levels (about √N groups of √N).
 */
export const FLAT_SEGMENTS = 32;

/** A frame range [startFrame, endFrame) of the input and the filters it alone goes through. */
export interface GraphPiece {
  startFrame: number;
  endFrame: number;
  chain: string[];
}

type Piece = GraphPiece | { startFrame: number; endFrame: number; children: Piece[] };

/**
 * One level: `input` split over the pieces, each trimmed to its frames (counted from `origin`, where
 * the input starts) and given its chain, or split again for a group, then joined by concat,
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

/**
 * The filtergraph that sends each frame range of `source` through its own chain of static filters
 * (addroi for encodes, drawbox for the debug video): split/trim/concat, in two levels past
 * FLAT_SEGMENTS pieces, then every frame put back on its source time. Pieces cover every frame, in order.
 */
export function segmentedGraph(source: string, pieces: GraphPiece[], frameTimes: Float64Array, outputLabel: string): string {
  if (pieces.length === 1) {
    const chain = pieces[0]!.chain;
    return `${source}${chain.length ? chain.join(',') : 'null'}[${outputLabel}]`;
  }
  let levels: Piece[] = pieces;
  if (pieces.length > FLAT_SEGMENTS) {
    const size = Math.ceil(Math.sqrt(pieces.length));
    levels = Array.from({ length: Math.ceil(pieces.length / size) }, (_, g) => {
      const children = pieces.slice(g * size, (g + 1) * size);
      return { startFrame: children[0]!.startFrame, endFrame: children.at(-1)!.endFrame, children };
    });
  }
  const lines: string[] = [];
  splitTrimConcat(source, levels, 0, '', ',', lines);
  const starts = pieces.slice(1).map((p) => p.startFrame);
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
