import { extname } from 'node:path';
import { RoiError } from '../errors.js';

/** Pure builder: encode settings → ffmpeg argv. */
export const X265_PRESETS = ['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow', 'placebo'] as const;
export type X265Preset = (typeof X265_PRESETS)[number];

export type Container = 'mp4' | 'mkv';

/** libx265 for everything we make; libx264 only for the uniform baseline of comparison reports. */
export type VideoCodec = 'libx265' | 'libx264';

export function containerFor(output: string): Container {
  const ext = extname(output).toLowerCase();
  if (ext === '.mp4' || ext === '.m4v' || ext === '.mov') return 'mp4';
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
  /** Subtitle streams present in the input (MP4 needs text subtitles converted). */
  hasSubtitles: boolean;
  /** Video alone: no audio or subtitles (comparisons, so bitrates are the video's). */
  videoOnly?: boolean;
}

export function x265ParamString(params: Record<string, string | number>): string {
  return Object.entries(params).map(([k, v]) => `${k}=${v}`).join(':');
}

export function buildEncodeArgs(a: EncodeArgs): string[] {
  const args = [
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'warning', '-y',
    // Keep frames as stored: ROI coordinates are coded pixels, and the display matrix is carried over.
    '-noautorotate',
    '-i', a.input,
  ];
  if (a.filterScript) {
    args.push('-filter_complex_script', a.filterScript, '-map', `[${a.videoLabel ?? 'v'}]`);
  } else {
    args.push('-map', '0:v:0');
  }
  // Audio and subtitles go through untouched; '?' keeps inputs without them working.
  if (!a.videoOnly) args.push('-map', '0:a?', '-map', '0:s?');
  const codec = a.codec ?? 'libx265';
  args.push('-fps_mode', 'passthrough', '-c:v', codec, '-preset', a.preset, '-crf', String(a.crf));
  if (Object.keys(a.x265Params).length) args.push(codec === 'libx265' ? '-x265-params' : '-x264-params', x265ParamString(a.x265Params));
  if (!a.videoOnly) args.push('-c:a', 'copy');
  if (a.hasSubtitles && !a.videoOnly) args.push('-c:s', a.container === 'mp4' ? 'mov_text' : 'copy');
  args.push('-map_metadata', '0', '-map_chapters', '0');
  // hvc1 (parameter sets in the sample entry) is the HEVC tag Apple players require.
  if (a.container === 'mp4') args.push(...(codec === 'libx265' ? ['-tag:v', 'hvc1'] : []), '-movflags', '+faststart');
  args.push('-progress', 'pipe:1', a.output);
  return args;
}
