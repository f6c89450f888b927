/**
 * Builds models/saliency-ft.onnx, the built-in saliency model: frequency-tuned saliency (Achanta et
 * al., CVPR 2009) in CIE Lab, measured against the frame's border colours rather than its mean, plus
 * motion energy against the previous sample, times a mild centre prior, written as a plain ONNX
 * graph (opset 13, a few KB of constants, no learned weights).
 *
 *   node --import tsx scripts/build-saliency-model.ts [out.onnx]
 *
 * The output is byte-for-byte deterministic; test/saliency.test.ts checks that the committed file
 * equals what this script builds.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { GraphBuilder } from './onnx-graph.js';

export interface SaliencyFtParams {
  /**
   * Colour reference: 'border' (default) takes, per pixel, the nearest of 12 mean colours of patches
   * along the frame's edges (thirds of each side, 1/12 of the frame deep), a background prior as in
   * graph-based saliency (Yang et al. 2013); 'mean' is Achanta's original frame-mean colour.
   */
  reference: 'border' | 'mean';
  /** Weight of the colour term (ΔE76 from the reference colour, after a 5×5 binomial blur). */
  colourWeight: number;
  /** Weight of the motion term (ΔE76 between this and the previous sample, less its frame mean). */
  motionWeight: number;
  /** The map is divided by max(peak, this) in ΔE units, so a frame without contrast stays dark. */
  peakFloor: number;
  /** Centre prior: floor + (1 - floor) · exp(-(dx² + dy²) / (2 sigma²)), dx, dy in frame widths and heights from the centre. */
  priorSigma: number;
  priorFloor: number;
}

/** The constants of the shipped graph; changing any of them changes the model file. */
export const SALIENCY_FT_PARAMS: Readonly<SaliencyFtParams> = {
  reference: 'border',
  colourWeight: 1,
  motionWeight: 1.5,
  peakFloor: 20,
  priorSigma: 0.3,
  priorFloor: 0.4,
};

export function buildSaliencyModel(p: Readonly<SaliencyFtParams> = SALIENCY_FT_PARAMS): Uint8Array {
  const g = new GraphBuilder('saliency-ft');
  const image = g.input('image', [1, 3, 'height', 'width']);
  const previous = g.input('previous', [1, 3, 'height', 'width']);

  // x^k for x > 0 as exp(k·ln x): ONNX Runtime's Pow is scalar code, Exp and Log are vectorised.
  const power = (x: string, k: number) => g.node('Exp', [g.node('Mul', [g.node('Log', [x]), g.scalar(k)])]);

  // Both frames go through colour conversion and blur as one batch of two.
  const rgb = g.node('Concat', [image, previous], { axis: { int: 0 } });

  // sRGB (0–1) → linear light, the exact piecewise curve of IEC 61966-2-1.
  const clipped = g.node('Clip', [rgb, g.scalar(0), g.scalar(1)]);
  const curve = power(g.node('Div', [g.node('Add', [clipped, g.scalar(0.055)]), g.scalar(1.055)]), 2.4);
  const toe = g.node('Div', [clipped, g.scalar(12.92)]);
  const linear = g.node('Where', [g.node('Greater', [clipped, g.scalar(0.04045)]), curve, toe]);

  // Linear sRGB → XYZ (D65), each row divided by the white point, as a 1×1 convolution.
  const white = [0.95047, 1, 1.08883];
  const m = [
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.072175],
    [0.0193339, 0.119192, 0.9503041],
  ];
  const xyzWeights = m.flatMap((row, i) => row.map((v) => v / white[i]!));
  const xyz = g.node('Conv', [linear, g.floats([3, 3, 1, 1], xyzWeights)]);
  // CIE f(t): cube root above (6/29)³, the linear toe below it.
  const eps = (6 / 29) ** 3;
  const cube = power(g.node('Max', [xyz, g.scalar(eps)]), 1 / 3);
  const lin = g.node('Add', [g.node('Mul', [xyz, g.scalar(1 / (3 * (6 / 29) ** 2))]), g.scalar(4 / 29)]);
  const f = g.node('Where', [g.node('Greater', [xyz, g.scalar(eps)]), cube, lin]);
  // f → L*, a*, b*: another 1×1 convolution with a bias.
  const labWeights = [0, 116, 0, 500, -500, 0, 0, 200, -200];
  const lab = g.node('Conv', [f, g.floats([3, 3, 1, 1], labWeights), g.floats([3], [-16, 0, 0])]);

  // 5×5 binomial blur per channel (depthwise, separable), edges replicated so borders do not look salient.
  const binomial = [1, 4, 6, 4, 1].map((v) => v / 16);
  const kernel = [...binomial, ...binomial, ...binomial];
  const padded = g.node('Pad', [lab, g.int64s([8], [0, 0, 2, 2, 0, 0, 2, 2])], { mode: { string: 'edge' } });
  const rows = g.node('Conv', [padded, g.floats([3, 1, 1, 5], kernel)], { group: { int: 3 }, kernel_shape: { ints: [1, 5] } });
  const blurred = g.node('Conv', [rows, g.floats([3, 1, 5, 1], kernel)], { group: { int: 3 }, kernel_shape: { ints: [5, 1] } });
  const [current, before] = g.nodeN('Split', [blurred], 2, { axis: { int: 0 } });

  // Frequency-tuned saliency: ΔE between each blurred pixel and the reference colour(s).
  const channelAxis = g.int64s([1], [1]);
  const deltaE2 = (a: string, b: string) => {
    const d = g.node('Sub', [a, b]);
    return g.node('ReduceSum', [g.node('Mul', [d, d]), channelAxis], { keepdims: { int: 1 } });
  };
  const deltaE = (a: string, b: string) => g.node('Sqrt', [deltaE2(a, b)]);
  const shape = g.node('Shape', [image]);
  let colour: string;
  if (p.reference === 'border') {
    // 12 border patches: [row0, row1, col0, col1) as int64 [1] values computed from the input's shape.
    const dim = (i: number) => g.node('Gather', [shape, g.int64s([1], [i])], { axis: { int: 0 } });
    const H = dim(2), W = dim(3);
    const idiv = (a: string, k: number) => g.node('Div', [a, g.int64s([1], [k])]);
    const imul = (a: string, k: number) => g.node('Mul', [a, g.int64s([1], [k])]);
    const one = g.int64s([1], [1]);
    const zero = g.int64s([1], [0]);
    const th = g.node('Max', [idiv(H, 12), one]);
    const tw = g.node('Max', [idiv(W, 12), one]);
    const h1 = idiv(H, 3), h2 = idiv(imul(H, 2), 3), w1 = idiv(W, 3), w2 = idiv(imul(W, 2), 3);
    const bottom = g.node('Sub', [H, th]);
    const right = g.node('Sub', [W, tw]);
    const cols: [string, string][] = [[zero, w1], [w1, w2], [w2, W]];
    const rowsR: [string, string][] = [[zero, h1], [h1, h2], [h2, H]];
    const patches: [string, string, string, string][] = [
      ...cols.map(([c0, c1]) => [zero, th, c0, c1] as [string, string, string, string]),
      ...cols.map(([c0, c1]) => [bottom, H, c0, c1] as [string, string, string, string]),
      ...rowsR.map(([r0, r1]) => [r0, r1, zero, tw] as [string, string, string, string]),
      ...rowsR.map(([r0, r1]) => [r0, r1, right, W] as [string, string, string, string]),
    ];
    const axes23 = g.int64s([2], [2, 3]);
    const means = patches.map(([r0, r1, c0, c1]) => {
      const starts = g.node('Concat', [r0, c0], { axis: { int: 0 } });
      const ends = g.node('Concat', [r1, c1], { axis: { int: 0 } });
      return g.node('ReduceMean', [g.node('Slice', [current!, starts, ends, axes23])], { axes: { ints: [2, 3] }, keepdims: { int: 1 } });
    });
    // [12,3,1,1] references against [1,3,H,W] pixels: squared ΔE [12,1,H,W], nearest reference wins.
    const refs = g.node('Concat', means, { axis: { int: 0 } });
    colour = g.node('Sqrt', [g.node('ReduceMin', [deltaE2(current!, refs)], { axes: { ints: [0] }, keepdims: { int: 1 } })]);
  } else {
    const mean = g.node('ReduceMean', [current!], { axes: { ints: [2, 3] }, keepdims: { int: 1 } });
    colour = deltaE(current!, mean);
  }

  // Motion energy: ΔE between the blurred frames, less its frame mean (fades, noise, some camera motion).
  const change = deltaE(current!, before!);
  const changeMean = g.node('ReduceMean', [change], { axes: { ints: [2, 3] }, keepdims: { int: 1 } });
  const motion = g.node('Relu', [g.node('Sub', [change, changeMean])]);

  const combined = g.node('Add', [g.node('Mul', [colour, g.scalar(p.colourWeight)]), g.node('Mul', [motion, g.scalar(p.motionWeight)])]);

  // Centre prior from the input's own height and width: [H,1] + [1,W] → [H,W].
  const axisCoord = (index: number, unsqueezeAxis: number) => {
    const n = g.node('Cast', [g.node('Gather', [shape, g.int64s([], [index])], { axis: { int: 0 } })], { to: { int: 1 } });
    const r = g.node('Range', [g.scalar(0), n, g.scalar(1)]);
    const centred = g.node('Sub', [g.node('Div', [g.node('Add', [r, g.scalar(0.5)]), n]), g.scalar(0.5)]);
    return g.node('Unsqueeze', [g.node('Mul', [centred, centred]), g.int64s([1], [unsqueezeAxis])]);
  };
  const d2 = g.node('Add', [axisCoord(2, 1), axisCoord(3, 0)]);
  const gauss = g.node('Exp', [g.node('Mul', [d2, g.scalar(-1 / (2 * p.priorSigma ** 2))])]);
  const prior = g.node('Add', [g.node('Mul', [gauss, g.scalar(1 - p.priorFloor)]), g.scalar(p.priorFloor)]);
  const weighted = g.node('Mul', [combined, prior]);

  // 0–1: divide by the peak, but never by less than the floor.
  const peak = g.node('ReduceMax', [weighted], { keepdims: { int: 1 } });
  const divisor = g.node('Max', [peak, g.scalar(p.peakFloor)]);
  g.node('Div', [weighted, divisor], {}, 'saliency');
  g.output('saliency', [1, 1, 'height', 'width']);

  return g.encode({
    opset: 13,
    docString:
      'Frequency-tuned saliency (Achanta et al. 2009) in CIE Lab against border colours, plus motion energy against the previous sample, ' +
      'times a centre prior; inputs are sRGB in 0-1, NCHW; previous = image when there is no previous sample. ' +
      'Built by scripts/build-saliency-model.ts in roi-encoder. Not a learned model.',
    metadata: Object.fromEntries(Object.entries(p).map(([k, v]) => [k, String(v)])),
  });
}

const here = dirname(fileURLToPath(import.meta.url));
export const SALIENCY_FT_PATH = join(here, '..', 'models', 'saliency-ft.onnx');

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const out = process.argv[2] ?? SALIENCY_FT_PATH;
  const bytes = buildSaliencyModel();
  writeFileSync(out, bytes);
  console.log(`wrote ${out} (${bytes.length} bytes)`);
}
