/**
 * What a first pass's statistics file says about how many bits its frames will want: the measure
 * a budget is shared out by when the frames are encoded in pieces (src/distributed: one first pass
 * per chunk, then each chunk's second pass at its share).
 *
 * x265 and x264 write one line per frame, `in:… type:P q:31.20 … tex:1200 mv:80 misc:40 …`: the
 * QP and the bits the first pass spent. A frame's complexity is its bits times its quantiser scale
 * (what it would cost at qscale 1); a chunk's is the sum over its frames.
 *
 * Why the plain sum: x265's second pass gives frames qscale ∝ complexity^(1 − qcomp), which
 * suggests sharing by Σ complexity^qcomp (qcomp 0.6). Measured against one machine's two-pass
 * encode of the same file (20 s, 10 s talking head then 10 s of noisy test pattern, 1MB with 96k
 * AAC, 5 s chunks on two workers, x265 medium), the plain sum shares as one encode does: easy
 * chunks 47.1/47.4 dB PSNR, hard ones 23.9/23.9 (one machine: 46.6/47.0 and 24.2/23.6), whole file
 * 26.89 dB (one machine 26.90); the 0.6 power gave 49.6/49.2 and 23.9/23.9, 26.88 dB; equal shares
 * by duration 54.3/52.1 and 23.8/23.8, 26.82 dB.
 */
export interface PassComplexity {
  frames: number;
  /** Σ over frames of bits × qscale: proportional to the bits the frames get at any rate. */
  complexity: number;
}

/** x265_qp2qScale / x264's qp2qscale: 0.85 × 2^((QP − 12) / 6). */
export function qpToQscale(qp: number): number {
  return 0.85 * 2 ** ((qp - 12) / 6);
}

/** Reads a first pass's statistics (x265 or x264); throws on a file with no frame lines. */
export function passComplexity(text: string): PassComplexity {
  let frames = 0;
  let complexity = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('in:')) continue;
    const q = /\bq:([\d.]+)/.exec(line);
    const bits = ['tex', 'mv', 'misc'].reduce((sum, key) => sum + Number(new RegExp(`\\b${key}:(\\d+)`).exec(line)?.[1] ?? NaN), 0);
    if (!q || !Number.isFinite(bits)) throw new Error(`unreadable first-pass statistics line: ${line.slice(0, 120)}`);
    complexity += bits * qpToQscale(Number(q[1]));
    frames++;
  }
  if (!frames) throw new Error('the first-pass statistics hold no frames');
  return { frames, complexity };
}

/**
 * Average bitrates for pieces of one encode, bit/s: `bitrate` over the whole duration, shared in
 * proportion to each piece's complexity (so the pieces together spend bitrate × duration). x265 and
 * x264 take whole kbit/s, at least 1.
 */
export function shareBitrate(bitrate: number, pieces: { durationSeconds: number; complexity: number }[]): number[] {
  const seconds = pieces.reduce((s, p) => s + p.durationSeconds, 0);
  const total = pieces.reduce((s, p) => s + p.complexity, 0);
  // No usable complexity (cannot happen with real statistics): the same rate for every piece.
  if (!(total > 0) || pieces.some((p) => !(p.complexity >= 0) || !(p.durationSeconds > 0))) return pieces.map(() => Math.max(1000, Math.round(bitrate / 1000) * 1000));
  return pieces.map((p) => Math.max(1000, Math.round(((bitrate * seconds * (p.complexity / total)) / p.durationSeconds) / 1000) * 1000));
}
