/**
 * roi-encoder: content-aware HEVC encoding. The same functions the `roi-encode` CLI calls.
 */
export { analyze, ANALYZE_DEFAULTS, type AnalyzeOptions, type AnalyzeSettings, type RoiKind } from './analysis/analyze.js';
export { renderDebugVideo } from './analysis/debug-video.js';
export { readPlan, validatePlan, planToJson, PLAN_VERSION, type Plan, type PlanRegion, type PlanSegment, type PlanZone } from './plan/plan.js';
export { probeVideo, type VideoInfo } from './media/probe.js';
export { RoiError, ProcessError, AbortError } from './media/errors.js';
export type { ProgressEvent, ProgressListener } from './media/progress.js';
export { VERSION } from './media/version.js';
export { ENCODE_DEFAULTS } from './encode/encode.js';
export { encode, type EncodeOptions, type EncodeResult } from './runners/encode.js';
export { TARGET_TOLERANCE_DB, MAX_SAMPLE_TRIES, type FaceTargetOptions, type TargetOutcome, type TargetTry } from './strategies/face-target.js';
export { startWorker, type StartWorkerOptions, type RoiWorker, type WorkerEvent } from './distributed/worker.js';
export type { DistributedEncodeOptions } from './distributed/options.js';
export { bdRate, type RatePoint } from './report/bdrate.js';
export { measureFaces, measureQuality, type FaceQuality, type QualityResult } from './report/metrics.js';
export { compare, COMPARE_DEFAULTS, type CompareOptions } from './runners/compare.js';
export { reportSchema, REPORT_VERSION, type Report, type ReportPoint, type CompareMode } from './report/report-schema.js';
