import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bestFaceAtCost, bestFullAtFace } from '../scripts/bench-x264.js';

// The reading behind X264.defaultOffsets (docs/web-and-hdr.md): x264's strength curves first go
// left (lower full-frame cost than uniform) and then right, so a cost can be crossed twice.
describe('reading a strength curve at equal cost (bench --only x264-offsets)', () => {
  // (full, face) BD-rates at increasing strengths; the origin (strength 0) is implied.
  const curve: [number, number][] = [[-2, -20], [-1, -30], [2, -40]];

  it('takes the better of two crossings, interpolating linearly between strengths', () => {
    // The origin→(−2, −20) segment gives −15 at −1.5, the next one −25: −25 is what that cost buys.
    assert.equal(bestFaceAtCost(curve, -1.5), -25);
    assert.equal(bestFaceAtCost(curve, 0.5), -35);
    assert.equal(bestFaceAtCost(curve, 2), -40);
  });

  it('extends the last segment past the curve, and has no answer left of it', () => {
    assert.equal(bestFaceAtCost(curve, 5), -50);
    assert.ok(Number.isNaN(bestFaceAtCost(curve, -3)));
  });

  it('reads the full-frame cost at a face saving the same way', () => {
    assert.equal(bestFullAtFace(curve, -35), 0.5);
    assert.equal(bestFullAtFace(curve, -10), -1);
  });
});
