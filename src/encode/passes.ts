import { stat } from 'node:fs/promises';
import { RoiError } from '../media/errors.js';
import type { RateControl, Vbv } from './rate-control.js';
import { correctedBitrate, inSizeWindow, type SizeBudget } from './target-size.js';

/**
 * The encoder runs one encode needs for its rate control, written once for every mode and every
 * runner (one machine: src/encode/encode.ts; chunks on workers: src/distributed/submit.ts): one CRF
 * pass; or a first pass (stats only) and a second pass to the output at a bitrate; or, for a size,
 * that and a corrective second pass if the file missed the window. A runner gives both passes the
 * same frames, ROI offsets and timestamps, and keeps the stats where it removes them afterwards.
 */
export interface PassSpec {
  crf?: number;
  /** Average video bitrate of the whole encode, bit/s (a runner of chunks shares it out). */
  bitrate?: number;
  vbv?: Vbv;
  /** 1: statistics only; 2: the output, from the first pass's statistics; absent: one CRF pass. */
  pass?: 1 | 2;
}

export interface PassRunner {
  /**
   * Runs one pass (`label` names it in progress events: 'pass 1 of 2', …): a CRF pass or a second
   * pass writes `output`, a first pass only its statistics. Returns the command line that made
   * `output` (for reports).
   */
  run(output: string, spec: PassSpec, label: string | undefined): Promise<string[]>;
  /** Bytes of the first video stream's packets in `file`. */
  videoBytes(file: string): Promise<number>;
}

export interface PassOutcome {
  /** x265 runs made: 1 for CRF, 2 for two-pass, 3 with a corrective pass. */
  passes: number;
  /** The video bitrate the last pass asked x265 for, bit/s (two-pass modes only). */
  bitrate?: number;
  /** The command line of the pass that wrote the output. */
  args: string[];
  /**
   * With a size: why the file came out under the window, when the encoder could not spend what it
   * was given (its best quality at this preset fits in less). Absent when the file is in the window.
   */
  sizeShortfall?: string;
}

/**
 * A second pass whose video fills less than this share of what it was given has reached the
 * encoder's ceiling: x265 and x264 two-pass land within a few percent of a reachable rate, so a
 * miss this large means even the finest quantiser fits in less (3 s of the 400x300 talking head is
 * 385 kB at any rate above about 1 Mbit/s at preset fast) and a corrective pass would only repeat it.
 */
export const CEILING_SHARE = 1 / 3;

/**
 * Corrective second passes a size may get: one when the first result misses the window, and a second
 * if that one misses it too (a file larger than asked is never written; one still under after both
 * is written, and the result says so).
 */
export const MAX_CORRECTIONS = 2;

export async function runPasses(rate: RateControl, budget: SizeBudget | undefined, output: string, runner: PassRunner): Promise<PassOutcome> {
  if (rate.mode === 'crf') {
    const args = await runner.run(output, { crf: rate.crf, vbv: rate.vbv }, undefined);
    return { passes: 1, args };
  }
  let bitrate = rate.mode === 'bitrate' ? rate.bitrate : budget!.videoBitrate;
  const total = rate.mode === 'size' ? 'of 2 or 3' : 'of 2';
  await runner.run(output, { bitrate, vbv: rate.vbv, pass: 1 }, `pass 1 ${total}`);
  let args = await runner.run(output, { bitrate, vbv: rate.vbv, pass: 2 }, `pass 2 ${total}`);
  let passes = 2;
  if (rate.mode !== 'size') return { passes, bitrate, args };
  let previous: { bitrate: number; videoBytes: number } | undefined;
  for (let correction = 1; ; correction++) {
    const fileBytes = (await stat(output)).size;
    if (inSizeWindow(fileBytes, rate.targetBytes)) break;
    const videoBytes = await runner.videoBytes(output);
    if (fileBytes < rate.targetBytes && videoBytes < (bitrate * budget!.durationSeconds) / 8 * CEILING_SHARE) {
      return { passes, bitrate, args, sizeShortfall: ceilingText(videoBytes, bitrate, budget!.durationSeconds) };
    }
    if (correction > MAX_CORRECTIONS) {
      // Under the window after every correction is a smaller file than asked, which the result says.
      if (fileBytes <= rate.targetBytes) {
        return { passes, bitrate, args, sizeShortfall: `the encoder gave ${Math.round((videoBytes * 8) / budget!.durationSeconds / 1000)} kbit/s of video where ${bitrate / 1000} kbit/s was asked, even after ${MAX_CORRECTIONS} corrections` };
      }
      throw new RoiError('SIZE_MISSED', `the encode came out at ${fileBytes} bytes after ${passes} passes, above the target size of ${rate.targetBytes} bytes; nothing was written`);
    }
    const next = correctedBitrate({ bitrate, fileBytes, videoBytes }, rate.targetBytes, previous);
    previous = { bitrate, videoBytes };
    bitrate = next;
    // The first pass's stats hold the frames' complexity, not a rate: a second pass at another
    // bitrate reads them as they are.
    args = await runner.run(output, { bitrate, vbv: rate.vbv, pass: 2 }, `pass ${passes + 1}, correcting the size`);
    passes++;
  }
  return { passes, bitrate, args };
}

function ceilingText(videoBytes: number, bitrate: number, seconds: number): string {
  const got = Math.round((videoBytes * 8) / seconds / 1000);
  return `the encoder reached its best quality at ${got} kbit/s of video (${bitrate / 1000} kbit/s was offered): this content at this preset fits in less, and a larger file would hold nothing more`;
}
