import type { Box } from './boxes.js';

/**
 * Faces are detected upright, on frames as a player shows them, but plans and ROI regions live in
 * the coded frame the encoder sees. This maps a box from display pixels (after a clockwise rotation
 * of `rotation` degrees) back to coded pixels of a `width`×`height` frame.
 */
export function displayToCoded(b: Box, rotation: 0 | 90 | 180 | 270, width: number, height: number): Box {
  switch (rotation) {
    case 0:
      return { ...b };
    case 90:
      // display (xd, yd) = (height - yc, xc)
      return { x: b.y, y: height - b.x - b.w, w: b.h, h: b.w };
    case 180:
      return { x: width - b.x - b.w, y: height - b.y - b.h, w: b.w, h: b.h };
    case 270:
      // display (xd, yd) = (yc, width - xc)
      return { x: width - b.y - b.h, y: b.x, w: b.h, h: b.w };
  }
}
