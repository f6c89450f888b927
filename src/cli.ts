#!/usr/bin/env node
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { analyze } from './analysis/analyze.js';
import { renderDebugVideo } from './analysis/debug-video.js';
import { emitJson, ProgressDisplay } from './cli-output.js';
import { AbortError, RoiError } from './errors.js';
import { resolveBinaries } from './media/binaries.js';
import { checkOutputPath, withScratchDir, writeAtomically } from './media/output-file.js';
import { encode } from './encode/encode.js';
import { compare } from './report/compare.js';
import { summaryTable } from './cli-summary.js';
import { planToJson } from './plan.js';
import { VERSION } from './version.js';

/** Ctrl-C aborts the running job; the library then kills ffmpeg and removes partial files. */
function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return controller.signal;
}

function fail(error: unknown, json: boolean): never {
  const message = error instanceof AbortError ? 'interrupted' : error instanceof RoiError ? error.message : `unexpected error: ${error instanceof Error ? error.message : String(error)}`;
  if (json) emitJson({ type: 'error', code: error instanceof RoiError || error instanceof AbortError ? error.code : 'UNEXPECTED', message });
  process.stderr.write(`roi-encode: ${message.split('\n')[0]}\n`);
  if (process.env.ROI_ENCODER_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  process.exit(error instanceof AbortError ? 130 : 1);
}

const common = (y: Argv) =>
  y
    .option('json', { type: 'boolean', default: false, describe: 'Machine-readable NDJSON events on stdout' })
    .option('force', { type: 'boolean', default: false, describe: 'Overwrite existing output files' })
    .option('ffmpeg', { type: 'string', describe: 'Path to ffmpeg (default: FFMPEG_PATH or PATH)' });

const analysisOptions = (y: Argv) =>
  y
    .option('roi', { type: 'string', default: 'faces', describe: 'What to prioritise: faces, saliency or faces,saliency (encode also takes none: a uniform encode)' })
    .option('sample-fps', { type: 'string', describe: 'Frames analysed per second of video (default 3)' })
    .option('min-score', { type: 'string', describe: 'Face confidence threshold 0–1' })
    .option('min-face', { type: 'string', describe: 'Smallest face width to find, in pixels' })
    .option('face-detector', { type: 'string', describe: 'blazeface (default, fastest) or mediapipe-full' })
    .option('saliency-model', { type: 'string', describe: 'Your own saliency ONNX model (NCHW [1,3,H,W] in, one-channel map out)' })
    .option('saliency-normalization', { type: 'string', describe: 'Input normalisation for --saliency-model: imagenet (default), unit or signed' });

/** The analysis options every command takes, from parsed arguments (validated by the library). */
function analysisArgs(argv: Record<string, unknown>) {
  return {
    roi: argv.roi as string,
    sampleFps: argv['sample-fps'] as number | undefined,
    minScore: argv['min-score'] as number | undefined,
    minFaceSize: argv['min-face'] as number | undefined,
    faceDetector: argv['face-detector'] as string | undefined,
    saliencyModel: argv['saliency-model'] as string | undefined,
    saliencyNormalization: argv['saliency-normalization'] as string | undefined,
    ffmpegPath: argv.ffmpeg as string | undefined,
  };
}

async function runAnalyze(argv: Record<string, unknown>): Promise<void> {
  const json = Boolean(argv.json);
  const input = String(argv.input);
  const output = argv.output as string | undefined;
  const debugVideo = argv['debug-video'] as string | undefined;
  const signal = interruptSignal();
  const display = new ProgressDisplay(json);
  try {
    if (output) await checkOutputPath(output, { force: Boolean(argv.force), inputs: [input], what: 'plan' });
    if (debugVideo) await checkOutputPath(debugVideo, { force: Boolean(argv.force), inputs: [input], what: 'debug video' });
    const ffmpegPath = argv.ffmpeg as string | undefined;
    const plan = await analyze(input, {
      ...analysisArgs(argv),
      signal,
      onProgress: display.listener,
    });
    if (debugVideo) {
      await withScratchDir((dir) =>
        renderDebugVideo(plan, debugVideo, resolveBinaries({ ffmpegPath }), { signal, onProgress: display.listener, filterScript: join(dir, 'debug.filter') }),
      );
    }
    display.clear();
    const text = planToJson(plan);
    if (output) await writeAtomically(output, (temp) => writeFile(temp, text));
    const faces = plan.detections.reduce((n, d) => n + d.faces.length, 0);
    if (json) {
      emitJson({ type: 'done', plan: output ?? plan, ...(debugVideo ? { debugVideo } : {}), frames: plan.input.frameCount, samples: plan.detections.length, faces, segments: plan.segments.length });
    } else if (!output) {
      process.stdout.write(text);
    } else {
      process.stderr.write(`wrote ${output}: ${plan.input.frameCount} frames, ${plan.detections.length} samples, ${faces} face detections, ${plan.segments.length} segments\n`);
    }
  } catch (error) {
    display.clear();
    fail(error, json);
  }
}

async function runEncode(argv: Record<string, unknown>): Promise<void> {
  const json = Boolean(argv.json);
  const input = String(argv.input);
  const output = argv.output as string | undefined;
  const signal = interruptSignal();
  const display = new ProgressDisplay(json);
  try {
    if (!output) throw new RoiError('MISSING_OUTPUT', 'give an output file with -o, e.g. roi-encode in.mp4 -o out.mp4');
    const result = await encode(input, output, {
      ...analysisArgs(argv),
      plan: argv.plan as string | undefined,
      crf: argv.crf as number | undefined,
      preset: argv.preset as string | undefined,
      strength: argv.strength as number | undefined,
      force: Boolean(argv.force),
      signal,
      onProgress: display.listener,
    });
    display.clear();
    const summary = {
      output: result.output,
      bytes: result.bytes,
      bitrateKbps: Math.round(result.bitrateKbps * 10) / 10,
      frames: result.frames,
      durationSeconds: result.durationSeconds,
      analysisSeconds: Math.round(result.analysisSeconds * 100) / 100,
      encodeSeconds: Math.round(result.encodeSeconds * 100) / 100,
      roi: result.roi,
      crf: result.crf,
      preset: result.preset,
      strength: result.strength,
      segments: result.plan?.segments.length ?? 0,
    };
    if (json) emitJson({ type: 'done', ...summary });
    else process.stderr.write(`wrote ${output}: ${(result.bytes / 1024).toFixed(1)} KiB, ${summary.bitrateKbps} kb/s, ${result.frames} frames, roi ${result.roi}, analysis ${summary.analysisSeconds}s + encode ${summary.encodeSeconds}s\n`);
  } catch (error) {
    display.clear();
    fail(error, json);
  }
}

async function runCompare(argv: Record<string, unknown>): Promise<void> {
  const json = Boolean(argv.json);
  const input = String(argv.input);
  const output = argv.output as string | undefined;
  const signal = interruptSignal();
  const display = new ProgressDisplay(json);
  try {
    if (!output) throw new RoiError('MISSING_OUTPUT', 'give a report directory with -o, e.g. roi-encode compare in.mp4 -o report/');
    const report = await compare(input, output, {
      ...analysisArgs(argv),
      plan: argv.plan as string | undefined,
      crfs: argv.crf as string | undefined,
      baseline: argv.baseline as string | undefined,
      preset: argv.preset as string | undefined,
      strength: argv.strength as number | undefined,
      force: Boolean(argv.force),
      signal,
      onProgress: display.listener,
    });
    display.clear();
    if (json) emitJson({ type: 'done', report: join(output, report.files.json), html: join(output, report.files.html), ...report });
    else process.stdout.write(`${summaryTable(report)}\nReport: ${join(output, report.files.html)} (data: ${join(output, report.files.json)})\n`);
  } catch (error) {
    display.clear();
    fail(error, json);
  }
}

export async function main(args: string[]): Promise<void> {
  await yargs(args)
    .scriptName('roi-encode')
    // Options are read by their dashed names; camelCase aliases would only double error messages.
    .parserConfiguration({ 'camel-case-expansion': false })
    .version(VERSION)
    .strict()
    .command(
      'analyze <input>',
      'Find faces and write the encoding plan (JSON)',
      (y) =>
        analysisOptions(common(y))
          .positional('input', { type: 'string', demandOption: true, describe: 'Input video' })
          .option('output', { alias: 'o', type: 'string', describe: 'Plan file to write (default: stdout)' })
          .option('debug-video', { type: 'string', describe: 'Also render boxes and the importance heatmap over the video' }),
      (argv) => runAnalyze(argv),
    )
    .command(
      'compare <input>',
      'Encode uniformly and with ROI at several CRFs, measure both, and write an HTML + JSON report',
      (y) =>
        analysisOptions(common(y))
          .positional('input', { type: 'string', demandOption: true, describe: 'Input video' })
          .option('output', { alias: 'o', type: 'string', describe: 'Report directory to write (index.html, report.json, encodes/)' })
          .option('crf', { type: 'string', describe: 'Comma-separated CRFs of the rate points (default 22,26,30,34)' })
          .option('baseline', { type: 'string', describe: 'x264: also encode uniform H.264 at the same CRFs' })
          .option('plan', { type: 'string', describe: 'Use this plan (from analyze) instead of analysing' })
          .option('preset', { type: 'string', describe: 'x265 preset (default medium)' })
          .option('strength', { type: 'string', describe: 'Scales all QP offsets: 0 uniform, 1 as planned, 2 twice as strong' }),
      (argv) => runCompare(argv),
    )
    .command(
      '$0 <input>',
      'Encode with x265, spending bits on faces (the default command)',
      (y) =>
        analysisOptions(common(y))
          .positional('input', { type: 'string', demandOption: true, describe: 'Input video' })
          .option('output', { alias: 'o', type: 'string', describe: 'Output file (.mp4, .mov or .mkv)' })
          .option('plan', { type: 'string', describe: 'Use this plan (from analyze) instead of analysing' })
          .option('crf', { type: 'string', describe: 'x265 CRF 0–51 (default 28)' })
          .option('preset', { type: 'string', describe: 'x265 preset (default medium)' })
          .option('strength', { type: 'string', describe: 'Scales all QP offsets: 0 uniform, 1 as planned, 2 twice as strong' }),
      (argv) => runEncode(argv),
    )
    .fail((message, error) => {
      // Usage errors are bad input like any other: one line, exit 1, and an error event with --json.
      const json = args.includes('--json');
      if (error) fail(error, json);
      fail(new RoiError('INVALID_ARGUMENTS', `${message.split('\n')[0]} (see roi-encode --help)`), json);
    })
    .help()
    .parseAsync();
}

await main(hideBin(process.argv));
