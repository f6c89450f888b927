import { stat } from 'node:fs/promises';
import { RoiError } from '../errors.js';
import { lastErrorLine, run } from './process.js';
import type { Binaries } from './binaries.js';
import { ProcessError } from '../errors.js';

/** What the pipeline needs to know about an input video, with exact per-frame timing. */
export interface VideoInfo {
  path: string;
  /** Coded (stored) size: the pixel space of plans and ROI regions. */
  width: number;
  height: number;
  /** Clockwise rotation a player applies for display (0, 90, 180, 270). */
  rotation: 0 | 90 | 180 | 270;
  /** Mean frame rate over the stream (frameCount / span); exact for constant frame rate. */
  frameRate: number;
  frameCount: number;
  durationSeconds: number;
  /** Presentation time of every frame in decode-output (presentation) order, seconds from the first frame. */
  frameTimes: Float64Array;
  /** True when frame intervals differ by more than a tick. */
  variableFrameRate: boolean;
  codec: string;
  pixelFormat: string;
  hasAudio: boolean;
  streams: { audio: number; subtitle: number; other: number };
  formatName: string;
}

interface FfprobeStream {
  index: number;
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  pix_fmt?: string;
  time_base?: string;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  nb_frames?: string;
  duration?: string;
  tags?: Record<string, string>;
  side_data_list?: { side_data_type?: string; rotation?: number }[];
  disposition?: { attached_pic?: number };
}

function parseRational(text: string | undefined): number {
  if (!text) return NaN;
  const [num, den] = text.split('/').map(Number);
  if (num === undefined || den === undefined || !den) return NaN;
  return num / den;
}

function normaliseRotation(value: number): 0 | 90 | 180 | 270 {
  // ffprobe reports the display matrix rotation counter-clockwise (e.g. -90 for a phone held upright).
  const cw = ((Math.round(-value / 90) * 90) % 360 + 360) % 360;
  return cw as 0 | 90 | 180 | 270;
}

export async function probeVideo(path: string, bins: Binaries, signal?: AbortSignal): Promise<VideoInfo> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new RoiError('INPUT_NOT_FOUND', `input not found: ${path}`);
  if (!info.isFile()) throw new RoiError('INPUT_NOT_FILE', `input is not a file: ${path}`);
  if (info.size === 0) throw new RoiError('INPUT_EMPTY', `input is empty: ${path}`);

  let header: { streams?: FfprobeStream[]; format?: { format_name?: string; duration?: string } };
  try {
    const { stdout } = await run(bins.ffprobe, ['-v', 'error', '-show_format', '-show_streams', '-of', 'json', path], { signal, what: 'probing input' });
    header = JSON.parse(stdout) as typeof header;
  } catch (error) {
    if (error instanceof ProcessError) {
      throw new RoiError('INPUT_UNREADABLE', `not a readable video file: ${path} (${lastErrorLine(error.stderrTail)})`);
    }
    throw error;
  }
  const streams = header.streams ?? [];
  const video = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  if (!video || !video.width || !video.height) {
    throw new RoiError('NO_VIDEO_STREAM', `input has no video stream: ${path}`);
  }

  const times = await readFrameTimes(path, video, bins, signal);
  if (times.length === 0) throw new RoiError('INPUT_UNREADABLE', `input has no decodable video frames: ${path}`);
  const declared = Number(video.nb_frames);
  if (Number.isFinite(declared) && declared > 0 && times.length < declared) {
    throw new RoiError('INPUT_TRUNCATED', `input is truncated or corrupt: its header declares ${declared} video frames but only ${times.length} are present: ${path}`);
  }

  const rotationData = video.side_data_list?.find((d) => typeof d.rotation === 'number')?.rotation;
  const rotationTag = Number(video.tags?.rotate);
  const rotation = normaliseRotation(rotationData ?? (Number.isFinite(rotationTag) ? -rotationTag : 0));

  const n = times.length;
  const span = n > 1 ? times[n - 1]! - times[0]! : 0;
  const meanInterval = n > 1 ? span / (n - 1) : 0;
  const declaredRate = parseRational(video.avg_frame_rate) || parseRational(video.r_frame_rate);
  const frameRate = meanInterval > 0 ? 1 / meanInterval : Number.isFinite(declaredRate) && declaredRate > 0 ? declaredRate : 25;
  let variable = false;
  const tolerance = Math.max(1e-4, meanInterval * 0.02);
  for (let i = 1; i < n && !variable; i++) {
    if (Math.abs(times[i]! - times[i - 1]! - meanInterval) > tolerance) variable = true;
  }
  const base = times[0]!;
  const frameTimes = new Float64Array(n);
  for (let i = 0; i < n; i++) frameTimes[i] = times[i]! - base;

  return {
    path,
    width: video.width,
    height: video.height,
    rotation,
    frameRate,
    frameCount: n,
    // The last frame lasts one mean interval, as players show it.
    durationSeconds: span + (meanInterval || 1 / frameRate),
    frameTimes,
    variableFrameRate: variable,
    codec: video.codec_name ?? 'unknown',
    pixelFormat: video.pix_fmt ?? 'unknown',
    hasAudio: streams.some((s) => s.codec_type === 'audio'),
    streams: {
      audio: streams.filter((s) => s.codec_type === 'audio').length,
      subtitle: streams.filter((s) => s.codec_type === 'subtitle').length,
      other: streams.filter((s) => s.codec_type !== 'audio' && s.codec_type !== 'subtitle' && s !== video).length,
    },
    formatName: header.format?.format_name ?? 'unknown',
  };
}

/**
 * Presentation times (seconds) of the frames the decoder will output, in order. Read from packets,
 * which needs no decoding: pts sorted ascending, without packets the demuxer marks as discard
 * (edit-list pre-roll), falling back to dts and then to the nominal rate when a stream has no pts.
 */
async function readFrameTimes(path: string, video: FfprobeStream, bins: Binaries, signal?: AbortSignal): Promise<number[]> {
  const tb = parseRational(video.time_base) || 1 / 90000;
  const nominal = parseRational(video.avg_frame_rate) || parseRational(video.r_frame_rate) || 25;
  const times: number[] = [];
  let missing = 0;
  await run(
    bins.ffprobe,
    ['-v', 'error', '-select_streams', `${video.index}`, '-show_entries', 'packet=pts,dts,flags', '-of', 'compact=p=0', path],
    {
      signal,
      what: 'reading frame timestamps',
      onStdoutLine: (line) => {
        if (!line) return;
        const fields = Object.fromEntries(line.split('|').map((kv) => kv.split('=') as [string, string]));
        if (fields.flags?.includes('D')) return;
        const ts = fields.pts !== undefined && fields.pts !== 'N/A' ? Number(fields.pts) : fields.dts !== 'N/A' ? Number(fields.dts) : NaN;
        if (Number.isFinite(ts)) times.push(ts * tb);
        else missing++;
      },
    },
  ).catch((error: unknown) => {
    if (error instanceof ProcessError) {
      throw new RoiError('INPUT_UNREADABLE', `cannot read video packets of ${path} (${lastErrorLine(error.stderrTail)})`);
    }
    throw error;
  });
  if (missing > 0) {
    // Elementary streams (raw .h264/.hevc) carry no timestamps: frames are evenly spaced.
    return Array.from({ length: times.length + missing }, (_, i) => i / nominal);
  }
  return times.sort((a, b) => a - b);
}
