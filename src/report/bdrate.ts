/**
 * Bjøntegaard delta rate (VCEG-M33): how much more (positive) or less (negative) bitrate the test
 * curve needs for the same quality as the anchor, in percent. Each curve's log10(rate) is fitted with
 * a cubic polynomial in quality (least squares, exact for four points), both fits are integrated over
 * the quality range the curves share, and the mean log-rate difference d gives (10^d − 1) × 100.
 */
export interface RatePoint {
  rate: number;
  quality: number;
}

/** Least-squares polynomial fit of y on x; coefficients from the constant term up. */
export function polyfit(xs: number[], ys: number[], degree: number): number[] {
  const n = degree + 1;
  // Normal equations (XᵀX) c = Xᵀy, solved by Gaussian elimination with partial pivoting.
  const a = Array.from({ length: n }, () => new Array<number>(n + 1).fill(0));
  for (let k = 0; k < xs.length; k++) {
    const pow = Array.from({ length: 2 * n }, (_, i) => xs[k]! ** i);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) a[i]![j]! += pow[i + j]!;
      a[i]![n]! += pow[i]! * ys[k]!;
    }
  }
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[pivot]![col]!)) pivot = r;
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = a[r]![col]! / a[col]![col]!;
      for (let c = col; c <= n; c++) a[r]![c]! -= f * a[col]![c]!;
    }
  }
  return a.map((row, i) => row[n]! / row[i]!);
}

function integral(coeffs: number[], lo: number, hi: number): number {
  let sum = 0;
  coeffs.forEach((c, i) => {
    sum += (c / (i + 1)) * (hi ** (i + 1) - lo ** (i + 1));
  });
  return sum;
}

/** BD-rate of `test` against `anchor`, percent; NaN when the curves share no quality range. */
export function bdRate(anchor: RatePoint[], test: RatePoint[]): number {
  const usable = (pts: RatePoint[]) => pts.filter((p) => p.rate > 0 && Number.isFinite(p.quality));
  const a = usable(anchor);
  const t = usable(test);
  if (a.length < 2 || t.length < 2) return NaN;
  const degree = Math.min(3, a.length - 1, t.length - 1);
  const fa = polyfit(a.map((p) => p.quality), a.map((p) => Math.log10(p.rate)), degree);
  const ft = polyfit(t.map((p) => p.quality), t.map((p) => Math.log10(p.rate)), degree);
  const lo = Math.max(Math.min(...a.map((p) => p.quality)), Math.min(...t.map((p) => p.quality)));
  const hi = Math.min(Math.max(...a.map((p) => p.quality)), Math.max(...t.map((p) => p.quality)));
  if (!(hi > lo)) return NaN;
  const diff = (integral(ft, lo, hi) - integral(fa, lo, hi)) / (hi - lo);
  return (10 ** diff - 1) * 100;
}
