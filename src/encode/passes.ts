import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { RoiError } from '../media/errors.js';
import { ratePass, type RateControl, type RatePass } from './rate-control.js';
import { correctedBitrate, inSizeWindow, type SizeBudget } from './target-size.js';

/**
 * The x265 runs one encode needs for its rate control, written once for every mode: one CRF pass;
 * or a first pass (stats only) and a second pass to the output at a bitrate; or, for a size, that
 * and a corrective second pass if the file missed the window. Both passes take the same argv but
 * for the rate options and the output, so they see identical frames, ROI offsets and timestamps.
 * The stats files live in `scratch`, which the caller removes whatever happens.
 */
export interface PassRunner {
  /** The argv of one pass writing to `output` (ignored for a first pass, which writes nothing). */
  args(output: string, rate: RatePass): string[];
  /** Runs one pass; `label` names it in progress events ('pass 1 of 2', …). */
  run(args: string[], label: string | undefined): Promise<void>;
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
 * only if the file is then still above the size (a file larger than asked is never written).
 */
export const MAX_CORRECTIONS = 2;

export async function runPasses(rate: RateControl, budget: SizeBudget | undefined, output: string, scratch: string, runner: PassRunner): Promise<PassOutcome> {
  if (rate.mode === 'crf') {
    const args = runner.args(output, ratePass(rate));
    await runner.run(args, undefined);
    return { passes: 1, args };
  }
  // Plain names: x265's option string cannot quote ':' or ',' (mkdtemp's suffix has neither).
  const stats = join(scratch, 'x265-2pass.log');
  let bitrate = rate.mode === 'bitrate' ? rate.bitrate : budget!.videoBitrate;
  const total = rate.mode === 'size' ? 'of 2 or 3' : 'of 2';
  await runner.run(runner.args(output, ratePass({ bitrate, vbv: rate.vbv }, { number: 1, stats })), `pass 1 ${total}`);
  let args = runner.args(output, ratePass({ bitrate, vbv: rate.vbv }, { number: 2, stats }));
  await runner.run(args, `pass 2 ${total}`);
  let passes = 2;
  if (rate.mode !== 'size') return { passes, bitrate, args };
  for (let correction = 1; ; correction++) {
    const fileBytes = (await stat(output)).size;
    if (inSizeWindow(fileBytes, rate.targetBytes)) break;
    const videoBytes = await runner.videoBytes(output);
    if (fileBytes < rate.targetBytes && videoBytes < (bitrate * budget!.durationSeconds) / 8 * CEILING_SHARE) {
      return { passes, bitrate, args, sizeShortfall: ceilingText(videoBytes, bitrate, budget!.durationSeconds) };
    }
    // Under the window after a correction is a smaller file than asked, which the result says.
    if (correction > 1 && fileBytes <= rate.targetBytes) {
      return { passes, bitrate, args, sizeShortfall: `the encoder gave ${Math.round((videoBytes * 8) / budget!.durationSeconds / 1000)} kbit/s of video where ${bitrate / 1000} kbit/s was asked, even after a correction` };
    }
    if (correction > MAX_CORRECTIONS) {
      throw new RoiError('SIZE_MISSED', `the encode came out at ${fileBytes} bytes after ${passes} passes, above the target size of ${rate.targetBytes} bytes; nothing was written`);
    }
    bitrate = correctedBitrate({ bitrate, fileBytes, videoBytes }, rate.targetBytes);
    // The first pass's stats hold the frames' complexity, not a rate: a second pass at another
    // bitrate reads them as they are.
    args = runner.args(output, ratePass({ bitrate, vbv: rate.vbv }, { number: 2, stats }));
    await runner.run(args, `pass ${passes + 1}, correcting the size`);
    passes++;
  }
  return { passes, bitrate, args };
}

function ceilingText(videoBytes: number, bitrate: number, seconds: number): string {
  const got = Math.round((videoBytes * 8) / seconds / 1000);
  return `the encoder reached its best quality at ${got} kbit/s of video (${bitrate / 1000} kbit/s was offered): this content at this preset fits in less, and a larger file would hold nothing more`;
}
