import { RoiError } from '../media/errors.js';
import type { MasteringDisplay, PictureFormat } from '../media/hdr.js';
import type { CodecDescription } from './codec.js';

/**
 * HDR through the encode. ffmpeg 5.1 hands libx265 the source's colour description (primaries,
 * transfer, matrix, range: measured, kept, HLG too) and its bit depth (10-bit in, Main 10 out), but
 * not the mastering display or the content light level, so they are given to x265 as parameters.
 */

/** x265's master-display string: chromaticities in 0.00002 units, luminance in 0.0001 cd/m², G, B, R order. */
export function masterDisplayParam(md: MasteringDisplay): string {
  const xy = ([x, y]: [number, number]) => `(${Math.round(x * 50000)},${Math.round(y * 50000)})`;
  return `G${xy(md.green)}B${xy(md.blue)}R${xy(md.red)}WP${xy(md.whitePoint)}L(${Math.round(md.maxLuminance * 10000)},${Math.round(md.minLuminance * 10000)})`;
}

/**
 * The encoder parameters that carry the source's HDR10 metadata; {} for a source without it.
 * hdr10=1 makes x265 signal HDR10. x265 writes both SEI at every keyframe by itself (measured: 2
 * keyframes, 2 of each in the frames plus the copy in the MP4 headers), so repeat-headers is not needed.
 */
export function hdrParams(codec: CodecDescription, source: PictureFormat): Record<string, string | number> {
  if (codec.name !== 'x265') return {};
  const { masteringDisplay: md, contentLightLevel: cll } = source;
  if (!md && !cll) return {};
  return {
    ...(md ? { 'master-display': masterDisplayParam(md) } : {}),
    ...(cll ? { 'max-cll': `${cll.maxContent},${cll.maxAverage}` } : {}),
    hdr10: 1,
  };
}

/**
 * x264 makes H.264 for the web (High, 8-bit 4:2:0, which every browser and device decodes). HDR in
 * H.264 needs High 10, which hardware H.264 decoders (phones, TVs, Apple's) do not take, and PQ or
 * HLG squeezed into 8 bits bands; so an HDR source is refused rather than turned into a file that
 * plays in few places or looks worse. x265 keeps it (Main 10 with its HDR10 metadata).
 */
export function refuseUnsupportedHdr(codec: CodecDescription, source: PictureFormat): void {
  if (codec.name === 'x265' || (source.dynamicRange === 'sdr' && !source.masteringDisplay && !source.contentLightLevel)) return;
  const what = source.dynamicRange === 'hlg' ? 'HLG' : source.dynamicRange === 'hdr10' ? 'HDR10 (PQ)' : 'HDR (it carries mastering-display metadata)';
  throw new RoiError('INVALID_OPTION', `the input is ${what}, ${source.bitDepth}-bit, and x264 makes 8-bit H.264 for the web: use codec x265, which keeps HDR (Main 10 with its metadata)`, { option: 'codec' });
}
