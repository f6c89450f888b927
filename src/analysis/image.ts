/** A square window of a frame, in frame pixels; parts outside the frame read as padding. */
export interface Window {
  x: number;
  y: number;
  size: number;
}

/**
 * Resamples a square window of an RGB24 frame into an NHWC float tensor of side `side`, values in
 * [-1, 1], as BlazeFace expects. Downscaling averages the source pixels under each output pixel
 * (a box filter) so small faces in a large frame are not lost to aliasing; upscaling is bilinear.
 */
export function windowToTensor(rgb: Uint8Array, width: number, height: number, win: Window, side: number, out: Float32Array): void {
  const scale = win.size / side;
  if (scale === 1 && Number.isInteger(win.x) && Number.isInteger(win.y) && win.x >= 0 && win.y >= 0 && win.x + side <= width && win.y + side <= height) {
    // Tiles cut at analysis resolution: a straight copy.
    for (let oy = 0; oy < side; oy++) {
      let i = ((win.y + oy) * width + win.x) * 3;
      let o = oy * side * 3;
      for (let k = 0; k < side * 3; k++) out[o++] = rgb[i++]! / 127.5 - 1;
    }
    return;
  }
  if (scale > 1.5) boxDownscale(rgb, width, height, win, side, scale, out);
  else bilinear(rgb, width, height, win, side, scale, out);
}

/**
 * Each output pixel is the mean of the source pixels under it, padding counting as black (-1) in
 * proportion to the area it covers. Rows are summed into per-column totals first, then columns, so
 * the cost is one pass over the window's pixels rather than one per output pixel and tap.
 */
function boxDownscale(rgb: Uint8Array, width: number, height: number, win: Window, side: number, scale: number, out: Float32Array): void {
  // Source column range [x0, x1) of each output column, and the part of it inside the frame.
  const cx0 = new Int32Array(side);
  const cx1 = new Int32Array(side);
  const spanX = new Int32Array(side);
  for (let ox = 0; ox < side; ox++) {
    const sx0 = Math.floor(win.x + ox * scale);
    const sx1 = Math.max(sx0 + 1, Math.floor(win.x + (ox + 1) * scale));
    spanX[ox] = sx1 - sx0;
    cx0[ox] = Math.min(width, Math.max(0, sx0));
    cx1[ox] = Math.min(width, Math.max(0, sx1));
  }
  const first = cx0[0]!;
  const last = cx1[side - 1]!;
  const columns = new Float64Array(Math.max(0, last - first) * 3);
  for (let oy = 0; oy < side; oy++) {
    const sy0 = Math.floor(win.y + oy * scale);
    const sy1 = Math.max(sy0 + 1, Math.floor(win.y + (oy + 1) * scale));
    const ry0 = Math.max(0, sy0);
    const ry1 = Math.min(height, sy1);
    columns.fill(0);
    for (let y = ry0; y < ry1; y++) {
      let i = (y * width + first) * 3;
      for (let k = 0; k < columns.length; k++) columns[k]! += rgb[i++]!;
    }
    const spanY = sy1 - sy0;
    let o = oy * side * 3;
    for (let ox = 0; ox < side; ox++) {
      let r = 0, g = 0, b = 0;
      for (let x = cx0[ox]!; x < cx1[ox]!; x++) {
        const k = (x - first) * 3;
        r += columns[k]!;
        g += columns[k + 1]!;
        b += columns[k + 2]!;
      }
      // (sum / 127.5 - padding) / total with padding at -1: sum / (127.5 total) - 1.
      const total = 127.5 * spanX[ox]! * spanY;
      out[o++] = r / total - 1;
      out[o++] = g / total - 1;
      out[o++] = b / total - 1;
    }
  }
}

/**
 * Bilinear resampling. A tap just outside the frame (within one pixel) reads the edge pixel, one
 * further out reads as padding; taps are resolved per column and per row once, not per pixel.
 */
function bilinear(rgb: Uint8Array, width: number, height: number, win: Window, side: number, scale: number, out: Float32Array): void {
  // For each output column: the two source columns (-1 where the tap reads padding) and the weight.
  const tapX = new Int32Array(side * 2);
  const weightX = new Float64Array(side);
  for (let ox = 0; ox < side; ox++) {
    const fx = win.x + (ox + 0.5) * scale - 0.5;
    const x0 = Math.floor(fx);
    weightX[ox] = fx - x0;
    tapX[2 * ox] = tap(x0, width);
    tapX[2 * ox + 1] = tap(x0 + 1, width);
  }
  let o = 0;
  for (let oy = 0; oy < side; oy++) {
    const fy = win.y + (oy + 0.5) * scale - 0.5;
    const y0 = Math.floor(fy);
    const wy = fy - y0;
    const row0 = tap(y0, height);
    const row1 = tap(y0 + 1, height);
    for (let ox = 0; ox < side; ox++) {
      const wx = weightX[ox]!;
      const xa = tapX[2 * ox]!;
      const xb = tapX[2 * ox + 1]!;
      const i00 = row0 < 0 || xa < 0 ? -1 : (row0 * width + xa) * 3;
      const i10 = row0 < 0 || xb < 0 ? -1 : (row0 * width + xb) * 3;
      const i01 = row1 < 0 || xa < 0 ? -1 : (row1 * width + xa) * 3;
      const i11 = row1 < 0 || xb < 0 ? -1 : (row1 * width + xb) * 3;
      for (let c = 0; c < 3; c++) {
        const p00 = i00 < 0 ? -1 : rgb[i00 + c]! / 127.5 - 1;
        const p10 = i10 < 0 ? -1 : rgb[i10 + c]! / 127.5 - 1;
        const p01 = i01 < 0 ? -1 : rgb[i01 + c]! / 127.5 - 1;
        const p11 = i11 < 0 ? -1 : rgb[i11 + c]! / 127.5 - 1;
        out[o++] = (p00 * (1 - wx) + p10 * wx) * (1 - wy) + (p01 * (1 - wx) + p11 * wx) * wy;
      }
    }
  }
}

/** The source index a bilinear tap reads: clamped to the edge within one pixel of the frame, -1 (padding) beyond. */
function tap(v: number, length: number): number {
  if (v >= 0 && v < length) return v;
  return v >= -1 && v <= length ? Math.min(length - 1, Math.max(0, v)) : -1;
}

const THUMB_W = 32;
const THUMB_H = 18;

/** A grey 32×18 thumbnail: box-filtered luma of a frame, for a cheap scene-change signal between samples. */
export function thumbnail(frame: { rgb: Uint8Array; width: number; height: number }): Float32Array {
  const out = new Float32Array(THUMB_W * THUMB_H);
  const count = new Float32Array(THUMB_W * THUMB_H);
  const { rgb, width, height } = frame;
  // Every second pixel of every second row is plenty for a 32×18 average.
  for (let y = 0; y < height; y += 2) {
    const ty = Math.min(THUMB_H - 1, Math.floor((y * THUMB_H) / height));
    for (let x = 0; x < width; x += 2) {
      const t = ty * THUMB_W + Math.min(THUMB_W - 1, Math.floor((x * THUMB_W) / width));
      const i = (y * width + x) * 3;
      out[t]! += 0.299 * rgb[i]! + 0.587 * rgb[i + 1]! + 0.114 * rgb[i + 2]!;
      count[t]!++;
    }
  }
  for (let t = 0; t < out.length; t++) out[t] = out[t]! / Math.max(1, count[t]!);
  return out;
}

/** Mean absolute difference of two thumbnails, 0–255. */
export function meanAbsDiff(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

/**
 * How different two thumbnails are once camera motion is allowed for: the smallest mean absolute
 * difference (0–255) over shifts of up to 4 columns and 2 rows (an eighth of the frame each way),
 * compared on the overlap. A pan scores low; a cut, a flash or new content scores as high as without.
 */
export function sceneDistance(a: Float32Array, b: Float32Array): number {
  let best = Infinity;
  for (let dy = -2; dy <= 2; dy++) {
    for (let dx = -4; dx <= 4; dx++) {
      let sum = 0;
      let n = 0;
      for (let y = Math.max(0, dy); y < THUMB_H + Math.min(0, dy); y++) {
        for (let x = Math.max(0, dx); x < THUMB_W + Math.min(0, dx); x++) {
          sum += Math.abs(a[y * THUMB_W + x]! - b[(y - dy) * THUMB_W + (x - dx)]!);
          n++;
        }
      }
      best = Math.min(best, sum / n);
    }
  }
  return best;
}

/** Side of the grey patches that tell a still face from one that moved (facePatch). */
export const PATCH_SIDE = 8;

/**
 * A grey PATCH_SIDE² picture of one box of a frame (box-filtered luma, the box widened by a quarter
 * of its size on every side so that a face moving by a fraction of its size shifts the patch by
 * whole cells). Scale-free: a 15 px face and a 150 px one give the same-sized patch, so one
 * threshold on meanAbsDiff tells still from moved at every size. Parts outside the frame read 0.
 */
export function facePatch(frame: { rgb: Uint8Array; width: number; height: number }, box: { x: number; y: number; w: number; h: number }): Float32Array {
  const { rgb, width, height } = frame;
  const out = new Float32Array(PATCH_SIDE * PATCH_SIDE);
  const x0 = box.x - box.w / 4;
  const y0 = box.y - box.h / 4;
  const cw = (box.w * 1.5) / PATCH_SIDE;
  const ch = (box.h * 1.5) / PATCH_SIDE;
  for (let py = 0; py < PATCH_SIDE; py++) {
    const ya = Math.max(0, Math.floor(y0 + py * ch));
    const yb = Math.min(height, Math.max(ya + 1, Math.floor(y0 + (py + 1) * ch)));
    for (let px = 0; px < PATCH_SIDE; px++) {
      const xa = Math.max(0, Math.floor(x0 + px * cw));
      const xb = Math.min(width, Math.max(xa + 1, Math.floor(x0 + (px + 1) * cw)));
      let sum = 0;
      let n = 0;
      for (let y = ya; y < yb; y++) {
        let i = (y * width + xa) * 3;
        for (let x = xa; x < xb; x++, i += 3) sum += 0.299 * rgb[i]! + 0.587 * rgb[i + 1]! + 0.114 * rgb[i + 2]!;
        n += xb - xa;
      }
      out[py * PATCH_SIDE + px] = n > 0 ? sum / n : 0;
    }
  }
  return out;
}

/**
 * The largest change of one thumbnail cell (0–255) between two thumbnails of frames `width`×`height`,
 * leaving out the cells any of `ignore` (boxes in frame pixels) touches: how much the picture
 * changed away from the faces already known.
 */
export function largestCellChange(a: Float32Array, b: Float32Array, width: number, height: number, ignore: readonly { x: number; y: number; w: number; h: number }[]): number {
  const skip = new Uint8Array(THUMB_W * THUMB_H);
  for (const box of ignore) {
    const cx0 = Math.max(0, Math.floor((box.x * THUMB_W) / width));
    const cx1 = Math.min(THUMB_W - 1, Math.floor(((box.x + box.w) * THUMB_W) / width));
    const cy0 = Math.max(0, Math.floor((box.y * THUMB_H) / height));
    const cy1 = Math.min(THUMB_H - 1, Math.floor(((box.y + box.h) * THUMB_H) / height));
    for (let y = cy0; y <= cy1; y++) for (let x = cx0; x <= cx1; x++) skip[y * THUMB_W + x] = 1;
  }
  let largest = 0;
  for (let i = 0; i < a.length; i++) if (!skip[i]) largest = Math.max(largest, Math.abs(a[i]! - b[i]!));
  return largest;
}
