import { RoiError, throwIfAborted } from '../errors.js';
import { resolveBinaries, type BinaryOptions } from '../media/binaries.js';
import { probeVideo, type VideoInfo } from '../media/probe.js';
import { PLAN_VERSION, type Plan } from '../plan.js';
import { ProgressMeter, type ProgressListener } from '../progress.js';
import { expectInteger, expectNumber, invalid } from '../validate.js';
import { VERSION } from '../version.js';
import type { ScoredBox } from './boxes.js';
import { BLAZEFACE_MODELS } from './blazeface.js';
import { FaceDetector, MODEL_MIN_FACE } from './face-detector.js';
import { planSampling, sampleFrames } from './frames.js';
import { buildSegments } from './importance.js';
import { displayToCoded } from './orientation.js';
import { interpolateTracks, trackFaces, type Sample } from './tracker.js';

export const ROI_KINDS = ['faces'] as const;
export type RoiKind = (typeof ROI_KINDS)[number];

export interface AnalyzeOptions extends BinaryOptions {
  /** What to look for. Default ['faces']. */
  roi?: RoiKind | RoiKind[] | string;
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
  /** scdet threshold for scene cuts (0–100); lower finds more cuts. */
  sceneThreshold?: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

/** Defaults, each set by measurement (see README, "How the defaults were chosen"). */
export const ANALYZE_DEFAULTS = {
  sampleFps: 3,
  minScore: 0.75,
  proposalScore: 0.5,
  minFaceSize: 24,
  // Talking head, CRF 24–36: −4/+4 gives −22% BD-rate on face PSNR at +27% on full-frame PSNR;
  // −6/+6 gains only 2 more points on the face for +67% on the full frame.
  faceQpOffset: -4,
  backgroundQpOffset: 4,
  sceneThreshold: 10,
  maxMissedSamples: 2,
  minHits: 2,
  singleHitScore: 0.85,
  maxSegmentGrowth: 1.6,
  maxSegmentSeconds: 10,
} as const;

export interface AnalyzeSettings {
  roi: RoiKind[];
  detector: string;
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
    minScore: expectNumber('minScore', options.minScore ?? d.minScore, 0.05, 0.999),
    minFaceSize: expectInteger('minFaceSize', options.minFaceSize ?? d.minFaceSize, 8, 1024),
    faceQpOffset: expectNumber('faceQpOffset', options.faceQpOffset ?? d.faceQpOffset, -51, 51),
    backgroundQpOffset: expectNumber('backgroundQpOffset', options.backgroundQpOffset ?? d.backgroundQpOffset, -51, 51),
    sceneThreshold: expectNumber('sceneThreshold', options.sceneThreshold ?? d.sceneThreshold, 0, 100),
  };
}

/**
 * Samples frames, finds faces, tracks them across samples and turns them into a plan: per-frame
 * importance on the encoder's block grid, grouped into segments of regions with QP offsets.
 */
export async function analyze(input: string, options: AnalyzeOptions = {}): Promise<Plan> {
  const resolved = resolveAnalyzeOptions(options);
  const bins = resolveBinaries(options);
  throwIfAborted(options.signal);
  const info = await probeVideo(input, bins, options.signal);
  return analyzeProbed(info, resolved, bins, options);
}

/** The part of analyze() after probing, for callers that probed already. */
export async function analyzeProbed(
  info: VideoInfo,
  resolved: ReturnType<typeof resolveAnalyzeOptions>,
  bins: ReturnType<typeof resolveBinaries>,
  options: Pick<AnalyzeOptions, 'signal' | 'onProgress'>,
): Promise<Plan> {
  const d = ANALYZE_DEFAULTS;
  // Frames are decoded at the scale where the smallest wanted face is just big enough for the model;
  // tiles run only when the letterboxed whole frame would shrink such a face below that size.
  const longSide = Math.max(info.width, info.height);
  const scale = Math.min(1, MODEL_MIN_FACE / resolved.minFaceSize);
  const tiles = (MODEL_MIN_FACE * longSide) / BLAZEFACE_MODELS.back.side > resolved.minFaceSize;
  const sampling = planSampling(info, resolved.sampleFps, tiles ? scale : Math.min(1, (2 * BLAZEFACE_MODELS.back.side) / longSide));
  const detector = await FaceDetector.create({ minScore: resolved.minScore, proposalScore: Math.min(d.proposalScore, resolved.minScore) });
  const meter = new ProgressMeter('analyze', info.frameCount, options.onProgress);
  const sx = (info.rotation % 180 === 0 ? info.width : info.height) / sampling.width;
  const sy = (info.rotation % 180 === 0 ? info.height : info.width) / sampling.height;

  const samples: (Sample & { time: number })[] = [];
  const cuts = await sampleFrames(info, sampling, bins, {
    signal: options.signal,
    sceneThreshold: resolved.sceneThreshold,
    onFrame: async (frame) => {
      const found = await detector.detect(frame.rgb, frame.width, frame.height, tiles);
      const faces: ScoredBox[] = found.map((f) => {
        const coded = displayToCoded({ x: f.x * sx, y: f.y * sy, w: f.w * sx, h: f.h * sy }, info.rotation, info.width, info.height);
        return { ...roundBox(coded, info.width, info.height), score: Math.round(f.score * 1000) / 1000 };
      });
      samples.push({ frame: frame.index, time: frame.time, faces });
      meter.update(Math.min(info.frameCount, frame.index + sampling.step));
    },
  });
  if (samples.length === 0) throw new RoiError('INPUT_UNREADABLE', `no frames could be decoded from ${info.path}`);

  const tracks = trackFaces(samples, cuts, { maxMissedSamples: d.maxMissedSamples, minHits: d.minHits, singleHitScore: d.singleHitScore });
  const perFrame = interpolateTracks(tracks, { frameCount: info.frameCount, step: sampling.step, cuts, width: info.width, height: info.height });
  const maxSegmentFrames = Math.max(1, Math.round(d.maxSegmentSeconds * info.frameRate));
  const segments = buildSegments(perFrame, {
    width: info.width,
    height: info.height,
    qp: { face: resolved.faceQpOffset, background: resolved.backgroundQpOffset },
    cuts,
    maxGrowth: d.maxSegmentGrowth,
    maxFrames: maxSegmentFrames,
  });

  const settings: AnalyzeSettings = {
    roi: resolved.roi,
    detector: 'blazeface-multiscale-verified',
    sampleFps: resolved.sampleFps,
    sampleStep: sampling.step,
    minFaceSize: resolved.minFaceSize,
    tiles,
    analysisWidth: sampling.width,
    analysisHeight: sampling.height,
    minScore: resolved.minScore,
    proposalScore: Math.min(d.proposalScore, resolved.minScore),
    faceQpOffset: resolved.faceQpOffset,
    backgroundQpOffset: resolved.backgroundQpOffset,
    sceneThreshold: resolved.sceneThreshold,
    maxMissedSamples: d.maxMissedSamples,
    minHits: d.minHits,
    singleHitScore: d.singleHitScore,
    maxSegmentGrowth: d.maxSegmentGrowth,
    maxSegmentFrames,
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
    detections: samples.map((s) => ({ frame: s.frame, time: Math.round(s.time * 1e6) / 1e6, faces: s.faces })),
    cuts,
    segments,
    zones: [],
  };
}

function roundBox(b: { x: number; y: number; w: number; h: number }, width: number, height: number) {
  const x = Math.max(0, Math.min(width - 1, Math.round(b.x)));
  const y = Math.max(0, Math.min(height - 1, Math.round(b.y)));
  return { x, y, w: Math.max(1, Math.min(width - x, Math.round(b.w))), h: Math.max(1, Math.min(height - y, Math.round(b.h))) };
}
