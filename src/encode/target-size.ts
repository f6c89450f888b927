import type { Binaries } from '../media/binaries.js';
import { RoiError } from '../media/errors.js';
import { run } from '../media/process.js';
import type { VideoInfo } from '../media/probe.js';
import type { Container, TrackPlan } from './argv.js';
import { encodedAudioBytes } from './audio.js';
import { formatBytes, formatRate, type Vbv } from './rate-control.js';

/**
 * The video's share of a whole-file size: SIZE minus what is carried over (the audio and subtitle
 * packets, whose bytes the input already holds) minus the container's own bytes. Pure, apart from
 * copiedStreamBytes, which reads the input's packet sizes (no decoding).
 */

/** The window a --target-size result must land in: never above SIZE, at most 3% under it. */
export const SIZE_WINDOW = 0.03;
/** Where the first encode aims: the window's middle, so x265's few-percent miss stays inside it. */
export const SIZE_AIM = 1 - SIZE_WINDOW / 2;
/**
 * The least video a size may leave, in bits per coded pixel. x265 medium spends 0.0036 bpp at CRF 38
 * and 0.0029 at CRF 42 on the talking head (400x300), 0.0036 and 0.0026 on the 720p dev composite;
 * CRF 51 is 0.00225 on the talking head, so below about 0.003 the average rate cannot be reached at
 * all and what comes out is not worth watching.
 */
export const MIN_VIDEO_BITS_PER_PIXEL = 0.003;

/**
 * Container bytes beyond the packets, measured on x265 encodes of the talking head (10 s and 30.6 s,
 * 252 and 765 frames, with and without a 436- or 1319-packet AAC track): MP4 (faststart, 90 kHz movie
 * timescale) 6.4–29.8 kB, about 3.3 kB plus 12.4 bytes a video and 13 bytes an audio packet
 * (sample tables, edit lists); Matroska 4.8–17.5 kB, about 3.2 kB plus 6.3 and 7.3 bytes (block
 * headers, cues). Rounded up a little: an estimate too high only leaves the result lower in the window.
 */
const OVERHEAD: Record<Container, { fixed: number; perPacket: number }> = {
  mp4: { fixed: 3400, perPacket: 13 },
  mov: { fixed: 3400, perPacket: 13 },
  mkv: { fixed: 3300, perPacket: 7.5 },
};

export function containerOverhead(container: Container, packets: number): number {
  const o = OVERHEAD[container];
  return Math.ceil(o.fixed + o.perPacket * packets);
}

/** Bytes and packets of the streams an encode carries over besides its video. */
export interface CarriedStreams {
  bytes: number;
  packets: number;
  /** 'the audio', 'the subtitles' or 'the audio and subtitles' (for messages). */
  what: string;
}

/**
 * Packet bytes of the planned audio and subtitle tracks, from the input's packets (audio encoded to
 * AAC or Opus: from that encode, exactly). Tracks converted
 * on the way (PCM or FLAC to ALAC, text subtitles to mov_text) are counted at their input size: ALAC
 * is about FLAC's size and smaller than PCM, so the estimate errs towards leaving the video less, and
 * the corrective pass measures the real bytes.
 */
export async function carriedStreams(input: string, tracks: readonly TrackPlan[], bins: Binaries, signal?: AbortSignal): Promise<CarriedStreams> {
  const wanted = new Set(tracks.map((t) => t.index));
  const types = new Set(tracks.map((t) => t.type));
  const what = types.size === 2 ? 'the audio and subtitles' : types.has('subtitle') ? 'the subtitles' : 'the audio';
  if (wanted.size === 0) return { bytes: 0, packets: 0, what };
  let bytes = 0;
  let packets = 0;
  // Audio encoded on the way (--audio aac:RATE, opus:RATE) is counted as it will be written.
  for (const t of tracks.filter((t) => t.action === 'aac' || t.action === 'libopus')) {
    const encoded = await encodedAudioBytes(input, t, bins, signal);
    bytes += encoded.bytes;
    packets += encoded.packets;
    wanted.delete(t.index);
  }
  if (wanted.size === 0) return { bytes, packets, what };
  await run(bins.ffprobe, ['-v', 'error', '-show_entries', 'packet=stream_index,size', '-of', 'csv=p=0', input], {
    signal,
    what: 'reading audio and subtitle packet sizes',
    onStdoutLine: (line) => {
      const [index, size] = line.split(',').map(Number);
      if (index !== undefined && wanted.has(index) && Number.isFinite(size)) {
        bytes += size!;
        packets++;
      }
    },
  });
  return { bytes, packets, what };
}

/** How a target size is shared out, settled before any work. */
export interface SizeBudget {
  targetBytes: number;
  carriedBytes: number;
  overheadBytes: number;
  /** The video's bytes the first encode aims at (inside the window, at SIZE_AIM). */
  videoBytes: number;
  /** Its average bitrate over the video's duration, bit/s, whole kbit/s (what x265 takes). */
  videoBitrate: number;
  /** The duration the bitrates are reckoned over, seconds. */
  durationSeconds: number;
}

/**
 * The video's share of `targetBytes`, or a refusal that says what fits: a size the carried streams
 * fill ("the audio alone is 1.9 MB"), one that leaves the video under MIN_VIDEO_BITS_PER_PIXEL, or
 * (with a VBV) one whose video rate would be above maxrate.
 */
export function sizeBudget(targetBytes: number, info: VideoInfo, container: Container, carried: CarriedStreams, vbv?: Vbv): SizeBudget {
  const asked = formatBytes(targetBytes);
  const overheadBytes = containerOverhead(container, info.frameCount + carried.packets);
  const fixed = carried.bytes + overheadBytes;
  const minVideo = (MIN_VIDEO_BITS_PER_PIXEL * info.width * info.height * info.frameCount) / 8;
  const least = Math.ceil((fixed + minVideo) / SIZE_AIM);
  if (carried.bytes > 0 && carried.bytes >= targetBytes) {
    throw new RoiError('SIZE_TOO_SMALL', `target size ${asked} is too small for ${info.path}: ${carried.what} alone is ${formatBytes(carried.bytes)}; give at least ${formatBytes(least)}`, { option: 'targetSize' });
  }
  const videoBytes = targetBytes * SIZE_AIM - fixed;
  if (videoBytes < minVideo) {
    const carriedText = carried.bytes > 0 ? `${carried.what} takes ${formatBytes(carried.bytes)} and ` : '';
    throw new RoiError('SIZE_TOO_SMALL', `target size ${asked} is too small for ${info.path}: ${carriedText}the ${container.toUpperCase()} container about ${formatBytes(overheadBytes)}, leaving ${formatBytes(Math.max(0, videoBytes))} for ${info.width}x${info.height} video of ${info.durationSeconds.toFixed(1)} s; the least that is watchable needs about ${formatBytes(least)}`, { option: 'targetSize' });
  }
  const videoBitrate = Math.max(1000, Math.floor((videoBytes * 8) / info.durationSeconds / 1000) * 1000);
  if (vbv && videoBitrate > vbv.maxrate) {
    throw new RoiError('SIZE_ABOVE_MAXRATE', `target size ${asked} needs ${formatRate(videoBitrate)} of video, above maxrate ${formatRate(vbv.maxrate)}: lower the size or raise maxrate`, { option: 'targetSize' });
  }
  return { targetBytes, carriedBytes: carried.bytes, overheadBytes, videoBytes, videoBitrate, durationSeconds: info.durationSeconds };
}

/** Whether a whole file of `bytes` is inside the window of `targetBytes`. */
export function inSizeWindow(bytes: number, targetBytes: number): boolean {
  return bytes <= targetBytes && bytes >= targetBytes * (1 - SIZE_WINDOW);
}

/**
 * The bitrate of a corrective pass: the last one's, scaled by how far its video missed the video's
 * share, now that the other bytes of the file (`fileBytes` − `videoBytes`) are measured, not estimated.
 * With an earlier pass as well (a second correction), the line through the two (asked bitrate, video
 * bytes) points instead: the encoder's response is not proportional everywhere (chunks encoded
 * apart, each with its own rate control, gave 1.4% more than asked at one rate and under at another).
 */
export function correctedBitrate(last: { bitrate: number; fileBytes: number; videoBytes: number }, targetBytes: number, previous?: { bitrate: number; videoBytes: number }): number {
  const videoShare = targetBytes * SIZE_AIM - (last.fileBytes - last.videoBytes);
  let next = (last.bitrate * videoShare) / last.videoBytes;
  if (previous && previous.bitrate !== last.bitrate) {
    const slope = (last.videoBytes - previous.videoBytes) / (last.bitrate - previous.bitrate);
    // Only a line that rises: more bits asked, more bits out.
    if (slope > 0) next = last.bitrate + (videoShare - last.videoBytes) / slope;
  }
  return Math.max(1000, Math.floor(next / 1000) * 1000);
}
