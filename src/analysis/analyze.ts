import { RoiError, throwIfAborted } from '../media/errors.js';
import { resolveBinaries, type BinaryOptions } from '../media/binaries.js';
import { probeVideo, type VideoInfo } from '../media/probe.js';
import type { AnalysisStats, Plan } from '../plan/plan.js';
import { PLAN_VERSION } from '../plan/plan-file.js';
import { ProgressMeter, type ProgressListener } from '../media/progress.js';
import { expectInteger, expectNumber, expectOneOf, invalid } from '../media/validate.js';
import { VERSION } from '../media/version.js';
import type { ScoredBox } from './boxes.js';
import { BlazeFace, BLAZEFACE_MODELS } from './blazeface.js';
import { FaceDetector, MODEL_MIN_FACE } from './face-detector.js';
import { FaceScanner } from './face-scan.js';
import { planSampling, sampleFrames } from './frames.js';
import { buildSegments, type FrameRegion } from './importance.js';
import { SaliencyModel, salientBoxes } from './saliency.js';
import { displayToCoded } from './orientation.js';
import { interpolateTracks, labelWithTracks, trackFaces, type Sample } from './tracker.js';

export const ROI_KINDS = ['faces', 'saliency'] as const;
export type RoiKind = (typeof ROI_KINDS)[number];
export const FACE_DETECTORS = ['blazeface', 'mediapipe-full'] as const;
export type FaceDetectorName = (typeof FACE_DETECTORS)[number];
/** Salient-object track ids start here, so they never collide with face track ids in a plan. */
const SALIENT_TRACK_BASE = 1000;

export interface AnalyzeOptions extends BinaryOptions {
  /** What to look for: 'faces', 'saliency' or both ('faces,saliency'). Default ['faces']. */
  roi?: RoiKind | RoiKind[] | string;
  /**
   * 'blazeface' (default): BlazeFace on ONNX, multi-scale with verification. 'mediapipe-full':
   * MediaPipe's full-range detector on TensorFlow.js (wasm), slower; see README for the numbers.
   */
  faceDetector?: FaceDetectorName | string;
  /** A saliency ONNX model of your own (NCHW float [1,3,H,W] in, one-channel map out) instead of the built-in one. */
  saliencyModel?: string;
  /** Input normalisation for saliencyModel: 'imagenet' (default), 'unit' (0–1) or 'signed' (−1–1). */
  saliencyNormalization?: 'imagenet' | 'unit' | 'signed' | string;
  /** QP offset of salient regions. */
  saliencyQpOffset?: number;
  /** Frames analysed per second of video. */
  sampleFps?: number;
  /** Minimum face confidence 0–1. */
  minScore?: number;
  /** Smallest face width, in source pixels, the detector must find; smaller costs more time. */
  minFaceSize?: number;
  /** QP offset for face blocks (importance 1). */
  faceQpOffset?: number;
  /** QP offset for background blocks (importance 0). */
  backgroundQpOffset?: number;
  /**
   * The most any region's offset may be on frames x265 codes as keyframes (the plan's
   * keyframeMaxQpOffset). Default 0 when faces are analysed; `--roi saliency` alone has no cap unless given.
   */
  keyframeMaxQpOffset?: number;
  /** scdet threshold for scene cuts (0–100); lower finds more cuts. */
  sceneThreshold?: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

/** Defaults, each set by measurement (see README, "Defaults, and how they were chosen"). */
export const ANALYZE_DEFAULTS = {
  sampleFps: 3,
  minScore: 0.75,
  // MediaPipe full-range verifies real faces at 0.78–0.85 on the dev composite and street texture at
  // 0.39 at most (all 200 frames): 0.65 sits in the middle of that gap.
  mediapipeMinScore: 0.65,
  proposalScore: 0.5,
  minFaceSize: 24,
  // The face-quality-per-bit curve (bench --only curve; backdrop, talking head, fast pan; x265 medium,
  // CRF 22–34): a face offset half the background's, with keyframes' positive offsets lowered to 0,
  // saves 0.6 / 1.8 / 18.6 points more face BD-rate than −4/+4's curve at the same full-frame cost.
  // Past −4 each point of face saving costs 4–10 points on the full frame (talking head).
  faceQpOffset: -2,
  backgroundQpOffset: 4,
  keyframeMaxQpOffset: 0,
  // Salient objects get the base quality: spared the background's +4, without taking the faces' bits.
  saliencyQpOffset: 0,
  faceDetector: 'blazeface' as FaceDetectorName,
  sceneThreshold: 10,
  maxMissedSamples: 2,
  minHits: 2,
  singleHitScore: 0.85,
  maxSegmentGrowth: 1.6,
  maxSegmentSeconds: 10,
  // Full scans (whole frame and tiles) this often while the picture changes away from the known
  // faces, and at least every quietScanInterval seconds while it does not. A still talking head
  // (30 s) then gets 18 scans instead of 33 with the same boxes (every box IoU 1.0); the dev
  // composite (zooming) and the fast pan (panning) keep a scan a second.
  scanInterval: 1,
  quietScanInterval: 2,
  // A 32×18 thumbnail cell that changed by more than this (0–255) since the last scan, away from the
  // known faces, counts as a change: the talking head's room stays at 1–9 between its gestures.
  pictureChange: 12,
  // A followed face whose 8×8 grey patch moved less than this (0–255) since it was verified is
  // carried forward unverified: 2 carries a third of the talking head's follows (box IoU with
  // verifying them: median 0.96, 5th percentile 0.89, every face still inside the plan's regions),
  // none on the fast pan; 3 carries more but moves boxes further (median IoU 0.94, minimum 0.80).
  stillFace: 2,
  // Thumbnail distance between samples that counts as a new scene and forces a full scan: cuts in
  // the dev corpus score 58, the fast pan at most 12.6 and a talking head's gestures 12.3.
  sceneChange: 20,
} as const;

export interface AnalyzeSettings {
  roi: RoiKind[];
  detector: string;
  saliencyModel?: string;
  saliencyQpOffset?: number;
  sampleFps: number;
  sampleStep: number;
  minFaceSize: number;
  tiles: boolean;
  analysisWidth: number;
  analysisHeight: number;
  minScore: number;
  proposalScore: number;
  faceQpOffset: number;
  backgroundQpOffset: number;
  sceneThreshold: number;
  maxMissedSamples: number;
  minHits: number;
  singleHitScore: number;
  maxSegmentGrowth: number;
  maxSegmentFrames: number;
  /** Samples between full face scans (while the picture changes, and at most), and the scene-change distance that forces one. */
  scanEvery: number;
  quietScanEvery: number;
  sceneChange: number;
  /** Thumbnail-cell change that counts as a changed picture, and patch change under which a face is still (face-scan.ts ScanPolicy). */
  pictureChange: number;
  stillFace: number;
}

export function parseRoi(value: AnalyzeOptions['roi']): RoiKind[] {
  const list = value === undefined ? ['faces'] : Array.isArray(value) ? value : String(value).split(',').map((s) => s.trim());
  if (list.length === 0) throw invalid(`one or more of ${ROI_KINDS.join(', ')}`, 'roi', value);
  for (const kind of list) {
    if (!(ROI_KINDS as readonly string[]).includes(kind)) throw invalid(`one or more of ${ROI_KINDS.join(', ')}`, 'roi', kind);
  }
  return [...new Set(list)] as RoiKind[];
}

/** Validates options up front, before any work starts. */
export function resolveAnalyzeOptions(options: AnalyzeOptions) {
  const d = ANALYZE_DEFAULTS;
  return {
    roi: parseRoi(options.roi),
    sampleFps: expectNumber('sampleFps', options.sampleFps ?? d.sampleFps, 0.1, 240),
    minScore: expectNumber('minScore', options.minScore ?? (options.faceDetector === 'mediapipe-full' ? d.mediapipeMinScore : d.minScore), 0.05, 0.999),
    minFaceSize: expectInteger('minFaceSize', options.minFaceSize ?? d.minFaceSize, 8, 1024),
    faceQpOffset: expectNumber('faceQpOffset', options.faceQpOffset ?? d.faceQpOffset, -51, 51),
    backgroundQpOffset: expectNumber('backgroundQpOffset', options.backgroundQpOffset ?? d.backgroundQpOffset, -51, 51),
    // Undefined when not given: the default depends on what is analysed (see the plan below).
    keyframeMaxQpOffset: options.keyframeMaxQpOffset === undefined ? undefined : expectNumber('keyframeMaxQpOffset', options.keyframeMaxQpOffset, -51, 51),
    sceneThreshold: expectNumber('sceneThreshold', options.sceneThreshold ?? d.sceneThreshold, 0, 100),
    faceDetector: expectOneOf('faceDetector', options.faceDetector ?? d.faceDetector, FACE_DETECTORS),
    saliencyModel: options.saliencyModel === undefined ? undefined : String(options.saliencyModel),
    saliencyNormalization: expectOneOf('saliencyNormalization', options.saliencyNormalization ?? 'imagenet', ['imagenet', 'unit', 'signed'] as const),
    saliencyQpOffset: expectNumber('saliencyQpOffset', options.saliencyQpOffset ?? d.saliencyQpOffset, -51, 51),
  };
}

/** Options that only make sense with saliency must not be silently ignored. */
function checkCombination(resolved: ReturnType<typeof resolveAnalyzeOptions>): void {
  if (resolved.saliencyModel !== undefined && !resolved.roi.includes('saliency')) {
    throw new RoiError('INVALID_OPTION', `a saliency model was given but roi is '${resolved.roi.join(',')}'; add saliency, e.g. --roi faces,saliency`);
  }
}

/**
 * Samples frames, finds faces, tracks them across samples and turns them into a plan: per-frame
 * importance on the encoder's block grid, grouped into segments of regions with QP offsets.
 */
export async function analyze(input: string, options: AnalyzeOptions = {}): Promise<Plan> {
  const resolved = resolveAnalyzeOptions(options);
  checkCombination(resolved);
  const bins = resolveBinaries(options);
  throwIfAborted(options.signal);
  const started = performance.now();
  // The probe's ffprobe processes are spawned (synchronously) before the models load: creating a
  // session holds the main thread (~50 ms a model) and would otherwise delay the probe by as much.
  const probing = probeVideo(input, bins, options.signal);
  preloadModels(resolved);
  const info = await probing;
  return analyzeProbed(info, resolved, bins, { ...options, probeSeconds: (performance.now() - started) / 1000 });
}

/**
 * Starts loading the models an analysis with these options will use, so that it overlaps the probe.
 * Sessions are kept per process (see onnx.ts); a failure here is reported by the analysis itself.
 */
export function preloadModels(resolved: ReturnType<typeof resolveAnalyzeOptions>): void {
  if (resolved.roi.includes('faces') && resolved.faceDetector === 'blazeface') {
    for (const model of Object.values(BLAZEFACE_MODELS)) void BlazeFace.load(model).catch(() => undefined);
  }
}

/** The part of analyze() after probing, for callers that probed already. */
export async function analyzeProbed(
  info: VideoInfo,
  resolved: ReturnType<typeof resolveAnalyzeOptions>,
  bins: ReturnType<typeof resolveBinaries>,
  options: Pick<AnalyzeOptions, 'signal' | 'onProgress'> & { probeSeconds?: number },
): Promise<Plan> {
  const d = ANALYZE_DEFAULTS;
  checkCombination(resolved);
  const wantFaces = resolved.roi.includes('faces');
  const wantSaliency = resolved.roi.includes('saliency');
  // Frames are decoded at the scale where the smallest wanted face is just big enough for the model;
  // tiles run only when the letterboxed whole frame would shrink such a face below that size.
  const longSide = Math.max(info.width, info.height);
  const scale = Math.min(1, MODEL_MIN_FACE / resolved.minFaceSize);
  const tiles = wantFaces && (MODEL_MIN_FACE * longSide) / BLAZEFACE_MODELS.back.side > resolved.minFaceSize;
  const sampling = planSampling(info, resolved.sampleFps, tiles ? scale : Math.min(1, (2 * BLAZEFACE_MODELS.back.side) / longSide));
  const proposalScore = Math.min(d.proposalScore, resolved.minScore);
  const started = performance.now();
  const [faceModel, saliency] = await Promise.all([
    !wantFaces
      ? undefined
      : resolved.faceDetector === 'mediapipe-full'
        ? // Loaded on demand: TensorFlow.js costs ~0.4 s to import, which BlazeFace users should not pay.
          import('./mediapipe-detector.js').then(({ MediaPipeFullDetector }) =>
            MediaPipeFullDetector.create({ minScore: resolved.minScore, minFaceSize: Math.max(8, resolved.minFaceSize * (sampling.width / (info.rotation % 180 === 0 ? info.width : info.height))) }))
        : FaceDetector.create({ minScore: resolved.minScore, proposalScore, tiles }),
    wantSaliency ? SaliencyModel.create(resolved.saliencyModel === undefined ? {} : { modelPath: resolved.saliencyModel, normalization: resolved.saliencyNormalization }) : undefined,
  ]);
  // Full scans scanInterval apart while the picture changes away from the known faces, at most
  // quietScanInterval apart when it does not: a face that appears mid-shot is found within that time.
  const scanEvery = Math.max(1, Math.floor((d.scanInterval * info.frameRate) / sampling.step));
  const quietScanEvery = Math.max(scanEvery, Math.floor((d.quietScanInterval * info.frameRate) / sampling.step));
  const scanner = faceModel && new FaceScanner(faceModel, resolved.minScore, { scanEvery, quietScanEvery, sceneChange: d.sceneChange, pictureChange: d.pictureChange, stillFace: d.stillFace });
  const setupSeconds = (performance.now() - started) / 1000;
  const meter = new ProgressMeter('analyze', info.frameCount, options.onProgress);
  const sx = (info.rotation % 180 === 0 ? info.width : info.height) / sampling.width;
  const sy = (info.rotation % 180 === 0 ? info.height : info.width) / sampling.height;
  const toCoded = (f: ScoredBox): ScoredBox => {
    const coded = displayToCoded({ x: f.x * sx, y: f.y * sy, w: f.w * sx, h: f.h * sy }, info.rotation, info.width, info.height);
    return { ...roundBox(coded, info.width, info.height), score: Math.round(f.score * 1000) / 1000 };
  };

  const samples: (Sample & { time: number; salient: ScoredBox[] })[] = [];
  let detectMs = 0;
  let saliencyMs = 0;
  let reported = 0;
  const sampled = await sampleFrames(info, sampling, bins, {
    signal: options.signal,
    sceneThreshold: resolved.sceneThreshold,
    onFrame: async (frame) => {
      let t = performance.now();
      const faces = scanner ? (await scanner.detect(frame)).map(toCoded) : [];
      detectMs += performance.now() - t;
      t = performance.now();
      const salient = saliency ? salientBoxes(await saliency.map(frame.rgb, frame.width, frame.height), frame.width, frame.height).map(toCoded) : [];
      saliencyMs += performance.now() - t;
      samples.push({ frame: frame.index, time: frame.time, faces, salient });
      const done = Math.min(info.frameCount, frame.index + sampling.step);
      if (done > reported) meter.update((reported = done));
    },
  });
  const { cuts } = sampled;
  if (samples.length === 0) throw new RoiError('INPUT_UNREADABLE', `no frames could be decoded from ${info.path}`);
  const trackStarted = performance.now();

  const trackerOptions = { maxMissedSamples: d.maxMissedSamples, minHits: d.minHits, singleHitScore: d.singleHitScore };
  const interpolation = { frameCount: info.frameCount, step: sampling.step, cuts, width: info.width, height: info.height };
  const faceTracks = trackFaces(samples, cuts, trackerOptions);
  const perFrame: FrameRegion[][] = interpolateTracks(faceTracks, interpolation);
  const facesByTrack = labelWithTracks(samples.map((s) => ({ frame: s.frame, boxes: s.faces })), faceTracks);
  let salientByTrack: ScoredBox[][] = samples.map((s) => s.salient);
  if (saliency) {
    // Salient objects are tracked like faces, so their regions move and persist as smoothly.
    const salientTracks = trackFaces(samples.map((s) => ({ frame: s.frame, faces: s.salient })), cuts, { ...trackerOptions, singleHitScore: 2 });
    const salientFrames = interpolateTracks(salientTracks.map((t) => ({ ...t, id: t.id + SALIENT_TRACK_BASE })), interpolation);
    salientFrames.forEach((list, f) => perFrame[f]!.push(...list.map((b) => ({ ...b, kind: 'saliency' as const }))));
    salientByTrack = labelWithTracks(samples.map((s) => ({ frame: s.frame, boxes: s.salient })), salientTracks, SALIENT_TRACK_BASE);
  }
  const planStarted = performance.now();
  const maxSegmentFrames = Math.max(1, Math.round(d.maxSegmentSeconds * info.frameRate));
  const segments = buildSegments(perFrame, {
    width: info.width,
    height: info.height,
    qp: { face: resolved.faceQpOffset, background: resolved.backgroundQpOffset, saliency: resolved.saliencyQpOffset },
    cuts,
    maxGrowth: d.maxSegmentGrowth,
    maxFrames: maxSegmentFrames,
  });

  const finished = performance.now();
  const analysis: AnalysisStats = {
    seconds: round3((finished - started) / 1000 + (options.probeSeconds ?? 0)),
    stages: {
      probe: round3(options.probeSeconds ?? 0),
      setup: round3(setupSeconds),
      decodeWait: round3(sampled.decodeWaitSeconds),
      detect: round3(detectMs / 1000),
      saliency: round3(saliencyMs / 1000),
      track: round3((planStarted - trackStarted) / 1000),
      plan: round3((finished - planStarted) / 1000),
    },
    samples: samples.length,
    fullScans: scanner?.counts.fullScans ?? 0,
    followPasses: scanner?.counts.followPasses ?? 0,
    carriedFaces: scanner?.counts.carried ?? 0,
    maxQueued: sampled.maxQueued,
    decodedFrames: sampled.decodedFrames,
  };
  const keyframeMaxQpOffset = resolved.keyframeMaxQpOffset ?? (wantFaces ? d.keyframeMaxQpOffset : undefined);
  const settings: AnalyzeSettings = {
    roi: resolved.roi,
    detector: !wantFaces ? 'none' : resolved.faceDetector === 'mediapipe-full' ? 'mediapipe-full-verified' : 'blazeface-multiscale-verified',
    ...(saliency ? { saliencyModel: saliency.name, saliencyQpOffset: resolved.saliencyQpOffset } : {}),
    sampleFps: resolved.sampleFps,
    sampleStep: sampling.step,
    minFaceSize: resolved.minFaceSize,
    tiles,
    analysisWidth: sampling.width,
    analysisHeight: sampling.height,
    minScore: resolved.minScore,
    proposalScore,
    faceQpOffset: resolved.faceQpOffset,
    backgroundQpOffset: resolved.backgroundQpOffset,
    sceneThreshold: resolved.sceneThreshold,
    maxMissedSamples: d.maxMissedSamples,
    minHits: d.minHits,
    singleHitScore: d.singleHitScore,
    maxSegmentGrowth: d.maxSegmentGrowth,
    maxSegmentFrames,
    scanEvery,
    quietScanEvery,
    sceneChange: d.sceneChange,
    pictureChange: d.pictureChange,
    stillFace: d.stillFace,
  };
  return {
    version: PLAN_VERSION,
    generator: { name: 'roi-encoder', version: VERSION },
    input: {
      path: info.path,
      width: info.width,
      height: info.height,
      rotation: info.rotation,
      frameRate: Math.round(info.frameRate * 1e6) / 1e6,
      frameCount: info.frameCount,
      durationSeconds: Math.round(info.durationSeconds * 1e6) / 1e6,
    },
    settings: { ...settings },
    detections: samples.map((s, i) => ({ frame: s.frame, time: Math.round(s.time * 1e6) / 1e6, faces: facesByTrack[i]!, ...(saliency ? { salient: salientByTrack[i]! } : {}) })),
    cuts,
    segments,
    zones: [],
    // The cap by default with faces only: measured on faces (README, "Defaults, and how they were
    // chosen"); on a saliency-only clip (a disc over a still texture) it cost the salient regions
    // about 3 points of BD-rate at equal full-frame cost.
    ...(keyframeMaxQpOffset === undefined ? {} : { keyframeMaxQpOffset }),
    analysis,
  };
}

const round3 = (v: number) => Math.round(v * 1000) / 1000;

function roundBox(b: { x: number; y: number; w: number; h: number }, width: number, height: number) {
  const x = Math.max(0, Math.min(width - 1, Math.round(b.x)));
  const y = Math.max(0, Math.min(height - 1, Math.round(b.y)));
  return { x, y, w: Math.max(1, Math.min(width - x, Math.round(b.w))), h: Math.max(1, Math.min(height - y, Math.round(b.h))) };
}
