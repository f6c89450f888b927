import { extname } from 'node:path';
import { RoiError } from '../media/errors.js';
import type { Track } from '../media/probe.js';
import { codecForEncoder, type VideoEncoder } from './codec.js';
import type { RatePass } from './rate-control.js';

/** Pure builder: encode settings → ffmpeg argv. */
export const X265_PRESETS = ['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow', 'placebo'] as const;
export type X265Preset = (typeof X265_PRESETS)[number];

/** encode()'s defaults (here, so the CLI can show them without loading the encoder). */
export const ENCODE_DEFAULTS = { crf: 28, preset: 'medium' as X265Preset, strength: 1 };

/** ISO MP4 (.mp4, .m4v), QuickTime (.mov) or Matroska (.mkv). */
export type Container = 'mp4' | 'mov' | 'mkv';

/** ffmpeg's encoder (src/encode/codec.ts describes each). */
export type VideoCodec = VideoEncoder;

export function containerFor(output: string): Container {
  const ext = extname(output).toLowerCase();
  if (ext === '.mp4' || ext === '.m4v') return 'mp4';
  if (ext === '.mov') return 'mov';
  if (ext === '.mkv') return 'mkv';
  throw new RoiError('UNSUPPORTED_OUTPUT', `unsupported output extension '${ext || '(none)'}' for ${output}: use .mp4, .mov or .mkv`);
}

export interface EncodeArgs {
  input: string;
  /** Where ffmpeg writes (a temporary name beside the final output). */
  output: string;
  container: Container;
  /** File holding the filtergraph; absent for a plain encode with no ROI. */
  filterScript?: string;
  /** Output pad of the filtergraph. */
  videoLabel?: string;
  /** Default libx265. */
  codec?: VideoCodec;
  crf: number;
  /** x265 and x264 share preset names. */
  preset: X265Preset;
  /** key=value pairs for -x265-params (or -x264-params). */
  x265Params: Record<string, string | number>;
  /** Subtitle streams present in the input (MP4 needs text subtitles converted). Ignored when `tracks` is given. */
  hasSubtitles: boolean;
  /** Audio and subtitle streams to carry and how (from planTracks); without it, every one is mapped and copied. */
  tracks?: TrackPlan[];
  /**
   * Time base of the video encoder, e.g. '1/12800': the input video stream's, so every frame keeps its
   * exact timestamp (ffmpeg's default, 1/frame rate, rounds them to the nominal frame grid).
   */
  encTimeBase?: string;
  /** Video alone: no audio or subtitles (comparisons, so bitrates are the video's). */
  videoOnly?: boolean;
  /** Options placed before `-i` (distributed chunks seek with `-ss` and keep timestamps with `-copyts`). */
  inputOptions?: string[];
  /**
   * Also write the decoded source frames, as they are (raw yuv420p, every frame in order), to fd 3:
   * the face-quality target keeps their face regions to measure the output without decoding the
   * source again. For yuv420p sources only (any other would be converted on the way).
   */
  sourceTap?: boolean;
  /** The graph's pad the tap reads instead of the input's video: a scaled encode taps its scaled frames. */
  tapLabel?: string;
  /** Rate control other than plain CRF (src/encode/rate-control.ts ratePass): replaces -crf; a first pass writes nothing. */
  rate?: RatePass;
}

export function x265ParamString(params: Record<string, string | number>): string {
  return Object.entries(params).map(([k, v]) => `${k}=${v}`).join(':');
}

export function buildEncodeArgs(a: EncodeArgs): string[] {
  const args = [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'warning', '-y',
    // Keep frames as stored: ROI coordinates are coded pixels, and the display matrix is carried over.
    '-noautorotate',
    ...(a.inputOptions ?? []),
    '-i', a.input,
  ];
  if (a.filterScript) {
    args.push('-filter_complex_script', a.filterScript, '-map', `[${a.videoLabel ?? 'v'}]`);
  } else {
    args.push('-map', '0:v:0');
  }
  const iso = a.container !== 'mkv';
  // A first pass sees the same frames as the second (same graph, same timestamps) and writes only x265's stats.
  const firstPass = a.rate?.firstPass === true;
  if (a.videoOnly || firstPass) {
    // Nothing else.
  } else if (a.tracks) {
    args.push(...trackMapArgs(a.tracks, a.container));
  } else {
    // '?' keeps inputs without audio or subtitles working.
    args.push('-map', '0:a?', '-map', '0:s?');
    if (!iso) args.push('-map', '0:t?');
  }
  const codec = a.codec ?? 'libx265';
  args.push('-fps_mode', 'passthrough');
  if (a.encTimeBase) args.push('-enc_time_base:v', a.encTimeBase.replace('/', ':'));
  // Every stream keeps its own timestamps, start offset included (MP4 gets an edit list, as ffmpeg
  // writes one). Video-only encodes (comparisons) keep ffmpeg's default, which subtracts the input
  // file's start time: report/metrics.ts pairs source and encode frames by timestamp on that basis.
  if (!a.videoOnly) args.push(...KEEP_TIMESTAMPS);
  args.push('-c:v', codec, '-preset', a.preset, ...(a.rate?.args ?? ['-crf', String(a.crf)]));
  const params = { ...a.x265Params, ...a.rate?.x265Params };
  if (Object.keys(params).length) args.push(codecForEncoder(codec).paramsOption, x265ParamString(params));
  const pixelFormat = codecForEncoder(codec).pixelFormat;
  if (pixelFormat) args.push('-pix_fmt', pixelFormat);
  if (a.videoOnly || firstPass) {
    // Nothing else.
  } else if (a.tracks) {
    args.push(...trackCodecArgs(a.tracks));
  } else {
    args.push('-c:a', 'copy');
    if (a.hasSubtitles) args.push('-c:s', iso ? 'mov_text' : 'copy');
  }
  if (firstPass) return [...args, '-progress', 'pipe:1', '-f', 'null', '-'];
  args.push(...muxerArgs(a.container, codec));
  args.push('-progress', 'pipe:1', a.output);
  if (a.sourceTap) args.push('-map', a.tapLabel ? `[${a.tapLabel}]` : '0:v:0', '-fps_mode', 'passthrough', '-pix_fmt', 'yuv420p', '-f', 'rawvideo', 'pipe:3');
  return args;
}

/**
 * The output options below are shared by a single-machine encode and the assembly of a distributed
 * one (src/distributed/assembly.ts), whose audio and subtitles come from input 1 (its video is the
 * chunks, input 0). `file` is the input that holds the source's streams.
 */

/** Every stream keeps its input timestamps, start offset included. */
export const KEEP_TIMESTAMPS = ['-copyts'] as const;

/**
 * -map of each planned audio and subtitle stream of input `file`: output stream 0 is the video, the
 * tracks follow in input order. Matroska attachments (fonts of styled subtitles) come along; other
 * containers have no place for them.
 */
export function trackMapArgs(tracks: readonly TrackPlan[], container: Container, file = 0): string[] {
  const args = tracks.flatMap((t) => ['-map', `${file}:${t.index}`]);
  if (container === 'mkv') args.push('-map', `${file}:t?`);
  return args;
}

/** Each track's codec (from planTracks): output streams 1, 2, … in the order trackMapArgs maps them. */
export function trackCodecArgs(tracks: readonly TrackPlan[]): string[] {
  return tracks.flatMap((t, i) => [`-c:${i + 1}`, t.action === 'copy' ? 'copy' : t.action, ...(t.bitrate ? [`-b:${i + 1}`, String(t.bitrate)] : [])]);
}

/** Metadata and chapters of input `file`, and the container's settings. */
export function muxerArgs(container: Container, codec: VideoCodec, file = 0): string[] {
  const args = ['-map_metadata', String(file), '-map_chapters', String(file)];
  // hvc1 (parameter sets in the sample entry) is the HEVC tag Apple players require.
  // +faststart: the moov box goes before mdat (ffmpeg rewrites the file once it is complete), so a
  // browser starts playing before the whole file has arrived.
  // The movie timescale (default 1000) times the edit lists that hold each stream's start: at 1 ms it
  // rounds an audio start down by up to a millisecond; 90 kHz keeps it to 11 µs.
  const tag = codecForEncoder(codec).mp4Tag;
  if (container !== 'mkv') args.push(...(tag ? ['-tag:v', tag] : []), '-movflags', '+faststart', '-movie_timescale', '90000');
  return args;
}

/** What happens to one audio or subtitle stream of the input. */
export interface TrackPlan extends Track {
  /** 'copy', or the encoder it is converted with (aac and libopus at `bitrate`: src/encode/audio.ts). */
  action: 'copy' | 'alac' | 'mov_text' | 'srt' | 'aac' | 'libopus';
  bitrate?: number;
}

const BITMAP_SUBTITLES = new Set(['dvd_subtitle', 'hdmv_pgs_subtitle', 'dvb_subtitle', 'xsub', 'dvb_teletext', 'arib_caption']);
/** Audio the MP4 (ISO) or MOV muxer of ffmpeg 5.1 refuses, or takes only as "experimental". */
const NOT_IN: Record<'mp4' | 'mov', Set<string>> = {
  mp4: new Set(['truehd', 'mlp', 'wmav1', 'wmav2', 'wmapro', 'cook', 'ra_144', 'ra_288', 'atrac3', 'tta', 'wavpack', 'ape', 'speex', 'nellymoser']),
  mov: new Set(['truehd', 'mlp', 'opus', 'wmav1', 'wmav2', 'wmapro', 'cook', 'ra_144', 'ra_288', 'atrac3', 'tta', 'wavpack', 'ape', 'speex']),
};

/**
 * Pure: how each audio and subtitle stream reaches the output. Everything is copied where the
 * container takes it. PCM (any layout) and FLAC, which ffmpeg's MP4 muxer does not take (FLAC also
 * not MOV), become ALAC: lossless, so no sample changes. Text subtitles become mov_text in MP4/MOV,
 * and mov_text becomes SRT in Matroska. Anything else the container cannot hold is refused before any
 * work, naming the stream's codec and the container that would take it.
 */
export function planTracks(tracks: readonly Track[], container: Container, output: string): TrackPlan[] {
  return tracks.map((t) => {
    const refuse = (what: string): never => {
      throw new RoiError('UNSUPPORTED_STREAM', `${what} stream ${t.index} of the input is ${t.codec}, which ${container.toUpperCase()} (${output}) cannot hold; write .mkv instead, which keeps it as it is`);
    };
    if (t.type === 'audio') {
      if (container === 'mkv') return { ...t, action: 'copy' };
      const lossless = t.codec.startsWith('pcm_') || t.codec === 'flac';
      if (lossless && !(container === 'mov' && t.codec.startsWith('pcm_'))) return { ...t, action: 'alac' };
      if (NOT_IN[container].has(t.codec)) refuse('audio');
      return { ...t, action: 'copy' };
    }
    if (container === 'mkv') return { ...t, action: t.codec === 'mov_text' ? 'srt' : 'copy' };
    if (BITMAP_SUBTITLES.has(t.codec)) refuse('subtitle');
    // Text subtitles (SubRip, ASS, WebVTT, …) convert; ASS styling is lost, as MP4 has no place for it.
    return { ...t, action: t.codec === 'mov_text' ? 'copy' : 'mov_text' };
  });
}
