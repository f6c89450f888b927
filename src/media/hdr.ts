import type { Binaries } from './binaries.js';
import { run } from './process.js';

/**
 * A video's picture format as an HDR display needs it: bit depth, colour description, and the HDR10
 * metadata (mastering display, content light level) that HEVC and H.264 carry as SEI on the frames.
 * ffmpeg 5.1's libx265 and libx264 wrappers pass the colour description to the encoder but not the
 * metadata, so an encode must hand the encoder these values itself (src/encode/hdr.ts).
 */
export interface MasteringDisplay {
  /** CIE 1931 xy chromaticities of the display's primaries and white point. */
  red: [number, number];
  green: [number, number];
  blue: [number, number];
  whitePoint: [number, number];
  /** Luminance range, cd/m². */
  minLuminance: number;
  maxLuminance: number;
}

export interface ContentLightLevel {
  /** MaxCLL and MaxFALL, cd/m². */
  maxContent: number;
  maxAverage: number;
}

export interface PictureFormat {
  pixelFormat: string;
  /** Bits per sample (8, 10, 12). */
  bitDepth: number;
  /** ffprobe's names: e.g. bt2020, smpte2084 (PQ), arib-std-b67 (HLG), bt2020nc, tv; undefined when not tagged. */
  colorPrimaries?: string;
  colorTransfer?: string;
  colorSpace?: string;
  colorRange?: string;
  masteringDisplay?: MasteringDisplay;
  contentLightLevel?: ContentLightLevel;
  /** 'hdr10' (PQ), 'hlg' or 'sdr', from the transfer characteristics. */
  dynamicRange: 'sdr' | 'hdr10' | 'hlg';
}

/** "34000/50000" → 0.68. */
function rational(text: string | undefined): number {
  if (!text) return NaN;
  const [num, den] = text.split('/').map(Number);
  return den === undefined ? Number(num) : num! / den;
}

const tagged = (v: string | undefined) => (v && v !== 'unknown' && v !== 'unspecified' ? v : undefined);

/** Bits per sample from ffmpeg's pixel format name (yuv420p10le → 10; yuv420p, nv12 → 8). */
export function bitDepthOf(pixelFormat: string): number {
  const m = /p(\d{2})(?:le|be)?$/.exec(pixelFormat) ?? /(\d{2})(?:le|be)$/.exec(pixelFormat);
  return m ? Number(m[1]) : 8;
}

interface ProbedFrame {
  pix_fmt?: string;
  color_range?: string;
  color_space?: string;
  color_primaries?: string;
  color_transfer?: string;
  side_data_list?: Record<string, string | number | undefined>[];
}

/** Pure: ffprobe's first-frame JSON → the picture format. */
export function parsePictureFormat(frame: ProbedFrame): PictureFormat {
  const pixelFormat = frame.pix_fmt ?? 'unknown';
  const side = frame.side_data_list ?? [];
  const md = side.find((d) => d.side_data_type === 'Mastering display metadata');
  const cll = side.find((d) => d.side_data_type === 'Content light level metadata');
  const xy = (k: string): [number, number] => [rational(String(md![`${k}_x`])), rational(String(md![`${k}_y`]))];
  const transfer = tagged(frame.color_transfer);
  const masteringDisplay: MasteringDisplay | undefined = md && md.red_x !== undefined
    ? { red: xy('red'), green: xy('green'), blue: xy('blue'), whitePoint: xy('white_point'), minLuminance: rational(String(md.min_luminance)), maxLuminance: rational(String(md.max_luminance)) }
    : undefined;
  const contentLightLevel: ContentLightLevel | undefined = cll ? { maxContent: Number(cll.max_content), maxAverage: Number(cll.max_average) } : undefined;
  return {
    pixelFormat,
    bitDepth: bitDepthOf(pixelFormat),
    colorPrimaries: tagged(frame.color_primaries),
    colorTransfer: transfer,
    colorSpace: tagged(frame.color_space),
    colorRange: tagged(frame.color_range),
    ...(masteringDisplay ? { masteringDisplay } : {}),
    ...(contentLightLevel ? { contentLightLevel } : {}),
    dynamicRange: transfer === 'smpte2084' ? 'hdr10' : transfer === 'arib-std-b67' ? 'hlg' : 'sdr',
  };
}

/**
 * Decodes the first video frame only (ffprobe -read_intervals %+#1): the SEI metadata is frame side
 * data, which stream-level probing does not show.
 */
export async function probePictureFormat(path: string, bins: Binaries, signal?: AbortSignal): Promise<PictureFormat> {
  const { stdout } = await run(bins.ffprobe, ['-v', 'error', '-select_streams', 'v:0', '-read_intervals', '%+#1', '-show_frames', '-show_entries', 'frame=pix_fmt,color_range,color_space,color_primaries,color_transfer:side_data', '-of', 'json', path], {
    signal,
    what: 'reading the colour format',
  });
  // With -read_intervals ffprobe lists packets and frames together.
  const parsed = JSON.parse(stdout) as { frames?: ProbedFrame[]; packets_and_frames?: (ProbedFrame & { type?: string })[] };
  const frame = parsed.frames?.[0] ?? parsed.packets_and_frames?.find((f) => f.type === 'frame') ?? {};
  return parsePictureFormat(frame);
}

/** " 10-bit HDR10 (mastering display, MaxCLL 1000)" to put beside a codec's name; '' for 8-bit SDR. */
export function pictureWords(p: Pick<PictureFormat, 'bitDepth' | 'dynamicRange' | 'masteringDisplay' | 'contentLightLevel'> | undefined | null): string {
  if (!p || (p.bitDepth === 8 && p.dynamicRange === 'sdr')) return '';
  const meta = [...(p.masteringDisplay ? ['mastering display'] : []), ...(p.contentLightLevel ? [`MaxCLL ${p.contentLightLevel.maxContent}`] : [])];
  return ` ${p.bitDepth}-bit${p.dynamicRange === 'sdr' ? '' : ` ${p.dynamicRange.toUpperCase()}`}${meta.length ? ` (${meta.join(', ')})` : ''}`;
}
