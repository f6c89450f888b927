import { statSync, type Stats } from 'node:fs';
import { RoiError } from './errors.js';
import { lastErrorLine, run } from './process.js';
import type { Binaries } from './binaries.js';
import { ProcessError } from './errors.js';

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
  /** Audio and subtitle streams in input order, with their codecs (what the output can carry depends on them). */
  tracks: Track[];
  formatName: string;
  /** The video stream's time base, e.g. '1/12800': encodes keep every frame's timestamp in it exactly. */
  timeBase: string;
  /** Presentation time of the first frame as stored (seconds; non-zero for e.g. MPEG-TS or a trimmed capture). */
  startSeconds: number;
  /**
   * Every video packet is a keyframe (FFV1, ProRes, MJPEG, all-intra H.264…): each frame decodes on
   * its own. (Analysis reads `keyframes`, which also covers short GOPs.)
   */
  intraOnly: boolean;
  /**
   * Frame indices of the keyframes where decoding can start afresh, ascending, when packet n is
   * frame n (packets in presentation order, none discarded) and the codec's keyframes reset all
   * decoder state (KEYFRAME_RESTART_CODECS, or every packet a keyframe); otherwise undefined.
   * Analysis can then decode a frame from the keyframe before it, skipping the rest.
   */
  keyframes?: Uint32Array;
}

export interface Track {
  index: number;
  type: 'audio' | 'subtitle';
  codec: string;
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
  start_time?: string;
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
  // Synchronous up to the ffprobe spawns: model loading started just before or after this call
  // (onnxruntime creates sessions on the main thread, ~50 ms a model, from a setImmediate) then
  // overlaps the probe instead of delaying its start, as an awaited stat let it do.
  const info = statOrUndefined(path);
  if (!info) {
    const pattern = /%\d*d/.test(path) ? ' (roi-encoder reads one video file; image sequences are not supported)' : '';
    throw new RoiError('INPUT_NOT_FOUND', `input not found: ${path}${pattern}`);
  }
  if (!info.isFile()) throw new RoiError('INPUT_NOT_FILE', `input is not a file: ${path}`);
  if (info.size === 0) throw new RoiError('INPUT_EMPTY', `input is empty: ${path}`);

  // Keyframe sizes matter only for some codecs, known once the probe has run: they are read at the
  // same time (from the first video stream) and that reading is stopped if they are not needed, so
  // a probe costs one ffprobe run of wall time rather than two in a row.
  const stopSizes = new AbortController();
  const stop = () => stopSizes.abort();
  signal?.addEventListener('abort', stop, { once: true });
  const early = readKeyframeSizes(path, 'V:0', bins, stopSizes.signal).catch(() => undefined);
  try {
    const { streams, formatName, packets } = await readStreamsAndPackets(path, bins, signal);
    const video = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
    refuseNonVideoDemuxer(path, formatName, video?.codec_name);
    if (streams.length > 0 && streams.every((s) => s.codec_type === 'subtitle')) {
      throw new RoiError('NO_VIDEO_STREAM', `input is a subtitle file (ffmpeg reads it as ${formatName}), not a video: ${path}`);
    }
    if (!video || !video.width || !video.height) {
      throw new RoiError('NO_VIDEO_STREAM', `input has no video stream: ${path} (${describeStreams(formatName, streams)})`);
    }
    let sizes: KeyframeSize[] = [];
    if (MID_STREAM_CHANGES.has(video.codec_name ?? '')) {
      const read = await early;
      // V:0 is the first video stream that is not a cover picture, as `video` is; checked all the same.
      sizes = read && read.every((k) => k.stream === video.index) ? read : await readKeyframeSizes(path, String(video.index), bins, signal);
    }
    return describeVideo(path, video as FfprobeStream & { width: number; height: number }, streams, formatName, (packets.get(video.index) ?? new PacketScanner()).finish(video), sizes);
  } finally {
    stop();
    signal?.removeEventListener('abort', stop);
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** The checks on what the probe read, and the VideoInfo it describes. */
function describeVideo(path: string, video: FfprobeStream & { width: number; height: number }, streams: FfprobeStream[], formatName: string, scan: PacketScan, sizes: KeyframeSize[]): VideoInfo {
  const times = scan.times;
  if (times.length === 0) throw new RoiError('INPUT_UNREADABLE', `input has no decodable video frames: ${path}`);
  if (isStillImage(formatName, video.codec_name, times.length)) {
    throw new RoiError('INPUT_IS_IMAGE', `input is a still image (${video.codec_name} read by ffmpeg's ${formatName} demuxer), not a video: ${path}; make a video of it first, e.g. ffmpeg -loop 1 -i image -t 5 -pix_fmt yuv420p video.mp4`);
  }
  const tb = parseRational(video.time_base) || 1 / 90000;
  const declared = Number(video.nb_frames);
  if (Number.isFinite(declared) && declared > 0 && times.length < declared && !reachesDeclaredEnd(times, tb, declared, Number(video.duration))) {
    throw new RoiError('INPUT_TRUNCATED', `input is truncated or corrupt: its header declares ${declared} video frames but only ${times.length} are present: ${path}`);
  }
  if (scan.jump) {
    const { packet, from, to } = scan.jump;
    throw new RoiError('TIMESTAMPS_RESET', `input's video timestamps jump back from ${(from * tb).toFixed(3)} s to ${(to * tb).toFixed(3)} s at packet ${packet} (recordings joined end to end?): ${path}; roi-encoder keeps every timestamp as it is, so re-time or split the input first`);
  }
  for (let i = 1; i < times.length; i++) {
    if (times[i] === times[i - 1]) {
      throw new RoiError('TIMESTAMPS_DUPLICATE', `input has two video frames at the same time (${(times[i]! * tb).toFixed(3)} s): ${path}; roi-encoder keeps every timestamp as it is, so re-time the input first`);
    }
  }
  const changed = sizes.find((s) => s.width !== video.width || s.height !== video.height);
  if (changed) {
    throw new RoiError('SIZE_CHANGES', `input's video changes size mid-stream (${video.width}x${video.height}, then ${changed.width}x${changed.height} at ${changed.seconds.toFixed(3)} s): ${path}; one encode has one size, so split the input where the size changes or scale it to one size first`);
  }

  const rotationData = video.side_data_list?.find((d) => typeof d.rotation === 'number')?.rotation;
  const rotationTag = Number(video.tags?.rotate);
  const rotation = normaliseRotation(rotationData ?? (Number.isFinite(rotationTag) ? -rotationTag : 0));

  const n = times.length;
  const span = n > 1 ? (times[n - 1]! - times[0]!) * tb : 0;
  const meanInterval = n > 1 ? span / (n - 1) : 0;
  const declaredRate = parseRational(video.avg_frame_rate) || parseRational(video.r_frame_rate);
  const frameRate = meanInterval > 0 ? 1 / meanInterval : Number.isFinite(declaredRate) && declaredRate > 0 ? declaredRate : 25;
  let variable = false;
  const tolerance = Math.max(1e-4, meanInterval * 0.02);
  for (let i = 1; i < n && !variable; i++) {
    if (Math.abs((times[i]! - times[i - 1]!) * tb - meanInterval) > tolerance) variable = true;
  }
  const base = times[0]!;
  const frameTimes = new Float64Array(n);
  for (let i = 0; i < n; i++) frameTimes[i] = (times[i]! - base) * tb;

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
    tracks: streams
      .filter((s) => s.codec_type === 'audio' || s.codec_type === 'subtitle')
      .map((s) => ({ index: s.index, type: s.codec_type as 'audio' | 'subtitle', codec: s.codec_name ?? 'unknown' })),
    formatName,
    timeBase: video.time_base && parseRational(video.time_base) > 0 ? video.time_base : '1/90000',
    startSeconds: scan.missing ? 0 : base * tb,
    intraOnly: n > 1 && scan.keyframes === n,
    ...(scan.keyPositions && scan.keyPositions[0] === 0 && (scan.keyframes === n || KEYFRAME_RESTART_CODECS.has(video.codec_name ?? '')) ? { keyframes: scan.keyPositions } : {}),
  };
}

/**
 * Whether the frames present run to the end the header declares (within two frame slots). Some
 * headers count frame slots rather than frames: AVI stores a frame a capture dropped, or a gap a
 * remux left, as an empty chunk that its header counts and no decoder sees. Such a file still runs
 * to its declared end; a truncated one stops short of it.
 */
function reachesDeclaredEnd(times: number[], tb: number, declared: number, declaredSeconds: number): boolean {
  if (!Number.isFinite(declaredSeconds) || declaredSeconds <= 0) return false;
  const slot = declaredSeconds / declared;
  return (times[times.length - 1]! - times[0]!) * tb + slot >= declaredSeconds - 2 * slot;
}

/**
 * Demuxers that make "video" out of something that is not one: text rendered as a terminal (tty and
 * its relatives), playlists and lists of other files, and image files (a still image is refused
 * rather than encoded as a one-frame video, the same way by analyze, encode and compare).
 */
const TEXT_DEMUXERS = new Set(['tty', 'bin', 'xbin', 'adf', 'idf']);
const LIST_DEMUXERS = new Set(['hls', 'concat', 'ffmetadata', 'dash']);
const IMAGE_CODECS = new Set(['png', 'apng', 'mjpeg', 'jpegls', 'bmp', 'gif', 'webp', 'tiff', 'jpeg2000', 'ppm', 'pgm', 'pbm', 'pam', 'qoi', 'dpx', 'exr', 'sgi', 'targa', 'xbm', 'xpm', 'xwd', 'pcx', 'photocd', 'pictor', 'sunrast', 'psd', 'hdr', 'jpegxl', 'gem']);
/**
 * Codecs whose keyframes reset every piece of decoder state, so decoding can start at any of them and
 * the frames after it decode as they would in a whole-stream decode: FFV1 (its range coder's
 * contexts start afresh), VP8 and VP9 (a keyframe refreshes every reference slot). Not H.264/HEVC,
 * whose keyframe flag also marks recovery points that later frames may reach behind.
 */
const KEYFRAME_RESTART_CODECS = new Set(['ffv1', 'vp8', 'vp9']);
/** Codecs whose streams can switch size at a keyframe (new sequence header), as captures joined end to end do. */
const MID_STREAM_CHANGES = new Set(['h264', 'hevc', 'mpeg2video', 'mpeg1video']);

function demuxers(formatName: string): string[] {
  return formatName.split(',');
}

function isImageDemuxer(formatName: string): boolean {
  return demuxers(formatName).some((d) => d === 'image2' || d === 'image2pipe' || d.endsWith('_pipe'));
}

/** One frame of an image codec (a GIF or an image file): a picture, not a video. */
function isStillImage(formatName: string, codec: string | undefined, frames: number): boolean {
  return isImageDemuxer(formatName) || (frames === 1 && IMAGE_CODECS.has(codec ?? ''));
}

function refuseNonVideoDemuxer(path: string, formatName: string, codec: string | undefined): void {
  const names = demuxers(formatName);
  if (names.some((d) => TEXT_DEMUXERS.has(d))) {
    throw new RoiError('INPUT_NOT_VIDEO', `input is a text file (ffmpeg's ${formatName} demuxer would render its characters as video), not a video: ${path}`);
  }
  if (names.some((d) => LIST_DEMUXERS.has(d))) {
    throw new RoiError('INPUT_NOT_VIDEO', `input is a ${formatName} playlist or file list, not a video file: ${path}; give the video itself`);
  }
  if (isImageDemuxer(formatName) && /%\d*d|[*?]/.test(path)) {
    throw new RoiError('INPUT_IS_IMAGE', `input is an image sequence (ffmpeg's ${formatName} demuxer), not a video file: ${path}; make a video of it first, e.g. ffmpeg -framerate 25 -i '${path}' -pix_fmt yuv420p video.mp4`);
  }
  if (isImageDemuxer(formatName)) {
    throw new RoiError('INPUT_IS_IMAGE', `input is a still image (${codec ?? 'image'} read by ffmpeg's ${formatName} demuxer), not a video: ${path}; make a video of it first, e.g. ffmpeg -loop 1 -i image -t 5 -pix_fmt yuv420p video.mp4`);
  }
}

/** "srt: 1 subtitle stream" — what ffprobe found, for the no-video message. */
function describeStreams(formatName: string, streams: FfprobeStream[]): string {
  const counts = new Map<string, number>();
  for (const s of streams) {
    const type = s.codec_type === 'video' && s.disposition?.attached_pic ? 'cover picture' : (s.codec_type ?? 'unknown');
    counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  const list = [...counts].map(([type, n]) => `${n} ${type} stream${n > 1 ? 's' : ''}`).join(', ');
  return `ffmpeg reads it as ${formatName} with ${list || 'no streams'}`;
}

interface PacketScan {
  /** Presentation timestamps in the stream's time base, ascending (synthetic when the stream has none). */
  times: number[];
  /** Packets without any timestamp (elementary streams). */
  missing: number;
  /** Packets flagged as keyframes (discarded ones not counted). */
  keyframes: number;
  /** First place where decode timestamps go backwards. */
  jump?: { packet: number; from: number; to: number };
  /** Positions (among packets not discarded) of the keyframes, when presentation order is decode order and no packet was discarded. */
  keyPositions?: Uint32Array;
}

/**
 * Presentation timestamps (in the stream's time base) of the frames the decoder will output, in
 * order, from one stream's packets, which needs no decoding: pts sorted ascending, without packets
 * the demuxer marks as discard (edit-list pre-roll), falling back to dts and then to the nominal
 * rate when a stream has no pts. Decode timestamps must rise; where they fall, two recordings were joined.
 */
class PacketScanner {
  private readonly times: number[] = [];
  private missing = 0;
  private keyframes = 0;
  private packet = 0;
  private lastDts = -Infinity;
  private jump: PacketScan['jump'];
  /** Keyframe positions among the packets kept; dropped (set undefined) once packet n cannot be frame n. */
  private keyPositions: number[] | undefined = [];
  private lastTs = -Infinity;

  add(pts: string | undefined, dts: string | undefined, flags: string | undefined): void {
    this.packet++;
    const d = dts !== undefined && dts !== 'N/A' ? Number(dts) : NaN;
    if (Number.isFinite(d)) {
      if (d < this.lastDts && !this.jump) this.jump = { packet: this.packet, from: this.lastDts, to: d };
      this.lastDts = Math.max(this.lastDts, d);
    }
    if (flags?.includes('D')) {
      this.keyPositions = undefined;
      return;
    }
    const ts = pts !== undefined && pts !== 'N/A' ? Number(pts) : d;
    // Reordered frames (B-frames) or no timestamps: packet n is not known to be frame n.
    if (!Number.isFinite(ts) || ts <= this.lastTs) this.keyPositions = undefined;
    if (flags?.includes('K')) {
      this.keyframes++;
      this.keyPositions?.push(this.times.length + this.missing);
    }
    if (Number.isFinite(ts)) {
      this.times.push(ts);
      this.lastTs = ts;
    } else this.missing++;
  }

  finish(video: FfprobeStream): PacketScan {
    const { times, missing, keyframes, jump } = this;
    const keyPositions = this.keyPositions && Uint32Array.from(this.keyPositions);
    if (missing > 0) {
      // Elementary streams (raw .h264/.hevc) carry no timestamps: frames are evenly spaced.
      const tb = parseRational(video.time_base) || 1 / 90000;
      const nominal = parseRational(video.avg_frame_rate) || parseRational(video.r_frame_rate) || 25;
      return { times: Array.from({ length: times.length + missing }, (_, i) => i / nominal / tb), missing, keyframes };
    }
    return { times: times.sort((a, b) => a - b), missing, keyframes, ...(jump ? { jump } : {}), ...(keyPositions ? { keyPositions } : {}) };
  }
}

/**
 * The fields of one line of ffprobe's compact output ("section|key=value|…"; the separator, the
 * backslash and line breaks inside values are escaped with a backslash), in order.
 */
export function compactFields(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && i + 1 < line.length) {
      const next = line[++i]!;
      field += next === 'n' ? '\n' : next === 'r' ? '\r' : next === 't' ? '\t' : next;
    } else if (c === '|') {
      fields.push(field);
      field = '';
    } else {
      field += c;
    }
  }
  fields.push(field);
  return fields;
}

const NUMERIC_STREAM_FIELDS = new Set(['index', 'width', 'height']);

/** A `stream|…` line of compact output as the JSON writer would have shaped it (dispositions, tags and side data nested). */
export function parseCompactStream(fields: string[]): FfprobeStream {
  const stream: Record<string, unknown> & { disposition: Record<string, number>; tags: Record<string, string> } = { index: -1, disposition: {}, tags: {} };
  const sideData: Record<string, unknown>[] = [];
  for (const field of fields.slice(1)) {
    if (field === 'side_data') {
      sideData.push({});
      continue;
    }
    const eq = field.indexOf('=');
    if (eq < 0) continue;
    const key = field.slice(0, eq);
    const value = field.slice(eq + 1);
    if (value === 'N/A') continue;
    const current = sideData[sideData.length - 1];
    if (key.startsWith('disposition:')) stream.disposition[key.slice(12)] = Number(value);
    else if (key.startsWith('tag:')) stream.tags[key.slice(4)] = value;
    else if (current) current[key] = key === 'rotation' ? Number(value) : value;
    else stream[key] = NUMERIC_STREAM_FIELDS.has(key) ? Number(value) : value;
  }
  if (sideData.length > 0) stream.side_data_list = sideData;
  return stream as unknown as FfprobeStream;
}

/**
 * One ffprobe run for everything the probe reads without decoding: the container's format, every
 * stream's header and every packet's timestamps and flags, in compact output (one line per packet,
 * then per stream, then the format). Packets are scanned per stream as they arrive, since which
 * stream is the video is only known from the stream lines at the end.
 */
async function readStreamsAndPackets(path: string, bins: Binaries, signal?: AbortSignal): Promise<{ streams: FfprobeStream[]; formatName: string; packets: Map<number, PacketScanner> }> {
  const streams: FfprobeStream[] = [];
  const packets = new Map<number, PacketScanner>();
  let formatName = 'unknown';
  try {
    await run(bins.ffprobe, ['-v', 'error', '-show_format', '-show_streams', '-show_entries', 'packet=stream_index,pts,dts,flags', '-of', 'compact', '-i', path], {
      signal,
      what: 'probing input',
      onStdoutLine: (line) => {
        if (line.startsWith('packet|')) {
          // Timestamps and flags never need unescaping; any side data comes after them.
          let index: number | undefined, pts: string | undefined, dts: string | undefined, flags: string | undefined;
          for (const field of line.split('|')) {
            if (field.startsWith('stream_index=')) index = Number(field.slice(13));
            else if (field.startsWith('pts=')) pts = field.slice(4);
            else if (field.startsWith('dts=')) dts = field.slice(4);
            else if (field.startsWith('flags=')) flags = field.slice(6);
            else if (field === 'side_data') break;
          }
          if (index === undefined) return;
          let scanner = packets.get(index);
          if (!scanner) packets.set(index, (scanner = new PacketScanner()));
          scanner.add(pts, dts, flags);
        } else if (line.startsWith('stream|')) {
          streams.push(parseCompactStream(compactFields(line)));
        } else if (line.startsWith('format|')) {
          const name = compactFields(line).find((f) => f.startsWith('format_name='));
          if (name) formatName = name.slice(12);
        }
      },
    });
  } catch (error) {
    if (error instanceof ProcessError) {
      throw new RoiError('INPUT_UNREADABLE', `not a readable video file: ${path} (${lastErrorLine(error.stderrTail)})`);
    }
    throw error;
  }
  return { streams, formatName, packets };
}

interface KeyframeSize {
  stream: number;
  width: number;
  height: number;
  seconds: number;
}

/**
 * Sizes of the keyframes (the only frames where a stream can change size) of one video stream
 * (an ffprobe stream specifier), decoding nothing else. Only for codecs whose streams can carry a
 * new sequence header mid-stream.
 */
async function readKeyframeSizes(path: string, stream: string, bins: Binaries, signal?: AbortSignal): Promise<KeyframeSize[]> {
  const sizes: KeyframeSize[] = [];
  await run(
    bins.ffprobe,
    ['-v', 'error', '-select_streams', stream, '-skip_frame', 'nokey', '-show_entries', 'frame=stream_index,width,height,best_effort_timestamp_time', '-of', 'compact=p=0', '-i', path],
    {
      signal,
      what: 'reading keyframe sizes',
      onStdoutLine: (line) => {
        if (!line) return;
        const fields = Object.fromEntries(line.split('|').map((kv) => kv.split('=') as [string, string]));
        const width = Number(fields.width);
        const height = Number(fields.height);
        if (width > 0 && height > 0) sizes.push({ stream: Number(fields.stream_index), width, height, seconds: Number(fields.best_effort_timestamp_time) || 0 });
      },
    },
  ).catch((error: unknown) => {
    // Undecodable keyframes are the packet scan's and the decoder's business; sizes are best effort.
    if (error instanceof ProcessError) return;
    throw error;
  });
  return sizes;
}

/**
 * Bytes and packet count of a file's first video stream, summed from its packets (no decoding):
 * the stream's own size, without the container's overhead, which is what bitrates and BD-rates
 * compare.
 */
export async function videoStreamBytes(path: string, bins: Binaries, signal?: AbortSignal): Promise<{ bytes: number; packets: number }> {
  let bytes = 0;
  let packets = 0;
  await run(bins.ffprobe, ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=size', '-of', 'csv=p=0', path], {
    signal,
    what: 'reading video packet sizes',
    onStdoutLine: (line) => {
      // A packet with side data prints "size," and the side data on lines of their own.
      const size = Number(line.split(',')[0]!.trim());
      if (line.trim() && Number.isFinite(size) && size > 0) {
        bytes += size;
        packets++;
      }
    },
  });
  return { bytes, packets };
}
