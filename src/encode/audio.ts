import type { Binaries } from '../media/binaries.js';
import { RoiError } from '../media/errors.js';
import { run } from '../media/process.js';
import { invalid } from '../media/validate.js';
import type { Container, TrackPlan } from './argv.js';
import { parseRate } from './rate-control.js';

/**
 * What happens to the audio: copied as it is (the default), or encoded to AAC or Opus at a bitrate,
 * for when copied audio would eat a size budget (a film's 5.1 track). Pure but for
 * encodedAudioBytes, which encodes the audio alone once to count its bytes.
 */
export type AudioChoice = { codec: 'copy' } | { codec: 'aac' | 'opus'; bitrate: number };

const EXPECTED = "copy, aac:RATE or opus:RATE such as aac:128k or opus:96k (bit/s; k = 1000)";
/** Sensible ranges of ffmpeg's AAC encoder and libopus (which refuses above 512 kbit/s a channel pair). */
const RANGE = { aac: [16_000, 512_000], opus: [6_000, 512_000] } as const;

export function parseAudio(value: unknown): AudioChoice {
  if (value === undefined || value === 'copy') return { codec: 'copy' };
  const m = typeof value === 'string' ? /^(aac|opus):(.+)$/.exec(value.trim()) : null;
  if (!m) throw invalid(EXPECTED, 'audio', value);
  const codec = m[1] as 'aac' | 'opus';
  const bitrate = parseRate('audio', m[2], EXPECTED);
  const [min, max] = RANGE[codec];
  if (bitrate < min || bitrate > max) throw invalid(`${codec}:RATE with RATE ${min / 1000}k–${max / 1000}k`, 'audio', value);
  return { codec, bitrate };
}

/** The planned tracks with every audio track encoded as `choice` says (subtitles as they were). */
export function applyAudioChoice(tracks: TrackPlan[], choice: AudioChoice, container: Container, output: string): TrackPlan[] {
  if (choice.codec === 'copy') return tracks;
  // ffmpeg 5.1's MOV muxer does not take Opus (its MP4 muxer does).
  if (choice.codec === 'opus' && container === 'mov' && tracks.some((t) => t.type === 'audio')) {
    throw new RoiError('INVALID_OPTION', `MOV (${output}) cannot hold Opus audio: encode it to aac instead, or write .mp4 or .mkv`, { option: 'audio' });
  }
  const action = choice.codec === 'aac' ? 'aac' : 'libopus';
  return tracks.map((t) => (t.type === 'audio' ? { ...t, action, bitrate: choice.bitrate } : t));
}

/**
 * Bytes and packets one audio track comes to once encoded as planned: the track encoded alone, the
 * packets counted (ffmpeg's framecrc muxer lists each packet's size; nothing is written). Both
 * encoders are deterministic, so the encode proper writes these very packets: the size budget
 * counts the audio exactly, not from its nominal rate.
 */
export async function encodedAudioBytes(input: string, track: TrackPlan, bins: Binaries, signal?: AbortSignal): Promise<{ bytes: number; packets: number }> {
  let bytes = 0;
  let packets = 0;
  await run(bins.ffmpeg, ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error', '-i', input, '-map', `0:${track.index}`, '-copyts', '-c:a', track.action, '-b:a', String(track.bitrate), '-f', 'framecrc', '-'], {
    signal,
    what: 'counting the encoded audio',
    onStdoutLine: (line) => {
      if (line.startsWith('#')) return;
      const size = Number(line.split(',')[4]);
      if (Number.isFinite(size)) {
        bytes += size;
        packets++;
      }
    },
  });
  return { bytes, packets };
}
