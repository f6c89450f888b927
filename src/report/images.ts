import sharp from 'sharp';
import type { Box } from '../analysis/boxes.js';
import { RoiError } from '../errors.js';
import type { Binaries } from '../media/binaries.js';
import { run } from '../media/process.js';
import type { PlanRegion } from '../plan.js';

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

/** Colour of a region on the heatmap: warm where bits are added, blue where they are saved. */
function regionStyle(r: PlanRegion, maxAbs: number): string {
  const strength = Math.min(1, Math.abs(r.qpOffset) / Math.max(1, maxAbs));
  const colour = r.kind === 'saliency' ? '#ffb000' : r.qpOffset < 0 ? '#ff2020' : r.qpOffset > 0 ? '#2060ff' : '#888888';
  const opacity = r.qpOffset === 0 ? 0 : 0.12 + 0.4 * strength;
  return `fill="${colour}" fill-opacity="${opacity.toFixed(3)}"`;
}

/**
 * The frame with the plan's regions painted by QP offset (regions listed first are drawn on top, as
 * the encoder lets the first one win), detected faces outlined, rotated for display, at most
 * `maxWidth` wide. JPEG: it is a photo.
 */
export async function heatmapImage(frame: RgbFrame, regions: PlanRegion[], faces: Box[], rotation: number, maxWidth = 960): Promise<Buffer> {
  const maxAbs = Math.max(...regions.map((r) => Math.abs(r.qpOffset)), 1);
  const stroke = Math.max(2, Math.round(frame.width / 320));
  const rects = [...regions].reverse().map((r) => `<rect x="${r.x}" y="${r.y}" width="${r.w}" height="${r.h}" ${regionStyle(r, maxAbs)}/>`);
  const outlines = faces.map((f) => `<rect x="${f.x}" y="${f.y}" width="${f.w}" height="${f.h}" fill="none" stroke="#00ff00" stroke-width="${stroke}"/>`);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${frame.width}" height="${frame.height}">${rects.join('')}${outlines.join('')}</svg>`;
  const composed = await sharp(frame.data, rawInput(frame)).composite([{ input: Buffer.from(svg), left: 0, top: 0 }]).png().toBuffer();
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

/** A square crop around a face, at most `maxSide` px so that 2× still fits a page, inside the frame. */
export function faceCrop(face: Box, width: number, height: number, maxSide = 192): Box {
  const side = Math.min(maxSide, Math.round(Math.max(face.w, face.h) * 1.5), width, height);
  return clampBox(face.x + face.w / 2 - side / 2, face.y + face.h / 2 - side / 2, side, side, width, height);
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
