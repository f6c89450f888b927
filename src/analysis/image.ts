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
  const pad = -1; // black, as MediaPipe letterboxes
  if (scale === 1 && Number.isInteger(win.x) && Number.isInteger(win.y) && win.x >= 0 && win.y >= 0 && win.x + side <= width && win.y + side <= height) {
    // Tiles cut at analysis resolution: a straight copy.
    for (let oy = 0; oy < side; oy++) {
      let i = ((win.y + oy) * width + win.x) * 3;
      let o = oy * side * 3;
      for (let k = 0; k < side * 3; k++) out[o++] = rgb[i++]! / 127.5 - 1;
    }
    return;
  }
  if (scale > 1.5) {
    for (let oy = 0; oy < side; oy++) {
      const sy0 = Math.floor(win.y + oy * scale);
      const sy1 = Math.max(sy0 + 1, Math.floor(win.y + (oy + 1) * scale));
      for (let ox = 0; ox < side; ox++) {
        const sx0 = Math.floor(win.x + ox * scale);
        const sx1 = Math.max(sx0 + 1, Math.floor(win.x + (ox + 1) * scale));
        let r = 0, g = 0, b = 0, n = 0, total = 0;
        for (let sy = sy0; sy < sy1; sy++) {
          for (let sx = sx0; sx < sx1; sx++) {
            total++;
            if (sx < 0 || sy < 0 || sx >= width || sy >= height) continue;
            const i = (sy * width + sx) * 3;
            r += rgb[i]!;
            g += rgb[i + 1]!;
            b += rgb[i + 2]!;
            n++;
          }
        }
        const o = (oy * side + ox) * 3;
        // Padding counts as black in proportion to the area it covers.
        const padShare = total - n;
        out[o] = (r / 127.5 + pad * padShare - n) / total;
        out[o + 1] = (g / 127.5 + pad * padShare - n) / total;
        out[o + 2] = (b / 127.5 + pad * padShare - n) / total;
      }
    }
    return;
  }
  for (let oy = 0; oy < side; oy++) {
    const fy = win.y + (oy + 0.5) * scale - 0.5;
    const y0 = Math.floor(fy);
    const wy = fy - y0;
    for (let ox = 0; ox < side; ox++) {
      const fx = win.x + (ox + 0.5) * scale - 0.5;
      const x0 = Math.floor(fx);
      const wx = fx - x0;
      const o = (oy * side + ox) * 3;
      for (let c = 0; c < 3; c++) {
        const p00 = sample(rgb, width, height, x0, y0, c);
        const p10 = sample(rgb, width, height, x0 + 1, y0, c);
        const p01 = sample(rgb, width, height, x0, y0 + 1, c);
        const p11 = sample(rgb, width, height, x0 + 1, y0 + 1, c);
        out[o + c] = (p00 * (1 - wx) + p10 * wx) * (1 - wy) + (p01 * (1 - wx) + p11 * wx) * wy;
      }
    }
  }
}

function sample(rgb: Uint8Array, width: number, height: number, x: number, y: number, c: number): number {
  if (x < 0 || y < 0 || x >= width || y >= height) {
    // Clamp at the frame edge when just outside it (bilinear taps), pad further out.
    if (x >= -1 && y >= -1 && x <= width && y <= height) {
      x = Math.min(width - 1, Math.max(0, x));
      y = Math.min(height - 1, Math.max(0, y));
    } else {
      return -1;
    }
  }
  return rgb[(y * width + x) * 3 + c]! / 127.5 - 1;
}
