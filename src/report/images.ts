import sharp from 'sharp';
import type { Box } from '../analysis/boxes.js';
import { RoiError } from '../media/errors.js';
import type { Binaries } from '../media/binaries.js';
import { run } from '../media/process.js';
import type { PlanRegion } from '../plan/plan.js';

/**
 * Pictures for the report: one decoded frame with the plan drawn over it, and crops of the same
 * frame from different encodes, enlarged with nearest-neighbour so compression artefacts stay
 * visible instead of being smoothed away by the browser.
 */
export interface RgbFrame {
  data: Buffer;
  width: number;
  height: number;
}

/** Frame `index` (0-based, decode order of presentation) of a video, as stored (coded orientation). */
export async function extractFrame(file: string, index: number, width: number, height: number, bins: Binaries, signal?: AbortSignal): Promise<RgbFrame> {
  const chunks: Buffer[] = [];
  await run(bins.ffmpeg, [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error',
    '-noautorotate', '-i', file,
    '-vf', `select=eq(n\\,${index}),format=rgb24`, '-frames:v', '1', '-fps_mode', 'passthrough',
    '-f', 'rawvideo', 'pipe:1',
  ], {
    signal,
    what: `extracting frame ${index}`,
    consumeStdout: async (stdout) => {
      for await (const chunk of stdout as AsyncIterable<Buffer>) chunks.push(chunk);
    },
  });
  const data = Buffer.concat(chunks);
  if (data.length !== width * height * 3) throw new RoiError('FRAME_MISSING', `could not decode frame ${index} of ${file}`);
  return { data, width, height };
}

const rawInput = (f: RgbFrame) => ({ raw: { width: f.width, height: f.height, channels: 3 as const } });

/** Heatmap colours; the report's legend uses the same. */
export const HEATMAP_COLOURS = { moreBits: '#ff2020', fewerBits: '#2060ff', salient: '#ffb000', face: '#00ff00' } as const;

const rgbOf = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];

/**
 * Colour and opacity (0–255) of a region on the heatmap: red where bits are added, blue where they
 * are saved, stronger with the offset. Salient regions are amber and always visible: their default
 * offset is 0 (base quality), which would otherwise leave them as invisible as untouched blocks.
 */
function regionFill(r: PlanRegion, maxAbs: number): { rgb: [number, number, number]; alpha: number } {
  const strength = Math.min(1, Math.abs(r.qpOffset) / Math.max(1, maxAbs));
  if (r.kind === 'saliency') return { rgb: rgbOf(HEATMAP_COLOURS.salient), alpha: Math.round(255 * (0.3 + 0.2 * strength)) };
  const rgb = rgbOf(r.qpOffset < 0 ? HEATMAP_COLOURS.moreBits : HEATMAP_COLOURS.fewerBits);
  return { rgb, alpha: r.qpOffset === 0 ? 0 : Math.round(255 * (0.12 + 0.4 * strength)) };
}

/** Offsets as the page writes them: "−4", "+2", "0". */
export const signedOffset = (v: number) => (v > 0 ? `+${v}` : v < 0 ? `−${-v}` : '0');

export interface LegendEntry {
  label: string;
  /** The colour the heatmap shows for it over mid-grey, as CSS. */
  colour: string;
}

/**
 * The heatmap's legend for the regions it was drawn with: one entry per kind and offset that the
 * frame actually has (no "salient region" where there is none), in the colour it is painted with
 * (a +2 face margin is a faint blue, nearly grey), offsets signed.
 */
export function heatmapLegend(regions: PlanRegion[]): LegendEntry[] {
  const maxAbs = Math.max(...regions.map((r) => Math.abs(r.qpOffset)), 1);
  const faceCore = Math.min(...regions.filter((r) => r.kind === 'face').map((r) => r.qpOffset));
  const seen = new Map<string, LegendEntry>();
  for (const r of regions) {
    const name = r.kind === 'face' ? (r.qpOffset === faceCore ? 'face' : 'face margin') : r.kind === 'saliency' ? 'salient region' : 'background';
    const effect = r.qpOffset < 0 ? 'more bits' : r.qpOffset > 0 ? 'fewer bits' : 'unchanged';
    const label = `${name} ${signedOffset(r.qpOffset)} QP (${effect})`;
    if (seen.has(label)) continue;
    const { rgb, alpha } = regionFill(r, maxAbs);
    const over = (c: number) => Math.round(128 + (c - 128) * (alpha / 255));
    seen.set(label, { label, colour: `rgb(${over(rgb[0])},${over(rgb[1])},${over(rgb[2])})` });
  }
  return [...seen.values()];
}

/**
 * An RGBA overlay where every pixel shows the region the encoder applies there: the first listed
 * region that covers it (libx265 lets the first one win), not a blend of all of them.
 */
function regionOverlay(regions: PlanRegion[], width: number, height: number): Buffer {
  const maxAbs = Math.max(...regions.map((r) => Math.abs(r.qpOffset)), 1);
  const out = Buffer.alloc(width * height * 4);
  const claimed = new Uint8Array(width * height);
  for (const r of regions) {
    const { rgb, alpha } = regionFill(r, maxAbs);
    const x0 = Math.max(0, Math.round(r.x)), x1 = Math.min(width, Math.round(r.x + r.w));
    const y0 = Math.max(0, Math.round(r.y)), y1 = Math.min(height, Math.round(r.y + r.h));
    for (let y = y0; y < y1; y++) {
      for (let i = y * width + x0; i < y * width + x1; i++) {
        if (claimed[i]) continue;
        claimed[i] = 1;
        out[4 * i] = rgb[0];
        out[4 * i + 1] = rgb[1];
        out[4 * i + 2] = rgb[2];
        out[4 * i + 3] = alpha;
      }
    }
  }
  return out;
}

/**
 * The frame with the plan's regions painted by QP offset (each pixel in the colour of the region
 * that wins there), salient regions and detected faces outlined, rotated for display, at most
 * `maxWidth` wide. JPEG: it is a photo.
 */
export async function heatmapImage(frame: RgbFrame, regions: PlanRegion[], faces: Box[], rotation: number, maxWidth = 960): Promise<Buffer> {
  const { width, height } = frame;
  const stroke = Math.max(2, Math.round(width / 320));
  const outline = (b: Box, colour: string) => `<rect x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>`;
  const outlines = [
    ...regions.filter((r) => r.kind === 'saliency').map((r) => outline(r, HEATMAP_COLOURS.salient)),
    ...faces.map((f) => outline(f, HEATMAP_COLOURS.face)),
  ];
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${outlines.join('')}</svg>`;
  const composed = await sharp(frame.data, rawInput(frame))
    .composite([
      { input: regionOverlay(regions, width, height), raw: { width, height, channels: 4 } },
      { input: Buffer.from(svg), left: 0, top: 0 },
    ])
    .png()
    .toBuffer();
  return sharp(composed)
    .rotate(rotation)
    .resize({ width: maxWidth, withoutEnlargement: true })
    .jpeg({ quality: 85 })
    .toBuffer();
}

/** A crop of the frame enlarged `scale` times with nearest-neighbour, rotated for display; PNG. */
export async function cropImage(frame: RgbFrame, box: Box, rotation: number, scale = 2): Promise<Buffer> {
  return sharp(frame.data, rawInput(frame))
    .extract({ left: box.x, top: box.y, width: box.w, height: box.h })
    .resize({ width: box.w * scale, height: box.h * scale, kernel: 'nearest' })
    .rotate(rotation)
    .png()
    .toBuffer();
}

/** A square crop around a box (a face, a salient object), at most `maxSide` px so that 2× still fits a page, inside the frame. */
export function cropAround(box: Box, width: number, height: number, maxSide = 192): Box {
  const side = Math.min(maxSide, Math.round(Math.max(box.w, box.h) * 1.5), width, height);
  return clampBox(box.x + box.w / 2 - side / 2, box.y + box.h / 2 - side / 2, side, side, width, height);
}

function clampBox(x: number, y: number, w: number, h: number, width: number, height: number): Box {
  const bx = Math.max(0, Math.min(width - w, Math.round(x)));
  const by = Math.max(0, Math.min(height - h, Math.round(y)));
  return { x: bx, y: by, w, h };
}

const overlaps = (a: Box, b: Box) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/**
 * The most textured `side`×`side` patch of the source that touches none of `avoid` (faces and their
 * margins): detail is where background compression shows, so that is the honest place to look.
 */
export function texturedPatch(frame: RgbFrame, side: number, avoid: Box[]): Box | undefined {
  const { data, width, height } = frame;
  if (side > width || side > height) return undefined;
  const luma = (i: number) => 0.299 * data[3 * i]! + 0.587 * data[3 * i + 1]! + 0.114 * data[3 * i + 2]!;
  // Gradient energy per 16×16 cell, then the best window of cells.
  const cell = 16;
  const cols = Math.floor(width / cell), rows = Math.floor(height / cell);
  const energy = new Float64Array(cols * rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      let e = 0;
      for (let y = r * cell; y < (r + 1) * cell - 1; y += 2) {
        for (let x = c * cell; x < (c + 1) * cell - 1; x += 2) {
          const i = y * width + x;
          const v = luma(i);
          e += Math.abs(v - luma(i + 1)) + Math.abs(v - luma(i + width));
        }
      }
      energy[r * cols + c] = e;
    }
  }
  const n = Math.max(1, Math.round(side / cell));
  let best: Box | undefined;
  let bestEnergy = -1;
  for (let r = 0; r + n <= rows; r++) {
    for (let c = 0; c + n <= cols; c++) {
      const box = { x: c * cell, y: r * cell, w: n * cell, h: n * cell };
      if (avoid.some((a) => overlaps(a, box))) continue;
      let e = 0;
      for (let rr = r; rr < r + n; rr++) for (let cc = c; cc < c + n; cc++) e += energy[rr * cols + cc]!;
      if (e > bestEnergy) {
        bestEnergy = e;
        best = box;
      }
    }
  }
  return best;
}
