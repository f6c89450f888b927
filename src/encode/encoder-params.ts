import { RoiError } from '../media/errors.js';
import { invalid } from '../media/validate.js';
import type { CodecDescription } from './codec.js';

/**
 * Expert parameters (`--x265-params` / `--x264-params`, library x265Params / x264Params): passed to
 * the encoder as given, except the keys roi-encoder sets itself and the ones that would silently
 * throw the ROI away. Each refusal says why.
 */

/** Keys rate control and the plan own: an expert value would fight them or be overwritten. */
const OWNED: Record<string, string> = {
  crf: 'roi-encoder sets the CRF: use crf (or a face target, which chooses it)',
  qp: 'a constant QP replaces rate control, and roi-encoder sets the rate: use crf',
  bitrate: 'roi-encoder sets the rate',
  pass: 'roi-encoder runs the passes itself',
  stats: 'roi-encoder keeps the pass statistics in its scratch folder',
  zones: 'roi-encoder writes zones from the plan',
};

/** VBV keys: owned when the rate options set them (maxrate/bufsize), free otherwise. */
export const VBV_KEYS = ['vbv-maxrate', 'vbv-bufsize'] as const;

/** x264 and x265 read `no-foo` as foo=0 and `foo_bar` as foo-bar. */
function canonical(key: string): { key: string; negated: boolean } {
  const k = key.trim().toLowerCase().replace(/_/g, '-');
  return k.startsWith('no-') ? { key: k.slice(3), negated: true } : { key: k, negated: false };
}

const FALSE_VALUES = new Set(['0', 'false', 'no', 'off']);

/** Why a key=value would drop the ROI offsets without an error, or undefined. */
function killsRoi(codec: CodecDescription, key: string, value: string, negated: boolean): string | undefined {
  const off = negated || FALSE_VALUES.has(value.toLowerCase());
  if (key === 'aq-mode' && (value.trim() === '0' || negated)) {
    return `aq-mode=0 turns adaptive quantisation off, and ffmpeg's ${codec.encoder} then drops every ROI offset ("skipping ROI")`;
  }
  if (codec.name === 'x265' && key === 'hevc-aq' && !off) return 'hevc-aq replaces the adaptive quantisation the ROI offsets are added to, and x265 then ignores them silently';
  return undefined;
}

export interface ParamsContext {
  /** True when the rate options set VBV (maxrate/bufsize): the VBV keys are then the tool's. */
  vbvOwned?: boolean;
}

/** "a=1:b=2" (ffmpeg's -x265-params form) or an object → checked key=value pairs, in order. */
export function parseEncoderParams(codec: CodecDescription, value: unknown, context: ParamsContext = {}): Record<string, string> {
  const name = codec.paramsName;
  if (value === undefined || value === '') return {};
  let pairs: [string, string][];
  if (typeof value === 'string') {
    pairs = value.split(':').filter((s) => s.trim() !== '').map((item) => {
      const eq = item.indexOf('=');
      if (eq <= 0) throw invalid(`key=value pairs separated by ':' (e.g. 'psy-rd=2:deblock=-1,-1')`, name, value);
      return [item.slice(0, eq).trim(), item.slice(eq + 1).trim()];
    });
  } else if (value && typeof value === 'object' && !Array.isArray(value)) {
    pairs = Object.entries(value as Record<string, unknown>).map(([k, v]) => {
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw invalid('an object of string, number or boolean values', name, value);
      return [k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v)];
    });
  } else {
    throw invalid(`a string of key=value pairs or an object`, name, value);
  }
  const out: Record<string, string> = {};
  for (const [raw, v] of pairs) {
    if (!/^[A-Za-z0-9_-]+$/.test(raw)) throw invalid('key=value pairs with keys of letters, digits and dashes', name, value);
    if (/[:]/.test(v)) throw invalid(`values without ':' (it separates the pairs)`, name, value);
    const { key, negated } = canonical(raw);
    const owned = OWNED[key] ?? (context.vbvOwned && (VBV_KEYS as readonly string[]).includes(key) ? 'the rate options (maxrate, bufsize) set VBV' : undefined);
    if (owned) throw new RoiError('INVALID_OPTION', `${name} cannot set ${key}: ${owned}`, { option: name });
    const why = killsRoi(codec, key, v, negated);
    if (why) throw new RoiError('INVALID_OPTION', `${name} cannot set ${raw}${negated ? '' : `=${v}`}: ${why}`, { option: name });
    out[raw] = v;
  }
  return out;
}

/** The expert parameters of an encode request for its codec; the other codec's are refused. */
export function resolveEncoderParams(codec: CodecDescription, options: { x265Params?: unknown; x264Params?: unknown }, context: ParamsContext = {}): Record<string, string> {
  const other = codec.name === 'x265' ? 'x264Params' : 'x265Params';
  const given = options[other];
  if (given !== undefined && given !== '' && !(typeof given === 'object' && given !== null && Object.keys(given).length === 0)) {
    throw new RoiError('INVALID_OPTION', `${other} is for codec ${other === 'x264Params' ? 'x264' : 'x265'}, but this encode is ${codec.name}: use ${codec.paramsName}`, { option: other });
  }
  return parseEncoderParams(codec, options[codec.paramsName], context);
}
