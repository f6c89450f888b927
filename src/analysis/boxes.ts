/** Axis-aligned boxes and the geometry the analysis stage shares. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface ScoredBox extends Box {
  score: number;
}

export function iou(a: Box, b: Box): number {
  const ix = Math.max(0, Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x));
  const iy = Math.max(0, Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y));
  const inter = ix * iy;
  const union = a.w * a.h + b.w * b.h - inter;
  return union > 0 ? inter / union : 0;
}

export function union(a: Box, b: Box): Box {
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return { x, y, w: Math.max(a.x + a.w, b.x + b.w) - x, h: Math.max(a.y + a.h, b.y + b.h) - y };
}

export function clampBox(b: Box, width: number, height: number): Box {
  const x0 = Math.max(0, Math.min(width, b.x));
  const y0 = Math.max(0, Math.min(height, b.y));
  const x1 = Math.max(0, Math.min(width, b.x + b.w));
  const y1 = Math.max(0, Math.min(height, b.y + b.h));
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

/** Snaps a box outwards to the encoder's block grid, clamped to the frame. */
export function alignToGrid(b: Box, block: number, width: number, height: number): Box {
  const x0 = Math.max(0, Math.floor(b.x / block) * block);
  const y0 = Math.max(0, Math.floor(b.y / block) * block);
  const x1 = Math.min(width, Math.ceil((b.x + b.w) / block) * block);
  const y1 = Math.min(height, Math.ceil((b.y + b.h) / block) * block);
  return { x: x0, y: y0, w: Math.max(0, x1 - x0), h: Math.max(0, y1 - y0) };
}

/**
 * Weighted non-maximum suppression (MediaPipe's "WEIGHTED" mode): overlapping boxes are merged
 * into their score-weighted mean, which is steadier frame to frame than keeping the single best.
 */
export function weightedNms<T extends ScoredBox>(boxes: T[], threshold: number): ScoredBox[] {
  const remaining = [...boxes].sort((a, b) => b.score - a.score);
  const out: ScoredBox[] = [];
  while (remaining.length > 0) {
    const top = remaining[0]!;
    const cluster: T[] = [];
    for (let i = remaining.length - 1; i >= 0; i--) {
      if (iou(top, remaining[i]!) > threshold) cluster.push(...remaining.splice(i, 1));
    }
    let sw = 0, x = 0, y = 0, w = 0, h = 0;
    for (const c of cluster) {
      sw += c.score;
      x += c.x * c.score;
      y += c.y * c.score;
      w += c.w * c.score;
      h += c.h * c.score;
    }
    out.push({ x: x / sw, y: y / sw, w: w / sw, h: h / sw, score: top.score });
  }
  return out;
}
