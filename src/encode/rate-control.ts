import { RoiError } from '../media/errors.js';
import { conflict, expectNumber, invalid } from '../media/validate.js';

/**
 * Rate control as one resolved part of an encode request: a CRF (optionally capped by a VBV), an
 * average bitrate (two-pass), or a whole-file size (two-pass, corrected once). A face-quality target
 * (src/strategies/face-target.ts) searches a CRF and is the fourth kind; it is refused here beside a
 * bitrate or size. Pure: parsing, validation, and the ffmpeg/x265 options each mode needs.
 */

/** A decoder-buffer cap (x265 vbv-maxrate / vbv-bufsize), in bit/s and bits. */
export interface Vbv {
  maxrate: number;
  bufsize: number;
}

export type RateControl =
  | { mode: 'crf'; crf: number; vbv?: Vbv }
  | { mode: 'bitrate'; bitrate: number; vbv?: Vbv }
  | { mode: 'size'; targetBytes: number; vbv?: Vbv };

export interface RateControlOptions {
  crf?: number;
  /** Average video bitrate: bit/s as a number, or '1500k', '1.5M', '1500000' (k = 1000). Two-pass. */
  bitrate?: number | string;
  /** The whole output file's size: bytes as a number, or '8MB', '500MiB', '750kB'. Two-pass. */
  targetSize?: number | string;
  /** VBV peak rate, written like bitrate. Needs bufsize. */
  maxrate?: number | string;
  /** VBV buffer in bits, written like a rate ('500k' = 500 kbit, as ffmpeg's -bufsize). Needs maxrate. */
  bufsize?: number | string;
  /** Face-quality targets (they choose the CRF themselves). */
  matchCrf?: number;
  targetFacePsnr?: number;
}

const RATE_UNITS: Record<string, number> = { '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9 };
/** x265 takes its rates in whole kbit/s: 1k is the least it can be asked for. */
const MIN_RATE = 1000;
const MAX_RATE = 10e9;
const RATE_EXPECTED = 'bit rate 1k–10G such as 1500k, 1.5M or 1500000 (bit/s; k = 1000)';

/** '1500k', '1.5M', '1500000' or a number → bit/s (an integer). */
export function parseRate(name: string, value: unknown, expected = RATE_EXPECTED): number {
  let n: number | undefined;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kKMG]?)\s*$/.exec(value);
    if (m) n = Number(m[1]) * RATE_UNITS[m[2]!]!;
  }
  if (n === undefined || !Number.isFinite(n) || n < MIN_RATE || n > MAX_RATE) throw invalid(expected, name, value);
  return Math.round(n);
}

const SIZE_UNITS: Record<string, number> = { B: 1, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };
const SIZE_EXPECTED = 'file size with a unit such as 8MB, 500MiB or 750kB (B, kB, MB, GB are powers of 1000; KiB, MiB, GiB of 1024)';

/** '8MB', '500MiB', '750kB' or a number of bytes → bytes (an integer). A unit is required in text: '8' is refused. */
export function parseSize(name: string, value: unknown): number {
  let n: number | undefined;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(B|kB|KB|MB|GB|KiB|MiB|GiB)\s*$/.exec(value);
    if (m) n = Number(m[1]) * SIZE_UNITS[m[2]!]!;
  }
  if (n === undefined || !Number.isFinite(n) || n < 1 || n > 2 ** 50) throw invalid(SIZE_EXPECTED, name, value);
  return Math.floor(n);
}

/** 1900000 → '1.9 MB', 12345 → '12.3 kB': sizes in messages, in the units the request used (powers of 1000). */
export function formatBytes(bytes: number): string {
  const [scale, unit] = bytes >= 1e9 ? [1e9, 'GB'] : bytes >= 1e6 ? [1e6, 'MB'] : bytes >= 1e3 ? [1e3, 'kB'] : [1, 'B'];
  // Three significant digits, without a trailing .0.
  const value = bytes / scale;
  return `${Number(value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2))} ${unit}`;
}

/** 1500000 → '1500 kbit/s'. */
export function formatRate(bitsPerSecond: number): string {
  return bitsPerSecond >= 10e6 ? `${(bitsPerSecond / 1e6).toFixed(1)} Mbit/s` : `${Math.round(bitsPerSecond / 1000)} kbit/s`;
}

/**
 * The request's rate control, validated sharp-style. Conflicts are refused naming the option to
 * drop: crf with bitrate or targetSize, bitrate with targetSize, a face-quality target with any of
 * them or with a VBV, maxrate without bufsize (and the reverse), a bitrate above maxrate.
 */
export function resolveRateControl(options: RateControlOptions, defaultCrf: number): RateControl {
  const { crf, bitrate, targetSize, maxrate, bufsize } = options;
  const faceTarget = options.matchCrf !== undefined ? 'matchCrf' : options.targetFacePsnr !== undefined ? 'targetFacePsnr' : undefined;
  if (bitrate !== undefined && targetSize !== undefined) throw conflict('bitrate', 'targetSize', 'the size sets the bitrate');
  const rated = bitrate !== undefined ? 'bitrate' : targetSize !== undefined ? 'targetSize' : undefined;
  if (rated && crf !== undefined) throw conflict('crf', rated, 'a two-pass encode to a rate has no CRF');
  if (rated && faceTarget) throw conflict(rated, faceTarget, 'a face-quality target chooses the rate itself');
  const capped = maxrate !== undefined ? 'maxrate' : bufsize !== undefined ? 'bufsize' : undefined;
  if (capped && faceTarget) throw conflict(capped, faceTarget, 'the face-quality search does not model a VBV');
  if (maxrate !== undefined && bufsize === undefined) throw new RoiError('INVALID_OPTION', 'Expected bufsize with maxrate (the VBV buffer in bits, often twice maxrate): add bufsize or drop maxrate', { option: 'bufsize' });
  if (bufsize !== undefined && maxrate === undefined) throw new RoiError('INVALID_OPTION', 'Expected maxrate with bufsize (the VBV peak rate): add maxrate or drop bufsize', { option: 'maxrate' });
  const vbv = maxrate !== undefined ? { maxrate: parseRate('maxrate', maxrate), bufsize: parseRate('bufsize', bufsize, 'buffer size 1k–10G in bits such as 3000k or 3M (k = 1000)') } : undefined;
  const cap = vbv ? { vbv } : {};
  if (bitrate !== undefined) {
    const rate = parseRate('bitrate', bitrate);
    if (vbv && rate > vbv.maxrate) throw invalid(`bitrate at most maxrate (${formatRate(vbv.maxrate)}): lower bitrate or raise maxrate`, 'bitrate', bitrate);
    return { mode: 'bitrate', bitrate: rate, ...cap };
  }
  if (targetSize !== undefined) return { mode: 'size', targetBytes: parseSize('targetSize', targetSize), ...cap };
  return { mode: 'crf', crf: expectNumber('crf', crf ?? defaultCrf, 0, 51), ...cap };
}

/** One x265 run's rate options: the ffmpeg options in place of -crf, and x265 params. */
export interface RatePass {
  args: string[];
  x265Params: Record<string, string | number>;
  /** Pass 1 of two: video only, to ffmpeg's null muxer; only its stats file is kept. */
  firstPass?: boolean;
}

/**
 * The ffmpeg/x265 options of one pass. `pass` is 1 or 2 for a two-pass encode (stats file `stats`,
 * in the scratch folder), undefined for a single CRF pass. The VBV goes to the encoder itself
 * (vbv-maxrate, vbv-bufsize, in kbit/s and kbit), so what x265 is told is what was asked.
 */
export function ratePass(rate: { crf?: number; bitrate?: number; vbv?: Vbv }, pass?: { number: 1 | 2; stats: string }): RatePass {
  const args = rate.bitrate !== undefined ? ['-b:v', String(rate.bitrate)] : ['-crf', String(rate.crf)];
  const x265Params: Record<string, string | number> = {};
  if (rate.vbv) Object.assign(x265Params, { 'vbv-maxrate': Math.round(rate.vbv.maxrate / 1000), 'vbv-bufsize': Math.round(rate.vbv.bufsize / 1000) });
  // The stats path goes inside x265's option string, whose separators are ':' (and ',' in ffmpeg's parser).
  if (pass && /[:,=]/.test(pass.stats)) throw new Error(`stats path must not contain ':', ',' or '=': ${pass.stats}`);
  if (pass) Object.assign(x265Params, { pass: pass.number, stats: pass.stats });
  return { args, x265Params, ...(pass?.number === 1 ? { firstPass: true } : {}) };
}
