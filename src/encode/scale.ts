import { RoiError } from '../media/errors.js';
import { conflict, expectInteger, invalid } from '../media/validate.js';
import type { Plan, PlanRegion } from '../plan/plan.js';

/**
 * Delivering a smaller picture than the source (`height` or `width`: a 1080p source as 720p). Pure.
 *
 * The analysis and the plan stay on the source; only the encode scales. ffmpeg 5.1's `scale` copies
 * ROI side data through unchanged (measured with showinfo: a region at (16,16)-(32,32) of a 64x64
 * frame is still there on the 32x32 output, now its bottom-right quarter), so the graph scales first
 * and adds the plan's regions, moved to output pixels, to the scaled frames.
 *
 * Sizes are the stored (coded) picture's, as everywhere in roi-encoder: a phone's portrait video,
 * stored 1920x1080 and rotated for display, is 720p with `height: 720` and plays as 720x1280.
 */

/** The one dimension asked for; the other follows from the source's aspect ratio. */
export interface ScaleRequest {
  dimension: 'width' | 'height';
  value: number;
}

export interface PictureSize {
  width: number;
  height: number;
}

/** Smallest output side: libx265 refuses pictures under 16 pixels in either direction (x264 takes them, but one limit is simpler to state). */
export const MIN_SCALED_SIZE = 16;
/** Largest value taken (HEVC level 6.2 is 8192 wide); upscaling is refused anyway, so this only bounds the message. */
export const MAX_SCALED_SIZE = 16384;

/**
 * Validates `height` / `width` (sharp-style). The given side must be an even integer from 16: 4:2:0
 * halves the chroma planes, so an odd side cannot be encoded, and rounding it silently would give a
 * size nobody asked for. The side that follows is rounded to even (ffmpeg's `-2` rounding).
 */
export function resolveScale(options: { width?: unknown; height?: unknown }): ScaleRequest | undefined {
  const { width, height } = options;
  if (width !== undefined && height !== undefined) throw conflict('height', 'width', 'the other side follows from the source\'s aspect ratio');
  if (width === undefined && height === undefined) return undefined;
  const dimension = width !== undefined ? 'width' : 'height';
  const raw = width ?? height;
  const value = expectInteger(dimension, raw, MIN_SCALED_SIZE, MAX_SCALED_SIZE);
  if (value % 2) throw invalid(`even integer ${MIN_SCALED_SIZE}–${MAX_SCALED_SIZE} (4:2:0 video needs even sides)`, dimension, raw);
  return { dimension, value };
}

/** Nearest even integer (halves up), as ffmpeg's scale rounds a `-2` side. */
export function roundEven(v: number): number {
  return 2 * Math.round(v / 2);
}

/**
 * The output size for `request` on a `source` picture, aspect ratio kept; undefined when it is the
 * source's own size (nothing to scale: the output is what it would be without the option).
 *
 * Upscaling is refused: it adds pixels without detail, so it costs bits and encode time for nothing
 * a player's own upscaling at display would not give, and a too-large number is more likely a typo.
 */
export function scaledSize(source: PictureSize & { path?: string }, request: ScaleRequest): PictureSize | undefined {
  const { dimension, value } = request;
  const other = dimension === 'height' ? 'width' : 'height';
  const from = source[dimension];
  if (value > from) {
    throw new RoiError('INVALID_OPTION', `${dimension} ${value} is above the source's ${from} (${source.path ?? 'the input'} is ${source.width}x${source.height}): roi-encoder scales down only, as upscaling adds pixels without detail`, { option: dimension });
  }
  if (value === from) return undefined;
  const size = { [dimension]: value, [other]: roundEven((value * source[other]) / from) } as unknown as PictureSize;
  if (size.width < MIN_SCALED_SIZE || size.height < MIN_SCALED_SIZE) {
    throw new RoiError('INVALID_OPTION', `${dimension} ${value} makes the ${source.width}x${source.height} input ${size.width}x${size.height}, too small to encode: x265 needs at least ${MIN_SCALED_SIZE}x${MIN_SCALED_SIZE} pixels`, { option: dimension });
  }
  return size;
}

/** The filter that makes the output picture: lanczos, the sharpest of swscale's usual kernels for downscaling. */
export function scaleFilter(size: PictureSize): string {
  return `scale=${size.width}:${size.height}:flags=lanczos`;
}

/**
 * A source-pixel region in output pixels, grown outward to whole `block`s of the output (the grid
 * libx265 and libx264 apply offsets on, which they round outward too): a region never loses a block
 * it touched, so a face keeps all of its blocks, and a region too small for one output block still
 * gets one.
 */
export function scaleRegion(r: PlanRegion, source: PictureSize, output: PictureSize, block: number): PlanRegion {
  const sx = output.width / source.width;
  const sy = output.height / source.height;
  // A hair of slack: 48 × (2/3) must stay 32, not ceil to 33 by rounding error.
  const down = (v: number) => Math.floor(v + 1e-9);
  const up = (v: number) => Math.ceil(v - 1e-9);
  const x0 = Math.min(output.width, Math.max(0, down((r.x * sx) / block) * block));
  const y0 = Math.min(output.height, Math.max(0, down((r.y * sy) / block) * block));
  const x1 = Math.min(output.width, up(((r.x + r.w) * sx) / block) * block);
  const y1 = Math.min(output.height, up(((r.y + r.h) * sy) / block) * block);
  return { ...r, x: x0, y: y0, w: Math.max(0, x1 - x0), h: Math.max(0, y1 - y0) };
}

/**
 * The plan as it applies to a scaled output: its input is the output's size, every segment's regions
 * are in output blocks (scaleRegion, what the encode's addroi gets), and the detections' boxes are
 * scaled exactly (what a face measurement on the output masks); frames, zones, cuts and offsets
 * unchanged.
 */
export function scalePlan(plan: Plan, output: PictureSize, block: number): Plan {
  const source = { width: plan.input.width, height: plan.input.height };
  const sx = output.width / source.width;
  const sy = output.height / source.height;
  const box = <T extends { x: number; y: number; w: number; h: number }>(b: T): T => ({ ...b, x: b.x * sx, y: b.y * sy, w: b.w * sx, h: b.h * sy });
  return {
    ...plan,
    input: { ...plan.input, width: output.width, height: output.height },
    detections: plan.detections.map((d) => ({ ...d, faces: d.faces.map(box), ...(d.salient ? { salient: d.salient.map(box) } : {}) })),
    segments: plan.segments.map((seg) => ({
      ...seg,
      regions: seg.regions.map((r) => scaleRegion(r, source, output, block)).filter((r) => r.w > 0 && r.h > 0),
    })),
  };
}
