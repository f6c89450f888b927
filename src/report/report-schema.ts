import { z } from 'zod';

/**
 * report.json: what `compare` measured, for machines and for diffing between versions. Quality
 * values that are infinite (identical frames) or undefined (no face in the video) are null.
 * Bitrates are kbit/s of the video stream's packets (container overhead excluded) over the video's
 * duration; BD-rates are percent, ROI against uniform: negative means ROI needs that much less
 * bitrate for the same quality.
 */
// 2: salient-region metrics, the 5th-percentile face PSNR, the bitrate-matching encode, saliencyQpOffset.
// 3: bitrates from the video stream's packets (videoBytes) rather than file sizes; Y-PSNR (per-frame
//    mean of luma PSNR) beside the pooled YUV PSNR, with BD-rates; tools (ffmpeg, x265, x264
//    versions); each encode's encoder, encoderOptions and command.
// 4: rate points at bitrates (two-pass; settings.bitratesKbps, a point's targetBitrateKbps, crf null),
//    the codec of the ROI and uniform encodes (settings.codec), a baseline in the other codec
//    ('x264' or 'x265'; bdRateVsBaseline replaces bdRateVsX264), the same-size pairs (sameSize) and
//    the matched pair's playable video (matched.video), each encode's expert parameters and picture format.
export const REPORT_VERSION = 4;

/** uniform and roi are in settings.codec; x264 and x265 are the uniform baseline in that encoder. */
export const COMPARE_MODES = ['uniform', 'roi', 'x264', 'x265'] as const;
export type CompareMode = (typeof COMPARE_MODES)[number];

const quality = z.number().nullable();

/** An encode's picture format as probed on the written file (src/media/hdr.ts PictureFormat). */
const xy = z.tuple([z.number(), z.number()]);
export const pictureSchema = z.object({
  pixelFormat: z.string(),
  bitDepth: z.number().int(),
  colorPrimaries: z.string().optional(),
  colorTransfer: z.string().optional(),
  colorSpace: z.string().optional(),
  colorRange: z.string().optional(),
  masteringDisplay: z.object({ red: xy, green: xy, blue: xy, whitePoint: xy, minLuminance: z.number(), maxLuminance: z.number() }).optional(),
  contentLightLevel: z.object({ maxContent: z.number(), maxAverage: z.number() }).optional(),
  dynamicRange: z.enum(['sdr', 'hdr10', 'hlg']),
});

export const reportPointSchema = z.object({
  mode: z.enum(COMPARE_MODES),
  codec: z.enum(['hevc', 'h264']),
  /** x265/x264 CRF; fractional for the encode that matches a uniform bitrate; null for a two-pass point. */
  crf: z.number().min(0).max(51).nullable(),
  /** The average video bitrate a two-pass point asked for, kbit/s; null for a CRF point. */
  targetBitrateKbps: z.number().positive().nullable(),
  /** Path relative to the report directory. */
  file: z.string(),
  /** Size of the file, container included. */
  bytes: z.number().int().positive(),
  /** Sum of the video stream's packet sizes: what bitrateKbps and the BD-rates are computed from. */
  videoBytes: z.number().int().positive(),
  /** videoBytes × 8 / 1000 / input duration. */
  bitrateKbps: z.number().positive(),
  encodeSeconds: z.number().nonnegative(),
  /** PSNR of the squared error pooled over all frames and the three planes (ffmpeg's psnr "average"). */
  psnr: quality,
  /** Y-PSNR: luma PSNR of each frame, averaged over frames (codec papers' convention). */
  psnrY: quality,
  /** ffmpeg's ssim "All" (Y, U and V weighted by size). */
  ssim: quality,
  facePsnr: quality,
  facePsnrY: quality,
  /** Face PSNR of the 5th-percentile frame (95% of frames with a face are better): dips on motion. */
  facePsnrP5: quality,
  /** Luma SSIM inside the face boxes. */
  faceSsim: quality,
  backgroundPsnr: quality,
  backgroundPsnrY: quality,
  backgroundSsim: quality,
  /** Inside the salient boxes (with --roi saliency); null when there are none. */
  salientPsnr: quality,
  salientPsnrY: quality,
  salientSsim: quality,
  /** The encoder's name and version as written into the stream (x265's or x264's SEI), e.g. "x265 3.5+1-f0c1022b6". */
  encoder: z.string().nullable(),
  /** The encoder's complete parameter string from the same SEI: every setting it used, defaults included. */
  encoderOptions: z.string().nullable(),
  /** The ffmpeg command line that made the file (temporary paths as they were then). */
  command: z.string().nullable(),
  /** The expert parameters passed to this encode's encoder (--x265-params / --x264-params), as given; {} for none. */
  encoderParams: z.record(z.string(), z.string()),
  /** The written file's bit depth, colour description and HDR metadata, as probed. */
  picture: pictureSchema.nullable(),
  /**
   * Set on the extra ROI encode whose CRF was searched to match this uniform file's bitrate, for
   * the side-by-side; it is not one of the BD-rate curves' points.
   */
  matching: z.string().optional(),
  /**
   * Set on the encode made with compare's matchCrf: faces at least as good as uniform x265 at that
   * CRF (measured on this whole encode), smallest file; `crf` above is the CRF the search chose. Not
   * one of the BD-rate curves' points.
   */
  target: z.object({ matchCrf: z.number(), referenceFacePsnr: quality, met: z.boolean() }).optional(),
});

const bdSchema = z.object({ facePsnr: quality, facePsnrY: quality, psnr: quality, psnrY: quality, faceSsim: quality, salientPsnr: quality, salientPsnrY: quality });

export const reportSchema = z.object({
  version: z.literal(REPORT_VERSION),
  generator: z.object({ name: z.string(), version: z.string() }),
  createdAt: z.string(),
  /** Versions of the tools that made the encodes (null for an encoder no encode used). */
  tools: z.object({ ffmpeg: z.string(), x265: z.string().nullable(), x264: z.string().nullable() }),
  input: z.object({
    path: z.string(),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    rotation: z.number().int(),
    frameRate: z.number().positive(),
    frameCount: z.number().int().positive(),
    durationSeconds: z.number().positive(),
    bytes: z.number().int().nonnegative(),
  }),
  settings: z.object({
    /** The ROI and uniform encodes' encoder. */
    codec: z.enum(['x265', 'x264']),
    /** The rate points: CRFs, or average bitrates in kbit/s (two-pass); the other list is empty. */
    crfs: z.array(z.number()),
    bitratesKbps: z.array(z.number()),
    /** With --height/--width: the encodes' size (every measurement against the source scaled to it); null at the source's size. */
    output: z.object({ width: z.number().int().positive(), height: z.number().int().positive() }).nullable(),
    preset: z.string(),
    strength: z.number(),
    /** Uniform encodes in the other encoder at the same rate points, or null. */
    baseline: z.enum(['x264', 'x265']).nullable(),
    faceQpOffset: z.number().nullable(),
    backgroundQpOffset: z.number().nullable(),
    /** With saliency analysis; null without. */
    saliencyQpOffset: z.number().nullable(),
    /** The plan's cap on keyframes' offsets; null when it has none (optional: reports from before it). */
    keyframeMaxQpOffset: z.number().nullable().optional(),
  }),
  analysis: z.object({
    /** plan.json in the report directory: the plan every ROI encode used. */
    plan: z.string(),
    /** True when the plan was given (--plan) rather than made by this run; seconds is then 0. */
    given: z.boolean().optional(),
    seconds: z.number().nonnegative(),
    samples: z.number().int().nonnegative(),
    faceDetections: z.number().int().nonnegative(),
    segments: z.number().int().positive(),
  }),
  points: z.array(reportPointSchema).min(2),
  /** ROI against uniform in the same encoder. */
  bdRate: bdSchema,
  /** ROI against the baseline (uniform in the other encoder), or null without one. */
  bdRateVsBaseline: bdSchema.nullable(),
  /**
   * ROI against uniform at the same size, what the headline says: with bitrates, one pair per
   * bitrate; with CRFs, the matched pair. Differences are ROI minus uniform, in dB (PSNR) or SSIM
   * units; the rest of the frame is the background (outside faces, salient regions and margins).
   */
  sameSize: z.array(z.object({
    uniform: z.string(),
    roi: z.string(),
    /** ROI's video bytes over uniform's. */
    bitrateRatio: z.number().positive(),
    facePsnr: quality,
    faceSsim: quality,
    backgroundPsnr: quality,
    psnr: quality,
  })),
  /** The uniform and ROI encodes at matched bitrate: the crops and the over-time chart use them. */
  matched: z.object({
    uniform: z.string(),
    roi: z.string(),
    frame: z.number().int().nonnegative(),
    /**
     * Whether index.html embeds the pair as playable video: 'embedded' (H.264, which browsers play),
     * 'too large' (over the embedding limit: the files are linked), or 'not web-playable' (HEVC).
     */
    video: z.enum(['embedded', 'too large', 'not web-playable']),
  }),
  /** Face PSNR of every frame per encode file (null where there is no face, or where it is infinite: identical pixels). */
  perFrame: z.object({ time: z.array(z.number()), facePsnr: z.record(z.string(), z.array(quality)) }),
  files: z.object({ html: z.string(), json: z.string(), encodes: z.string() }),
});

export type Report = z.infer<typeof reportSchema>;
export type ReportPoint = z.infer<typeof reportPointSchema>;

/** JSON has no Infinity or NaN: both become null (the page shows ∞ or n/a). */
export function finiteOrNull(value: number, digits = 4): number | null {
  if (!Number.isFinite(value)) return null;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
