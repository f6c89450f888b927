/**
 * One description per video codec roi-encoder makes (x265 HEVC, x264 H.264): everything that differs
 * between them lives here, so the encode, rate control, chunking and reports ask this module instead
 * of testing the codec's name.
 */
export const CODECS = ['x265', 'x264'] as const;
export type CodecName = (typeof CODECS)[number];

/** ffmpeg's encoder names. */
export type VideoEncoder = 'libx265' | 'libx264';

export interface CodecDescription {
  name: CodecName;
  /** ffmpeg encoder. */
  encoder: VideoEncoder;
  /** The stream's codec as ffprobe and reports name it. */
  format: 'hevc' | 'h264';
  /** For people: 'HEVC' or 'H.264'. */
  label: string;
  /**
   * The block grid the ROI offsets land on. libx265 and libx264 both take ffmpeg's ROI side data per
   * 16x16 block (x265's qg-size at medium is 32, so offsets average over 2x2 of them there; x264's
   * macroblocks are 16x16).
   */
  blockSize: number;
  /** ffmpeg's option for the encoder's own key=value list. */
  paramsOption: '-x265-params' | '-x264-params';
  /** The library option and the CLI flag that take expert parameters. */
  paramsName: 'x265Params' | 'x264Params';
  paramsFlag: '--x265-params' | '--x264-params';
  /** MP4/MOV sample-entry tag (Apple players want hvc1 for HEVC); undefined: ffmpeg's default. */
  mp4Tag?: string;
  /**
   * Settings every encode of this codec gets, ROI or uniform, so comparisons differ in the ROI alone.
   * Both add ROI to adaptive quantisation: with aq-mode 0 ffmpeg drops the offsets ("skipping ROI").
   * x265's ultrafast and superfast presets (and tune grain) set aq-mode 0; x264's ultrafast does
   * (measured: the SEI of every preset says aq=1:1.00 except ultrafast's aq=0), so it is set here
   * at the value the other presets use.
   */
  baseParams: Record<string, string | number>;
  /** Keys of a chunk's closed GOP and its thread count. */
  chunkParams(threads: number | undefined): Record<string, string | number>;
  /**
   * Pixel format every output of this codec gets; undefined keeps the source's (x265: 10-bit stays
   * 10-bit). x264 is for the web: 8-bit 4:2:0 (H.264 High) is what browsers and devices decode, and
   * libx264 would otherwise make High 10 or High 4:4:4 from such sources.
   */
  pixelFormat?: 'yuv420p';
  /** Smallest picture the encoder takes in either direction. */
  minSize: number;
  /**
   * Default QP offsets of a plan made for this codec (faces, background). x265's come from the bench
   * curve (docs/defaults.md), x264's from its own sweep (docs/web-and-hdr.md).
   */
  defaultOffsets: { faceQpOffset: number; backgroundQpOffset: number };
}

export const X265: CodecDescription = {
  name: 'x265',
  encoder: 'libx265',
  format: 'hevc',
  label: 'HEVC',
  blockSize: 16,
  paramsOption: '-x265-params',
  paramsName: 'x265Params',
  paramsFlag: '--x265-params',
  mp4Tag: 'hvc1',
  baseParams: { 'log-level': 'warning', 'aq-mode': 2 },
  chunkParams: (threads) => ({ 'open-gop': 0, ...(threads ? { pools: threads } : {}), ...(threads === 1 ? { 'frame-threads': 1 } : {}) }),
  minSize: 16,
  defaultOffsets: { faceQpOffset: -2, backgroundQpOffset: 4 },
};

export const X264: CodecDescription = {
  name: 'x264',
  encoder: 'libx264',
  format: 'h264',
  label: 'H.264',
  blockSize: 16,
  paramsOption: '-x264-params',
  paramsName: 'x264Params',
  paramsFlag: '--x264-params',
  baseParams: { 'aq-mode': 1 },
  pixelFormat: 'yuv420p',
  // x264 closes GOPs by default; open-gop=0 says so for the chunk's first frame all the same.
  chunkParams: (threads) => ({ 'open-gop': 0, ...(threads ? { threads } : {}) }),
  minSize: 16,
  // Measured for x264, and x265's pair stays (bench --only x264-offsets; the 10 s talking head and
  // the fast pan, x264 medium, CRF 22/26/30/34, BD-rates against uniform x264): −2/+4 gives face
  // −41.7% / full +1.5% and −30.9% / +3.5%. Read against its strength curve, −3/+4, −4/+4, −2/+6
  // and −1/+3 (traced to strength 1.5) give +1.2/−1.9, +1.7/−0.5, −1.4/−1.5 and −1.9/−0.4 points of
  // face saving at the same full-frame cost: none is better on both clips, they move along it.
  defaultOffsets: { faceQpOffset: -2, backgroundQpOffset: 4 },
};

const BY_NAME: Record<CodecName, CodecDescription> = { x265: X265, x264: X264 };

export function codecFor(name: CodecName): CodecDescription {
  return BY_NAME[name];
}

export function codecForEncoder(encoder: VideoEncoder): CodecDescription {
  return encoder === 'libx264' ? X264 : X265;
}

/**
 * The encoder's key=value list for one encode: the codec's base settings, the plan's zones, then
 * what the caller adds (HDR metadata, a chunk's GOP and threads, rate control), then the expert's
 * own parameters, already checked (encoder-params.ts), last.
 */
export function encoderParams(codec: CodecDescription, parts: { zones?: string; extra?: Record<string, string | number>; expert?: Record<string, string> }): Record<string, string | number> {
  return {
    ...codec.baseParams,
    ...(parts.zones ? { zones: parts.zones } : {}),
    ...parts.extra,
    ...parts.expert,
  };
}

/** Bits per sample the encoder receives from a source of `sourceBitDepth`: x264's 8, or the source's own (x265). */
export function encoderBitDepth(codec: CodecDescription, sourceBitDepth: number): number {
  return codec.pixelFormat ? 8 : sourceBitDepth;
}
