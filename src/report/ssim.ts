/**
 * SSIM on one 8-bit plane, the way ffmpeg's ssim filter computes it (the x264 formulation): sums over
 * 4×4 blocks, SSIM of every 8×8 window made of 2×2 neighbouring blocks (so windows step by 4 pixels),
 * with the usual constants C1 = (0.01·255)², C2 = (0.03·255)² in integer-sum form. The frame SSIM is
 * the mean over windows. Unlike the filter, each window can also be credited to a class (face,
 * background, neither) read off a mask, so masked SSIM is pooled over exactly the windows that lie
 * wholly on a face (or wholly on the background). The test suite checks the unmasked mean against ffmpeg's own.
 */
const C1 = Math.trunc(0.01 * 0.01 * 255 * 255 * 64 + 0.5);
const C2 = Math.trunc(0.03 * 0.03 * 255 * 255 * 64 * 63 + 0.5);

export interface SsimSums {
  /** Sum of window SSIMs and window count, per mask class (index = class value). */
  sum: Float64Array;
  count: Float64Array;
}

/** Scratch space for one plane size, reused across frames so the work allocates nothing per frame. */
export class SsimPlane {
  private readonly bw: number;
  private readonly bh: number;
  private readonly blocks: Float64Array;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.bw = width >> 2;
    this.bh = height >> 2;
    this.blocks = new Float64Array(this.bw * this.bh * 4);
  }

  /**
   * Adds this frame's windows to `into`. `a` and `b` are the planes (row stride = width);
   * `mask[y * width + x]` gives each window's class (0 … classes-1); without a mask all go to class 0.
   * Returns the frame's mean SSIM over all windows.
   */
  accumulate(a: Uint8Array, b: Uint8Array, into: SsimSums, mask?: Uint8Array): number {
    const { width, bw, bh, blocks } = this;
    for (let by = 0; by < bh; by++) {
      for (let bx = 0; bx < bw; bx++) {
        let s1 = 0, s2 = 0, ss = 0, s12 = 0;
        for (let y = 0; y < 4; y++) {
          let i = (4 * by + y) * width + 4 * bx;
          for (let x = 0; x < 4; x++, i++) {
            const p = a[i]!, q = b[i]!;
            s1 += p;
            s2 += q;
            ss += p * p + q * q;
            s12 += p * q;
          }
        }
        const k = 4 * (by * bw + bx);
        blocks[k] = s1;
        blocks[k + 1] = s2;
        blocks[k + 2] = ss;
        blocks[k + 3] = s12;
      }
    }
    let total = 0, n = 0;
    for (let by = 0; by + 1 < bh; by++) {
      for (let bx = 0; bx + 1 < bw; bx++) {
        // The window's four blocks: (bx, by), (bx+1, by), (bx, by+1), (bx+1, by+1).
        const k0 = 4 * (by * bw + bx), k1 = k0 + 4 * bw;
        const s1 = blocks[k0]! + blocks[k0 + 4]! + blocks[k1]! + blocks[k1 + 4]!;
        const s2 = blocks[k0 + 1]! + blocks[k0 + 5]! + blocks[k1 + 1]! + blocks[k1 + 5]!;
        const ss = blocks[k0 + 2]! + blocks[k0 + 6]! + blocks[k1 + 2]! + blocks[k1 + 6]!;
        const s12 = blocks[k0 + 3]! + blocks[k0 + 7]! + blocks[k1 + 3]! + blocks[k1 + 7]!;
        const vars = ss * 64 - s1 * s1 - s2 * s2;
        const covar = s12 * 64 - s1 * s2;
        const v = ((2 * s1 * s2 + C1) * (2 * covar + C2)) / ((s1 * s1 + s2 * s2 + C1) * (vars + C2));
        total += v;
        n++;
        let cls = 0;
        if (mask) {
          // A window belongs to a class only if it lies wholly in it (all four blocks agree); windows
          // straddling a boundary go to class 0, so background SSIM never sees face pixels.
          const r0 = (4 * by + 2) * width + 4 * bx + 2, r1 = r0 + 4 * width;
          cls = mask[r0]!;
          if (mask[r0 + 4] !== cls || mask[r1] !== cls || mask[r1 + 4] !== cls) cls = 0;
        }
        into.sum[cls]! += v;
        into.count[cls]! += 1;
      }
    }
    return n ? total / n : 1;
  }
}

export function newSsimSums(classes: number): SsimSums {
  return { sum: new Float64Array(classes), count: new Float64Array(classes) };
}
