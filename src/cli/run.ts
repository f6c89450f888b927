import { join } from 'node:path';
import { emitJson, ProgressDisplay } from './output.js';
import { AbortError, RoiError } from '../media/errors.js';
import { analysisArgs, cliMessage } from './options.js';
import { pictureWords } from '../media/hdr.js';

/**
 * The command handlers: call the library, print. Each loads what its command needs when it runs
 * (analysis and ONNX for analyze and encode; the report code, Vega and sharp only for compare), so
 * start-up and `--help` stay fast.
 */

/** Ctrl-C aborts the running job; the library then kills ffmpeg and removes partial files. */
export function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return controller.signal;
}

export function fail(error: unknown, json: boolean): never {
  const message = error instanceof AbortError ? 'interrupted' : error instanceof RoiError ? cliMessage(error) : `unexpected error: ${error instanceof Error ? error.message : String(error)}`;
  if (json) emitJson({ type: 'error', code: error instanceof RoiError || error instanceof AbortError ? error.code : 'UNEXPECTED', message });
  process.stderr.write(`roi-encode: ${message.split('\n')[0]}\n`);
  if (process.env.ROI_ENCODER_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  process.exit(error instanceof AbortError ? 130 : 1);
}

interface CommandContext {
  json: boolean;
  input: string;
  output: string | undefined;
  signal: AbortSignal;
  display: ProgressDisplay;
}

/**
 * What every command shares: its input and output, Ctrl-C wired to an AbortSignal, a progress
 * display, and any failure as one line (or an NDJSON error event) and a non-zero exit.
 */
async function command(argv: Record<string, unknown>, body: (c: CommandContext) => Promise<void>): Promise<void> {
  const json = Boolean(argv.json);
  const display = new ProgressDisplay(json);
  try {
    await body({ json, input: String(argv.input), output: argv.output as string | undefined, signal: interruptSignal(), display });
  } catch (error) {
    display.clear();
    fail(error, json);
  }
}

/** " (psy-rd=2:deblock=-1,-1)" for the expert parameters passed, '' for none. */
const paramsText = (params: Record<string, string>) => (Object.keys(params).length ? ` (${Object.entries(params).map(([k, v]) => `${k}=${v}`).join(':')})` : '');

/** Rounded for display; the library's results are exact. */
const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

export function runAnalyze(argv: Record<string, unknown>): Promise<void> {
  const debugVideo = argv['debug-video'] as string | undefined;
  return command(argv, async ({ json, input, output, signal, display }) => {
    const { checkOutputPath, withScratchDir, writeAtomically } = await import('../media/output-file.js');
    if (output) await checkOutputPath(output, { force: Boolean(argv.force), inputs: [input], what: 'plan' });
    if (debugVideo) await checkOutputPath(debugVideo, { force: Boolean(argv.force), inputs: [input], what: 'debug video' });
    const [{ analyze }, { planToJson }, { writeFile }] = await Promise.all([import('../analysis/analyze.js'), import('../plan/plan-file.js'), import('node:fs/promises')]);
    const ffmpegPath = argv.ffmpeg as string | undefined;
    const plan = await analyze(input, { ...analysisArgs(argv), signal, onProgress: display.listener });
    if (debugVideo) {
      const [{ renderDebugVideo }, { resolveBinaries }] = await Promise.all([import('../analysis/debug-video.js'), import('../media/binaries.js')]);
      await withScratchDir((dir) =>
        renderDebugVideo(plan, debugVideo, resolveBinaries({ ffmpegPath }), { signal, onProgress: display.listener, filterScript: join(dir, 'debug.filter') }),
      );
    }
    display.clear();
    const text = planToJson(plan);
    if (output) await writeAtomically(output, (temp) => writeFile(temp, text));
    const faces = plan.detections.reduce((n, d) => n + d.faces.length, 0);
    if (json) {
      emitJson({ type: 'done', plan: output ?? plan, ...(debugVideo ? { debugVideo } : {}), frames: plan.input.frameCount, samples: plan.detections.length, faces, segments: plan.segments.length, analysis: plan.analysis });
    } else if (!output) {
      process.stdout.write(text);
    } else {
      process.stderr.write(`wrote ${output}: ${plan.input.frameCount} frames, ${plan.detections.length} samples, ${faces} face detections, ${plan.segments.length} segments\n`);
    }
  });
}

export function runEncode(argv: Record<string, unknown>): Promise<void> {
  return command(argv, async ({ json, input, output, signal, display }) => {
    if (!output) throw new RoiError('MISSING_OUTPUT', 'give an output file with -o, e.g. roi-encode in.mp4 -o out.mp4');
    const { encode } = await import('../runners/encode.js');
    const result = await encode(input, output, {
      ...analysisArgs(argv),
      plan: argv.plan as string | undefined,
      crf: argv.crf as number | undefined,
      bitrate: argv.bitrate as string | undefined,
      targetSize: argv['target-size'] as string | undefined,
      maxrate: argv.maxrate as string | undefined,
      bufsize: argv.bufsize as string | undefined,
      audio: argv.audio as string | undefined,
      preset: argv.preset as string | undefined,
      strength: argv.strength as number | undefined,
      height: argv.height as number | undefined,
      width: argv.width as number | undefined,
      codec: argv.codec as 'x265' | 'x264' | undefined,
      x265Params: argv['x265-params'] as string | undefined,
      x264Params: argv['x264-params'] as string | undefined,
      force: Boolean(argv.force),
      redis: argv.redis as string | undefined,
      chunkSeconds: argv['chunk-seconds'] as number | undefined,
      secretFile: argv['secret-file'] as string | undefined,
      matchCrf: argv['match-crf'] as number | undefined,
      targetFacePsnr: argv['target-face-psnr'] as number | undefined,
      verifyReference: argv['verify-reference'] as boolean | undefined,
      onNotice: (message: string) => {
        display.clear();
        if (json) emitJson({ type: 'notice', message });
        process.stderr.write(`roi-encode: ${message}\n`);
      },
      signal,
      onProgress: display.listener,
    });
    display.clear();
    // Display precision: 0.1 kbit/s and 0.01 s, in the text line and in --json alike.
    const summary = {
      output: result.output,
      bytes: result.bytes,
      bitrateKbps: round(result.bitrateKbps, 1),
      videoBitrateKbps: round(result.videoBitrateKbps, 1),
      ...(result.targetBytes !== undefined ? { targetBytes: result.targetBytes } : {}),
      ...(result.sizeShortfall ? { sizeShortfall: result.sizeShortfall } : {}),
      ...(result.requestedBitrateKbps !== undefined ? { requestedBitrateKbps: round(result.requestedBitrateKbps, 1) } : {}),
      passes: result.passes,
      frames: result.frames,
      width: result.width,
      height: result.height,
      ...(result.scaledFrom ? { scaledFrom: result.scaledFrom } : {}),
      durationSeconds: round(result.durationSeconds, 3),
      analysisSeconds: round(result.analysisSeconds, 2),
      encodeSeconds: round(result.encodeSeconds, 2),
      roi: result.roi,
      codec: result.codec,
      // The expert's x265Params / x264Params as passed to the encoder ({} for none).
      encoderParams: result.encoderParams,
      // Bit depth, colour and HDR metadata as probed on the output.
      ...(result.picture ? { picture: result.picture } : {}),
      crf: result.crf,
      preset: result.preset,
      strength: result.strength,
      segments: result.plan?.segments.length ?? 0,
      // Where the analysis time went (a fresh analysis only; none with --plan or --roi none).
      ...(result.analysisSeconds > 0 && result.plan?.analysis ? { analysis: result.plan.analysis } : {}),
      ...(result.target ? { target: (await import('../strategies/face-target-summary.js')).targetJson(result.target) } : {}),
    };
    if (json) emitJson({ type: 'done', ...summary });
    else {
      // Two-pass encodes say what was asked beside what came out.
      const asked = result.targetBytes !== undefined ? ` (${result.bytes} of ${result.targetBytes} bytes asked)` : '';
      // A scaled output says its size (an unscaled one is the source's, as always).
      const scaled = result.scaledFrom ? ` at ${result.width}x${result.height} (scaled from ${result.scaledFrom.width}x${result.scaledFrom.height})` : '';
      const passes = result.passes > 1 ? `, ${result.passes} passes, video ${summary.videoBitrateKbps.toFixed(1)} kbit/s` : '';
      process.stderr.write(`wrote ${output}: ${(result.bytes / 1024).toFixed(1)} KiB${asked}, ${summary.bitrateKbps.toFixed(1)} kbit/s${passes}, ${result.frames} frames${scaled}, ${result.codec}${paramsText(result.encoderParams)}${pictureWords(result.picture)}, roi ${result.roi}, analysis ${summary.analysisSeconds.toFixed(2)} s + encode ${summary.encodeSeconds.toFixed(2)} s\n`);
    }
    if (!json && result.sizeShortfall) process.stderr.write(`smaller than asked: ${result.sizeShortfall}\n`);
    if (!json && result.target) process.stderr.write(`${(await import('../strategies/face-target-summary.js')).targetSentence(result.target)}\n`);
  });
}

export function runCompare(argv: Record<string, unknown>): Promise<void> {
  return command(argv, async ({ json, input, output, signal, display }) => {
    if (!output) throw new RoiError('MISSING_OUTPUT', 'give a report directory with -o, e.g. roi-encode compare in.mp4 -o report/');
    const [{ compare }, { summaryTable }] = await Promise.all([import('../runners/compare.js'), import('./summary.js')]);
    const report = await compare(input, output, {
      ...analysisArgs(argv),
      plan: argv.plan as string | undefined,
      crfs: argv.crf as string | undefined,
      bitrates: argv.bitrates as string | undefined,
      codec: argv.codec as string | undefined,
      baseline: argv.baseline as string | undefined,
      x265Params: argv['x265-params'] as string | undefined,
      x264Params: argv['x264-params'] as string | undefined,
      height: argv.height as number | undefined,
      width: argv.width as number | undefined,
      preset: argv.preset as string | undefined,
      strength: argv.strength as number | undefined,
      matchCrf: argv['match-crf'] as number | undefined,
      force: Boolean(argv.force),
      signal,
      onProgress: display.listener,
    });
    display.clear();
    if (json) emitJson({ type: 'done', report: join(output, report.files.json), html: join(output, report.files.html), ...report });
    else process.stdout.write(`${summaryTable(report)}\nReport: ${join(output, report.files.html)} (data: ${join(output, report.files.json)})\n`);
  });
}
