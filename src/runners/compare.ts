import { readFile, writeFile, mkdir, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { analyzeProbed, resolveAnalyzeOptions, type AnalyzeOptions } from '../analysis/analyze.js';
import type { Box } from '../analysis/boxes.js';
import { RoiError, throwIfAborted } from '../media/errors.js';
import { codecAnalyzeOptions, requireEvenSize, type LocalEncodeOptions } from '../encode/encode.js';
import { CODECS, codecFor } from '../encode/codec.js';
import { parseEncoderParams } from '../encode/encoder-params.js';
import { formatRate, parseRate } from '../encode/rate-control.js';
import { encode } from './encode.js';
import { X265_PRESETS } from '../encode/argv.js';
import { ffmpegCapabilities, requireEncoder, resolveBinaries } from '../media/binaries.js';
import { checkOutputDir, withScratchDir, writeDirAtomically } from '../media/output-file.js';
import { resolveScale, scaledSize, scalePlan } from '../encode/scale.js';
import { scaledSourceCopy } from '../encode/scaled-source.js';
import { refuseUnsupportedHdr } from '../encode/hdr.js';
import { probePictureFormat } from '../media/hdr.js';
import { probeVideo, videoStreamBytes } from '../media/probe.js';
import { planToJson, readPlan, validatePlan, type Plan } from '../plan/plan.js';
import type { ProgressListener } from '../media/progress.js';
import { conflict, expectNumber, expectOneOf, invalid } from '../media/validate.js';
import { VERSION } from '../media/version.js';
import { bdRate } from '../report/bdrate.js';
import { readEncoderInfo } from '../report/encoder-info.js';
import { crfForBitrate, isMatched, MATCH_ATTEMPTS, MATCH_TARGET, matchFor, sameSizeDelta, showcaseUniform } from '../report/matching.js';
import { renderHtml, type ReportImages } from '../report/html.js';
import { relieveKeyframes } from '../encode/keyframes.js';
import { cropImage, extractFrame, cropAround, heatmapImage, heatmapLegend, texturedPatch } from '../report/images.js';
import { FaceMasks, lowPercentile, measureQuality, type QualityResult } from '../report/metrics.js';
import { finiteOrNull, REPORT_VERSION, type CompareMode, type Report, type ReportPoint } from '../report/report-schema.js';

export interface CompareOptions extends Omit<AnalyzeOptions, 'onProgress'> {
  /** CRFs of the rate points. Default [22, 26, 30, 34]. */
  crfs?: number[] | string;
  /**
   * Average video bitrates of the rate points instead of CRFs ('150k,300k,600k', or bit/s numbers):
   * every mode is encoded two-pass at each, so ROI and uniform pair at the same size.
   */
  bitrates?: (number | string)[] | string;
  /** The encoder of the ROI and uniform encodes: 'x265' (HEVC, default) or 'x264' (H.264, which browsers play). */
  codec?: 'x265' | 'x264' | string;
  /**
   * Also encode uniform in the other encoder at the same rate points: 'x264' (what most people ship
   * today) beside x265, or 'x265' beside x264.
   */
  baseline?: 'x264' | 'x265' | 'none' | string;
  /**
   * Encode at a smaller size (aspect kept, as encode's height/width): every encode is scaled, and
   * every measurement is against the source scaled the same way.
   */
  height?: number;
  width?: number;
  /** Expert parameters for every x265 encode of the comparison (as encode's x265Params), and the same for x264. */
  x265Params?: LocalEncodeOptions['x265Params'];
  x264Params?: LocalEncodeOptions['x264Params'];
  /** A plan for the ROI encodes instead of a fresh analysis (a Plan or a path). */
  plan?: Plan | string;
  preset?: string;
  strength?: number;
  /**
   * Also encode with `encode`'s matchCrf (faces as good as uniform x265 at this CRF, smallest file)
   * and show it in the report: a point on the face charts, a line at the uniform face quality it aims
   * at, a row in the table.
   */
  matchCrf?: number;
  /** Replace an existing report directory. */
  force?: boolean;
  onProgress?: ProgressListener;
}

export const COMPARE_DEFAULTS = { crfs: [22, 26, 30, 34], preset: 'medium', strength: 1, codec: 'x265' as const };
/**
 * index.html embeds the matched H.264 pair as playable video up to this many bytes together
 * (base64 adds a third): a page of a few tens of megabytes still opens at once; larger pairs are linked.
 */
export const VIDEO_EMBED_LIMIT = 24e6;
/** A file in the report directory that marks it as ours (see checkOutputDir). */
const REPORT_JSON = 'report.json';

/** The rate points (messages name `crfs`; the CLI turns that into `--crf`, see src/cli/options.ts). */
export function parseCrfs(value: CompareOptions['crfs']): number[] {
  const list = value === undefined ? COMPARE_DEFAULTS.crfs : Array.isArray(value) ? value : String(value).split(',').map((s) => s.trim());
  const crfs = [...new Set(list.map((v) => expectNumber('crfs', v, 0, 51)))].sort((a, b) => a - b);
  if (crfs.length < 2) throw invalid('at least two different CRFs (BD-rate needs a curve), e.g. 22,26,30,34', 'crfs', value);
  return crfs;
}

/** The rate points as bit/s, at least two different ones (BD-rate needs a curve). */
export function parseBitrates(value: CompareOptions['bitrates']): number[] {
  const list = Array.isArray(value) ? value : String(value).split(',').map((s) => s.trim());
  const rates = [...new Set(list.map((v) => parseRate('bitrates', v)))].sort((a, b) => a - b);
  if (rates.length < 2) throw invalid('at least two different bitrates (BD-rate needs a curve), e.g. 150k,300k,600k', 'bitrates', value);
  return rates;
}

/** A rate point: a CRF, or an average bitrate in bit/s (two-pass). */
type Rate = { crf: number; bitrate?: undefined } | { bitrate: number; crf?: undefined };

const rateLabel = (rate: Rate) => (rate.bitrate === undefined ? `crf ${rate.crf}` : formatRate(rate.bitrate));
/** 'crf26' or '300k' in file names. */
const rateTag = (rate: Rate) => (rate.bitrate === undefined ? `crf${rate.crf}` : `${Math.round(rate.bitrate / 1000)}k`);

interface Job {
  mode: CompareMode;
  rate: Rate;
  file: string;
  /** Set on the extra ROI encode made to match this uniform file's bitrate. */
  matching?: string;
  /** Set on the encode whose CRF the face-quality target searches (compare's matchCrf). */
  matchCrf?: number;
}

/**
 * Encodes the input uniformly and with ROI in one encoder at several CRFs or bitrates (and
 * optionally uniform in the other encoder), measures every encode against the source, and writes `outputDir/` with index.html, report.json, plan.json
 * and encodes/. The directory appears only when everything succeeded.
 */
export async function compare(input: string, outputDir: string, options: CompareOptions = {}): Promise<Report> {
  if (options.crfs !== undefined && options.bitrates !== undefined) throw conflict('crfs', 'bitrates', 'the rate points are CRFs or bitrates');
  const bitrates = options.bitrates === undefined ? [] : parseBitrates(options.bitrates);
  const crfs = bitrates.length ? [] : parseCrfs(options.crfs);
  const rates: Rate[] = bitrates.length ? bitrates.map((bitrate) => ({ bitrate })) : crfs.map((crf) => ({ crf }));
  const codec = expectOneOf('codec', options.codec ?? COMPARE_DEFAULTS.codec, CODECS);
  const baseline = expectOneOf('baseline', options.baseline ?? 'none', ['none', 'x264', 'x265'] as const);
  if (baseline === codec) throw new RoiError('INVALID_OPTION', `baseline ${baseline} is what the uniform encodes already are with codec ${codec}: drop it, or give the other encoder`, { option: 'baseline' });
  const preset = expectOneOf('preset', options.preset ?? COMPARE_DEFAULTS.preset, X265_PRESETS);
  const strength = expectNumber('strength', options.strength ?? COMPARE_DEFAULTS.strength, 0, 4);
  const matchCrf = options.matchCrf === undefined ? undefined : expectNumber('matchCrf', options.matchCrf, 0, 51);
  // A fresh plan gets the codec's own default offsets, as encode's does.
  const analyzeResolved = resolveAnalyzeOptions(codecAnalyzeOptions(codecFor(codec), options));
  // Expert parameters are checked now, not at the first encode after the analysis: each must be for
  // an encoder this comparison uses.
  const encoders = baseline === 'none' ? [codec] : [codec, baseline];
  for (const name of CODECS) {
    const given = name === 'x265' ? options.x265Params : options.x264Params;
    if (given === undefined) continue;
    const description = codecFor(name);
    if (!encoders.includes(name)) throw new RoiError('INVALID_OPTION', `${description.paramsName} is for ${name}, but this comparison encodes with ${encoders.join(' and ')} only: use ${codecFor(codec).paramsName} instead, or use baseline ${name}`, { option: description.paramsName });
    parseEncoderParams(description, given);
  }
  const scale = resolveScale(options);
  const bins = resolveBinaries(options);
  const { signal, onProgress } = options;
  await checkOutputDir(outputDir, { force: options.force, inputs: [input], marker: REPORT_JSON, what: 'report directory' });
  await requireEncoder(bins.ffmpeg, codecFor(codec).encoder);
  if (baseline !== 'none') await requireEncoder(bins.ffmpeg, codecFor(baseline).encoder);
  throwIfAborted(signal);
  const [info, picture] = await Promise.all([probeVideo(input, bins, signal), probePictureFormat(input, bins, signal)]);
  // An HDR source x264 would refuse is refused now, before the analysis, as encode refuses it.
  for (const name of encoders) refuseUnsupportedHdr(codecFor(name), picture);
  const size = scale ? scaledSize(info, scale) : undefined;
  if (!size) requireEvenSize(info);
  const inputBytes = (await stat(input)).size;

  let plan: Plan;
  let analysisSeconds = 0;
  if (typeof options.plan === 'string') plan = await readPlan(options.plan);
  else if (options.plan) plan = validatePlan(options.plan);
  else {
    const started = performance.now();
    plan = await analyzeProbed(info, analyzeResolved, bins, { signal, onProgress });
    analysisSeconds = (performance.now() - started) / 1000;
  }
  if (plan.input.width !== info.width || plan.input.height !== info.height || plan.input.frameCount !== info.frameCount) {
    throw new RoiError('PLAN_MISMATCH', `the plan is for a ${plan.input.width}x${plan.input.height} video of ${plan.input.frameCount} frames, but ${input} is ${info.width}x${info.height} with ${info.frameCount} frames`);
  }

  // A scaled comparison measures against the source at the output's size: an FFV1 copy, outside the report.
  const measurePlan = size ? scalePlan(plan, size, codecFor(codec).blockSize) : plan;
  return withScratchDir((scratch) => writeDirAtomically(outputDir, async (dir) => {
    const reference = size ? await scaledSourceCopy(input, scratch, size, bins, signal) : input;
    const pairing = size ? { pairBy: 'index' as const } : {};
    await mkdir(join(dir, 'encodes'));
    await writeFile(join(dir, 'plan.json'), planToJson(plan));
    const modes: CompareMode[] = ['uniform', 'roi', ...(baseline === 'none' ? [] : [baseline])];
    const jobs: Job[] = rates.flatMap((rate) => modes.map((mode) => ({ mode, rate, file: join('encodes', `${mode}-${rateTag(rate)}.mp4`) })));
    const codecOf = (mode: CompareMode) => (mode === 'x264' || mode === 'x265' ? mode : codec);
    const points: ReportPoint[] = [];
    const perFrame: Record<string, (number | null)[]> = {};
    const qualities = new Map<string, QualityResult>();
    const runJob = async (job: Job, label: string): Promise<ReportPoint> => {
      const withLabel: ProgressListener | undefined = onProgress && ((e) => onProgress({ ...e, label }));
      const r = await encode(input, join(dir, job.file), {
        ...options,
        roi: job.mode === 'roi' ? 'faces' : 'none',
        codec: codecOf(job.mode),
        // Each encoder gets its own expert parameters (the baseline's encoder may have none).
        x265Params: codecOf(job.mode) === 'x265' ? options.x265Params : undefined,
        x264Params: codecOf(job.mode) === 'x264' ? options.x264Params : undefined,
        plan: job.mode === 'roi' ? plan : undefined,
        // compare's own matchCrf is for its one target encode; every other encode is at its rate point.
        crf: job.matchCrf === undefined ? job.rate.crf : undefined,
        bitrate: job.matchCrf === undefined ? job.rate.bitrate : undefined,
        matchCrf: job.matchCrf,
        preset,
        strength,
        force: false,
        // Copied audio would count in every bitrate and dilute the BD-rates.
        videoOnly: true,
        onProgress: withLabel,
      });
      const q = await measureQuality(reference, join(dir, job.file), measurePlan, bins, { signal, onProgress: withLabel, ...pairing });
      // The video stream alone: the container's few kilobytes would weigh most on the smallest encodes.
      const stream = await videoStreamBytes(join(dir, job.file), bins, signal);
      const sei = await readEncoderInfo(join(dir, job.file));
      qualities.set(job.file, q);
      perFrame[job.file] = q.facePsnrPerFrame.map((v) => finiteOrNull(v, 2));
      return {
        mode: job.mode,
        codec: codecOf(job.mode) === 'x264' ? 'h264' : 'hevc',
        crf: r.crf ?? job.rate.crf ?? null,
        targetBitrateKbps: job.rate.bitrate === undefined ? null : job.rate.bitrate / 1000,
        file: job.file,
        bytes: r.bytes,
        videoBytes: stream.bytes,
        bitrateKbps: Math.round(((stream.bytes * 8) / 1000 / info.durationSeconds) * 100) / 100,
        encodeSeconds: Math.round(r.encodeSeconds * 100) / 100,
        psnr: finiteOrNull(q.psnr),
        psnrY: finiteOrNull(q.psnrY),
        ssim: finiteOrNull(q.ssim, 6),
        facePsnr: finiteOrNull(q.facePsnr),
        facePsnrY: finiteOrNull(q.facePsnrY),
        facePsnrP5: finiteOrNull(lowPercentile(q.facePsnrPerFrame, 0.05)),
        faceSsim: finiteOrNull(q.faceSsim, 6),
        backgroundPsnr: finiteOrNull(q.backgroundPsnr),
        backgroundPsnrY: finiteOrNull(q.backgroundPsnrY),
        backgroundSsim: finiteOrNull(q.backgroundSsim, 6),
        salientPsnr: finiteOrNull(q.salientPsnr),
        salientPsnrY: finiteOrNull(q.salientPsnrY),
        salientSsim: finiteOrNull(q.salientSsim, 6),
        encoder: sei?.encoder ?? null,
        encoderOptions: sei?.options ?? null,
        command: r.command ?? null,
        encoderParams: r.encoderParams,
        picture: r.picture ?? null,
        ...(job.matching ? { matching: job.matching } : {}),
        ...(r.target && job.matchCrf !== undefined ? { target: { matchCrf: job.matchCrf, referenceFacePsnr: finiteOrNull(r.target.targetFacePsnr), met: r.target.met } } : {}),
      };
    };
    for (const [i, job] of jobs.entries()) points.push(await runJob(job, `${job.mode} ${rateLabel(job.rate)} (${i + 1}/${jobs.length})`));

    // The side-by-side needs ROI and uniform at the same bitrate. At bitrates the grid gives that.
    // Grid CRFs rarely do (ROI at a CRF spends a few percent more or less than uniform), so one or
    // two extra ROI encodes search for the CRF that does, at a low-to-mid rate where compression shows.
    const target = showcaseUniform(points);
    const tried: ReportPoint[] = [];
    const gridRoi = (uniform: ReportPoint) => points.find((p) => p.mode === 'roi' && p.targetBitrateKbps === uniform.targetBitrateKbps)!;
    let chosen = bitrates.length ? gridRoi(target) : matchFor(target, points);
    for (let attempt = 0; !bitrates.length && attempt < MATCH_ATTEMPTS && !isMatched(target, chosen); attempt++) {
      const known = [...points, ...tried].filter((p) => p.mode === 'roi').map((p) => ({ crf: p.crf!, bitrateKbps: p.bitrateKbps }));
      const crf = crfForBitrate(known, target.bitrateKbps * MATCH_TARGET);
      if (known.some((p) => p.crf === crf)) break;
      const job: Job = { mode: 'roi', rate: { crf }, file: join('encodes', `roi-crf${crf}-matching-uniform-crf${target.crf}.mp4`), matching: target.file };
      tried.push(await runJob(job, `roi crf ${crf}, matching the bitrate of uniform crf ${target.crf} (try ${attempt + 1} of at most ${MATCH_ATTEMPTS})`));
      chosen = matchFor(target, [...points, ...tried]);
    }
    // Keep the attempt that matches best (if it beats the grid); the others are removed again.
    for (const p of tried) {
      if (p === chosen) points.push(p);
      else {
        await rm(join(dir, p.file), { force: true });
        delete perFrame[p.file];
      }
    }

    if (matchCrf !== undefined) {
      const file = join('encodes', `roi-match-crf${matchCrf}.mp4`);
      points.push(await runJob({ mode: 'roi', rate: { crf: matchCrf }, file, matchCrf }, `roi, faces as good as uniform crf ${matchCrf}`));
    }

    const bdOf = (anchor: CompareMode, test: CompareMode) => {
      // The curves are the grid encodes; the matching and target encodes are single points.
      const curve = (mode: CompareMode, key: 'facePsnr' | 'facePsnrY' | 'psnr' | 'psnrY' | 'faceSsim' | 'salientPsnr' | 'salientPsnrY') =>
        points.filter((p) => p.mode === mode && !p.matching && !p.target).map((p) => ({ rate: p.bitrateKbps, quality: qualities.get(p.file)![key] }));
      const bd = (key: Parameters<typeof curve>[1]) => finiteOrNull(bdRate(curve(anchor, key), curve(test, key)), 2);
      return {
        facePsnr: bd('facePsnr'),
        facePsnrY: bd('facePsnrY'),
        psnr: bd('psnr'),
        psnrY: bd('psnrY'),
        faceSsim: bd('faceSsim'),
        salientPsnr: bd('salientPsnr'),
        salientPsnrY: bd('salientPsnrY'),
      };
    };

    const matched = { uniform: target, roi: chosen };
    // At bitrates every grid pair is at the same size; at CRFs the matched pair is.
    const grid = points.filter((p) => !p.matching && !p.target);
    const sameSize = bitrates.length
      ? grid.filter((p) => p.mode === 'uniform').sort((a, b) => a.targetBitrateKbps! - b.targetBitrateKbps!).map((u) => sameSizeDelta(u, gridRoi(u)))
      : [sameSizeDelta(target, chosen)];
    const frame = showcaseFrame(plan);
    const images = await reportImages(reference, dir, measurePlan, frame, matched, strength, bins, signal);
    // Browsers play H.264, not HEVC (Chromium: "no supported streams"), so only an x264 pair plays in the page.
    const pairBytes = matched.uniform.bytes + matched.roi.bytes;
    const video = codec !== 'x264' ? 'not web-playable' : pairBytes > VIDEO_EMBED_LIMIT ? 'too large' : 'embedded';
    if (video === 'embedded') images.videos = { uniform: await readFile(join(dir, matched.uniform.file)), roi: await readFile(join(dir, matched.roi.file)) };
    const report: Report = {
      version: REPORT_VERSION,
      generator: { name: 'roi-encoder', version: VERSION },
      createdAt: new Date().toISOString(),
      tools: {
        ffmpeg: (await ffmpegCapabilities(bins.ffmpeg)).version,
        x265: points.find((p) => p.codec === 'hevc')?.encoder ?? null,
        x264: points.find((p) => p.codec === 'h264')?.encoder ?? null,
      },
      input: {
        path: input,
        width: info.width,
        height: info.height,
        rotation: info.rotation,
        frameRate: Math.round(info.frameRate * 1e6) / 1e6,
        frameCount: info.frameCount,
        durationSeconds: Math.round(info.durationSeconds * 1e6) / 1e6,
        bytes: inputBytes,
      },
      settings: {
        codec,
        crfs,
        bitratesKbps: bitrates.map((b) => b / 1000),
        output: size ?? null,
        preset,
        strength,
        baseline: baseline === 'none' ? null : baseline,
        faceQpOffset: typeof plan.settings.faceQpOffset === 'number' ? plan.settings.faceQpOffset : null,
        backgroundQpOffset: typeof plan.settings.backgroundQpOffset === 'number' ? plan.settings.backgroundQpOffset : null,
        saliencyQpOffset: typeof plan.settings.saliencyQpOffset === 'number' ? plan.settings.saliencyQpOffset : null,
        keyframeMaxQpOffset: plan.keyframeMaxQpOffset ?? null,
      },
      analysis: {
        plan: 'plan.json',
        given: options.plan !== undefined,
        seconds: Math.round(analysisSeconds * 100) / 100,
        samples: plan.detections.length,
        faceDetections: plan.detections.reduce((n, d) => n + d.faces.length, 0),
        segments: plan.segments.length,
      },
      points,
      bdRate: bdOf('uniform', 'roi'),
      bdRateVsBaseline: baseline === 'none' ? null : bdOf(baseline, 'roi'),
      sameSize,
      matched: { uniform: matched.uniform.file, roi: matched.roi.file, frame, video },
      perFrame: { time: Array.from(info.frameTimes, (t) => Math.round(t * 1e4) / 1e4), facePsnr: perFrame },
      files: { html: 'index.html', json: REPORT_JSON, encodes: 'encodes' },
    };
    await writeFile(join(dir, REPORT_JSON), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(join(dir, 'index.html'), await renderHtml(report, images, basename(input)));
    return report;
  }));
}

/** The sample with the most (then the largest) faces nearest the middle of the video. */
export function showcaseFrame(plan: Plan): number {
  const mid = plan.input.frameCount / 2;
  let best = { frame: Math.floor(mid), faces: 0, area: 0, distance: Infinity };
  for (const d of plan.detections) {
    const area = Math.max(0, ...d.faces.map((f) => f.w * f.h));
    const distance = Math.abs(d.frame - mid);
    if (d.faces.length > best.faces || (d.faces.length === best.faces && d.faces.length > 0 && (area > best.area * 1.2 || (area >= best.area / 1.2 && distance < best.distance)))) {
      best = { frame: d.frame, faces: d.faces.length, area, distance };
    }
  }
  return best.frame;
}

async function reportImages(
  input: string,
  dir: string,
  plan: Plan,
  frame: number,
  matched: { uniform: ReportPoint; roi: ReportPoint },
  strength: number,
  bins: ReturnType<typeof resolveBinaries>,
  signal?: AbortSignal,
): Promise<ReportImages> {
  const { width, height, rotation = 0 } = plan.input;
  const source = await extractFrame(input, frame, width, height, bins, signal);
  const uniform = await extractFrame(join(dir, matched.uniform.file), frame, width, height, bins, signal);
  const roi = await extractFrame(join(dir, matched.roi.file), frame, width, height, bins, signal);
  const masks = new FaceMasks(plan, width, height);
  const faces = masks.facesAt(frame);
  // The offsets the encodes used: the plan's keyframe cap applied (the showcase frame may be a
  // keyframe), then --strength scales every one of them.
  const { segments } = relieveKeyframes(plan);
  const segment = segments.find((s) => s.startFrame <= frame && frame < s.endFrame) ?? segments[0]!;
  const applied = segment.regions.map((r) => ({ ...r, qpOffset: r.qpOffset * strength }));
  const heatmap = await heatmapImage(source, applied, faces, rotation);
  const crops: ReportImages['crops'] = [];
  const cropSet = async (title: string, box: Box) => ({
    title,
    box,
    source: await cropImage(source, box, rotation),
    uniform: await cropImage(uniform, box, rotation),
    roi: await cropImage(roi, box, rotation),
  });
  const largestOf = (boxes: Box[]) => [...boxes].sort((a, b) => b.w * b.h - a.w * a.h)[0];
  const face = largestOf(faces);
  if (face) crops.push(await cropSet('Face', cropAround(face, width, height)));
  const salient = largestOf(masks.salientAt(frame));
  if (salient) crops.push(await cropSet('Salient region', cropAround(salient, width, height)));
  // The largest background patch (up to 160 px) that fits beside the faces and their margins.
  const avoid = [...faces, ...masks.salientAt(frame), ...segment.regions.filter((r) => r.kind !== 'background')];
  for (let side = Math.min(160, Math.floor(Math.min(width, height) / 2 / 16) * 16); side >= 32; side -= 16) {
    const patch = texturedPatch(source, side, avoid);
    if (patch) {
      crops.push(await cropSet('Background', patch));
      break;
    }
  }
  return { heatmap, legend: heatmapLegend(applied), crops, frame };
}
