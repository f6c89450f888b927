#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { RoiError } from './media/errors.js';
import { analysisOptions, commonOptions, compareOptions, encodeOptions, operandsAfterDashDash, restoreRawNumbers, workerOptions } from './cli/options.js';
import { fail } from './cli/run.js';
import { VERSION } from './media/version.js';

/**
 * The `roi-encode` command: parse, then hand over to a handler in src/cli/run.ts, which loads the
 * library code its command needs only when it runs.
 */
export async function main(rawArgs: string[]): Promise<void> {
  const args = operandsAfterDashDash(rawArgs);
  const json = args.includes('--json');
  const handlers = () => import('./cli/run.js');
  await yargs(args)
    .scriptName('roi-encode')
    // Options are read by their dashed names; camelCase aliases would only double error messages.
    .parserConfiguration({ 'camel-case-expansion': false })
    .version(VERSION)
    .strict()
    .middleware((argv) => restoreRawNumbers(argv, args), true)
    .command(
      'analyze <input>',
      'Find faces and write the encoding plan (JSON)',
      (y) =>
        analysisOptions(commonOptions(y))
          .positional('input', { type: 'string', demandOption: true, describe: 'Input video' })
          .option('output', { alias: 'o', type: 'string', describe: 'Plan file to write (default: stdout)' })
          .option('debug-video', { type: 'string', describe: 'Also render boxes and the importance heatmap over the video' })
          .example('$0 analyze in.mp4 -o plan.json', 'Write the plan: face tracks and QP offsets')
          .example('$0 analyze in.mp4 -o plan.json --debug-video overlay.mp4', 'Also draw the plan over the video')
          .example('$0 analyze in.mp4 --roi faces,saliency --face-detector mediapipe-full', 'Faces and salient objects, the full-range detector'),
      async (argv) => (await handlers()).runAnalyze(argv),
    )
    .command(
      'compare <input>',
      'Encode uniformly and with ROI at several CRFs, measure both, and write an HTML + JSON report',
      (y) =>
        compareOptions(analysisOptions(commonOptions(y)))
          .positional('input', { type: 'string', demandOption: true, describe: 'Input video' })
          .option('output', { alias: 'o', type: 'string', describe: 'Report directory to write (index.html, report.json, encodes/)' })
          .example('$0 compare in.mp4 -o report/', 'ROI against uniform x265 at CRF 22, 26, 30, 34')
          .example('$0 compare in.mp4 -o report/ --crf 24,28,32 --plan plan.json', 'Other CRFs, an existing plan')
          .example('$0 compare in.mp4 -o report/ --bitrates 150k,300k,600k', 'Two-pass at each bitrate: ROI and uniform at the same size')
          .example('$0 compare in.mp4 -o report/ --codec x264 --baseline x265', 'ROI H.264 against uniform H.264 and HEVC; the page plays the pair'),
      async (argv) => (await handlers()).runCompare(argv),
    )
    .command(
      '$0 <input>',
      'Encode with x265, spending bits on faces (the default command)',
      (y) =>
        encodeOptions(analysisOptions(commonOptions(y)))
          .positional('input', { type: 'string', demandOption: true, describe: 'Input video' })
          .option('output', { alias: 'o', type: 'string', describe: 'Output file (.mp4, .mov or .mkv)' })
          .example('$0 in.mp4 -o out.mp4', 'Faces protected, CRF 28, preset medium; audio and subtitles copied')
          .example('$0 in.mp4 -o out.mp4 --match-crf 23', 'Faces as good as uniform CRF 23, smallest file')
          .example('$0 in.mp4 -o out.mp4 --roi faces,saliency --strength 1.5', 'Faces and salient objects, stronger offsets')
          .example('$0 in.mp4 -o out.mp4 --plan plan.json', 'Encode with a plan from analyze')
          .example('$0 /shared/in.mp4 -o /shared/out.mp4 --redis redis://queue-host:6379', 'Encode in chunks on workers'),
      async (argv) => (await handlers()).runEncode(argv),
    )
    .command(
      'worker',
      'Run encode jobs from Redis until SIGINT/SIGTERM (input and output on a filesystem every machine sees)',
      (y) =>
        workerOptions(y)
          .example('$0 worker --redis redis://queue-host:6379 --root /shared', 'Take jobs from that Redis whose files are all under /shared (mounted at the same path on every machine)')
          .example('$0 worker --redis redis://queue-host:6379 --concurrency 2', 'Two jobs at a time'),
      async (argv) => {
        try {
          await (await import('./cli/worker.js')).runWorkerCommand(argv);
        } catch (error) {
          fail(error, json);
        }
      },
    )
    .fail((message, error) => {
      // Usage errors are bad input like any other: one line, exit 1, and an error event with --json.
      // yargs hands its own validation errors over as YError; anything else came from a handler.
      if (error && error.name !== 'YError') fail(error, json);
      const text = message || error?.message || 'invalid arguments';
      fail(new RoiError('INVALID_ARGUMENTS', `${text.split('\n')[0]} (see roi-encode --help)`), json);
    })
    .help()
    .wrap(Math.min(120, process.stdout.columns || 100))
    .parseAsync();
}

await main(hideBin(process.argv));
