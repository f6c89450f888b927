import type { Argv } from 'yargs';
import { ENCODE_DEFAULTS, X265_PRESETS } from '../encode/argv.js';
import { RoiError } from '../media/errors.js';

/**
 * The CLI's options. Light on purpose: `--help` and the parser must not load the encoder, the
 * detectors or the report code. The library validates every value (sharp-style messages); the CLI
 * only parses, shows types and defaults in help, and names its own flags in messages.
 */

/**
 * Defaults the library applies, shown in help. The analysis and compare ones live in modules that are
 * slow to load, so they are repeated here; test/inputs.test.ts checks they match the library's.
 */
export const HELP_DEFAULTS = {
  roi: 'faces',
  sampleFps: 3,
  minScore: '0.75 (mediapipe-full: 0.65)',
  minFaceSize: 24,
  faceDetector: 'blazeface',
  saliencyNormalization: 'imagenet',
  compareCrfs: '22,26,30,34',
  ...ENCODE_DEFAULTS,
};

/** Library option name → CLI flag, so messages name what the user typed. */
export const CLI_FLAGS: Record<string, string> = {
  roi: '--roi',
  sampleFps: '--sample-fps',
  minScore: '--min-score',
  minFaceSize: '--min-face',
  faceDetector: '--face-detector',
  saliencyModel: '--saliency-model',
  saliencyNormalization: '--saliency-normalization',
  ffmpegPath: '--ffmpeg',
  plan: '--plan',
  crf: '--crf',
  crfs: '--crf',
  bitrates: '--bitrates',
  preset: '--preset',
  strength: '--strength',
  baseline: '--baseline',
  force: '--force',
  redis: '--redis',
  matchCrf: '--match-crf',
  targetFacePsnr: '--target-face-psnr',
  verifyReference: '--verify-reference',
  chunkSeconds: '--chunk-seconds',
  secretFile: '--secret-file',
  root: '--root',
  concurrency: '--concurrency',
  threads: '--threads',
  codec: '--codec',
  x265Params: '--x265-params',
  x264Params: '--x264-params',
  bitrate: '--bitrate',
  targetSize: '--target-size',
  maxrate: '--maxrate',
  bufsize: '--bufsize',
  audio: '--audio',
  height: '--height',
  width: '--width',
};

/** Options that rate-control messages name in their text ("no crf with bitrate: drop one"), not only as the subject. */
const NAMED_IN_TEXT = ['targetSize', 'bitrate', 'maxrate', 'bufsize', 'matchCrf', 'targetFacePsnr', 'crf', 'redis'];

/** A library message in CLI words: "for crf but" → "for --crf but", "force: true" → "--force". */
export function cliMessage(error: RoiError): string {
  const flag = error.option ? CLI_FLAGS[error.option] : undefined;
  if (!error.option || !flag) return error.message;
  const message = error.message
    .replace(`for ${error.option} but`, `for ${flag} but`)
    .replace(`${error.option}: true`, flag)
    // "x264Params cannot set crf: … use crf" (encoder-params.ts) names options at the start and after "use".
    .replace(new RegExp(`^${error.option} `), `${flag} `)
    .replace(/\buse (\w+)/g, (all, name: string) => (CLI_FLAGS[name] ? `use ${CLI_FLAGS[name]}` : all));
  // validate.ts conflict(): "Expected redis or audio, not both".
  const both = /^Expected (\w+) or (\w+), not both/.exec(message);
  if (both) return message.replace(both[0], `Expected ${CLI_FLAGS[both[1]!] ?? both[1]} or ${CLI_FLAGS[both[2]!] ?? both[2]}, not both`);
  if (!NAMED_IN_TEXT.includes(error.option)) return message;
  // Rate-control messages name other options too, up to the value they quote (the user's, as typed).
  const at = message.indexOf(' but received ');
  const [text, value] = at < 0 ? [message, ''] : [message.slice(0, at), message.slice(at)];
  // Whole words only: not inside a path or another flag ('/tmp/crf-test', '--crf').
  return text.replace(new RegExp(`(?<![-\\w/.])(${NAMED_IN_TEXT.join('|')})(?![-\\w/.:])`, 'g'), (name) => CLI_FLAGS[name]!) + value;
}

/** Numeric options: parsed as numbers, shown as [number] in help. */
const NUMERIC = ['sample-fps', 'min-score', 'min-face', 'crf', 'strength', 'chunk-seconds', 'concurrency', 'threads', 'match-crf', 'target-face-psnr', 'height', 'width'];

/**
 * yargs turns a non-numeric value of a number option into NaN; the library should see what was typed
 * ("Expected number 0–51 for crf but received 'abc'"), so the raw text is put back.
 */
export function restoreRawNumbers(argv: Record<string, unknown>, args: readonly string[]): void {
  for (const name of NUMERIC) {
    const value = argv[name];
    if (typeof value !== 'number' || !Number.isNaN(value)) continue;
    let raw: string | undefined;
    for (let i = 0; i < args.length && args[i] !== '--'; i++) {
      if (args[i] === `--${name}`) raw = args[i + 1];
      else if (args[i]!.startsWith(`--${name}=`)) raw = args[i]!.slice(name.length + 3);
    }
    argv[name] = raw ?? value;
  }
}

/**
 * Everything after `--` is an input file, even one whose name starts with a dash or is a command's
 * name. yargs does not fill positionals from there, so such names are passed as ./name.
 */
export function operandsAfterDashDash(args: readonly string[]): string[] {
  const at = args.indexOf('--');
  if (at < 0) return [...args];
  return [...args.slice(0, at), ...args.slice(at + 1).map((a) => (a.startsWith('/') || a.startsWith('./') ? a : `./${a}`))];
}

export const commonOptions = (y: Argv) =>
  y
    .option('json', { type: 'boolean', default: false, describe: 'Machine-readable NDJSON events on stdout' })
    .option('force', { type: 'boolean', default: false, describe: 'Overwrite existing output files' })
    .option('ffmpeg', { type: 'string', describe: 'Path to ffmpeg (default: FFMPEG_PATH or PATH)' });

export const analysisOptions = (y: Argv) =>
  y
    .option('roi', { type: 'string', defaultDescription: HELP_DEFAULTS.roi, describe: 'What to prioritise: faces, saliency or faces,saliency (encode also takes none: a uniform encode)' })
    .option('sample-fps', { type: 'number', requiresArg: true, defaultDescription: String(HELP_DEFAULTS.sampleFps), describe: 'Frames analysed per second of video' })
    .option('min-score', { type: 'number', requiresArg: true, defaultDescription: HELP_DEFAULTS.minScore, describe: 'Face confidence threshold 0–1' })
    .option('min-face', { type: 'number', requiresArg: true, defaultDescription: String(HELP_DEFAULTS.minFaceSize), describe: 'Smallest face width to find, in pixels' })
    .option('face-detector', { type: 'string', defaultDescription: HELP_DEFAULTS.faceDetector, describe: 'blazeface (fastest) or mediapipe-full' })
    .option('saliency-model', { type: 'string', describe: 'Your own saliency ONNX model (NCHW [1,3,H,W] in, one-channel map out)' })
    .option('saliency-normalization', { type: 'string', defaultDescription: HELP_DEFAULTS.saliencyNormalization, describe: 'Input normalisation for --saliency-model: imagenet, unit or signed' });

const presetHelp = `x265 preset: ${X265_PRESETS.join(', ')}`;

export const encodeOptions = (y: Argv) =>
  y
    .option('match-crf', { type: 'number', requiresArg: true, describe: 'Faces at least as good as a uniform encode (same codec) at this CRF (0–51), smallest file: searches the CRF' })
    .option('target-face-psnr', { type: 'number', requiresArg: true, describe: 'Face PSNR to reach, dB: searches the CRF' })
    .option('verify-reference', { type: 'boolean', describe: 'With --match-crf: also encode and measure the uniform reference on the whole video (about one more encode)' })
    .option('plan', { type: 'string', describe: 'Use this plan (from analyze) instead of analysing' })
    .option('crf', { type: 'number', requiresArg: true, defaultDescription: String(HELP_DEFAULTS.crf), describe: 'x265 CRF 0–51 (fractions allowed)' })
    .option('preset', { type: 'string', defaultDescription: HELP_DEFAULTS.preset, describe: presetHelp })
    .option('strength', { type: 'number', requiresArg: true, defaultDescription: String(HELP_DEFAULTS.strength), describe: 'Scales all QP offsets: 0 uniform, 1 as planned, 2 twice as strong' })
    .option('codec', { type: 'string', defaultDescription: 'x265', describe: 'x265 (HEVC) or x264 (H.264 High: what every browser plays); ROI with either' })
    .option('x265-params', { type: 'string', requiresArg: true, describe: "Expert x265 settings passed through, 'key=value:key=value' (not crf, bitrate, pass, stats, zones, aq-mode=0, hevc-aq)" })
    .option('x264-params', { type: 'string', requiresArg: true, describe: "Expert x264 settings with --codec x264, 'key=value:key=value' (not crf, bitrate, pass, stats, zones, aq-mode=0)" })
    .option('bitrate', { type: 'string', requiresArg: true, describe: 'Average video bitrate, two-pass: 1500k, 1.5M or 1500000 (bit/s)' })
    .option('target-size', { type: 'string', requiresArg: true, describe: 'Size of the whole output file, two-pass: 8MB, 500MiB (never above, at most 3% under)' })
    .option('maxrate', { type: 'string', requiresArg: true, describe: 'VBV peak rate (with --bufsize), capping --crf or --bitrate: 4M' })
    .option('bufsize', { type: 'string', requiresArg: true, describe: 'VBV buffer in bits, written like a rate: 8M' })
    .option('height', { type: 'number', requiresArg: true, describe: 'Output height in pixels, even, at most the source\'s: scaled down with lanczos, aspect kept (720 makes a 1080p source 720p)' })
    .option('width', { type: 'number', requiresArg: true, describe: 'Output width in pixels, as --height (the height follows, rounded to even)' })
    .option('audio', { type: 'string', requiresArg: true, defaultDescription: 'copy', describe: 'copy, aac:RATE or opus:RATE (e.g. aac:96k): encode the audio, counted exactly in --target-size' })
    .option('redis', { type: 'string', requiresArg: true, describe: 'Encode in chunks on `roi-encode worker` processes served by this Redis (redis://host:6379)' })
    .option('chunk-seconds', { type: 'number', requiresArg: true, defaultDescription: '30', describe: 'With --redis: target chunk length; chunks end at scene cuts where one is near' })
    .option('secret-file', { type: 'string', requiresArg: true, defaultDescription: 'ROI_ENCODER_SECRET, else ~/.config/roi-encoder/secret', describe: 'With --redis: the secret jobs are signed with (the workers need the same)' });

/** `roi-encode worker`. */
export const workerOptions = (y: Argv) =>
  y
    .option('redis', { type: 'string', requiresArg: true, defaultDescription: 'REDIS_URL', describe: 'Redis the submitters use, redis://host:6379' })
    .option('root', { type: 'string', requiresArg: true, defaultDescription: 'current directory', describe: 'Folder the jobs\' files must be in (repeatable); any path outside is refused' })
    .option('secret-file', { type: 'string', requiresArg: true, defaultDescription: 'ROI_ENCODER_SECRET, else ~/.config/roi-encoder/secret', describe: 'The secret submitters sign jobs with; unsigned jobs are refused' })
    .option('concurrency', { type: 'number', requiresArg: true, defaultDescription: '1', describe: 'Jobs at a time' })
    .option('threads', { type: 'number', requiresArg: true, defaultDescription: 'all cores', describe: 'x265 threads per job (pools=N)' })
    .option('json', { type: 'boolean', default: false, describe: 'One NDJSON event per job on stdout' })
    .option('ffmpeg', { type: 'string', describe: 'Path to ffmpeg (default: FFMPEG_PATH or PATH)' });

export const compareOptions = (y: Argv) =>
  y
    .option('crf', { type: 'string', requiresArg: true, defaultDescription: HELP_DEFAULTS.compareCrfs, describe: 'Comma-separated CRFs of the rate points' })
    .option('bitrates', { type: 'string', requiresArg: true, describe: 'Comma-separated video bitrates instead of CRFs (150k,300k,600k): every mode two-pass at each, so ROI and uniform pair at the same size' })
    .option('codec', { type: 'string', requiresArg: true, defaultDescription: 'x265', describe: 'x265 (HEVC) or x264 (H.264: the report then plays the pair)' })
    .option('baseline', { type: 'string', requiresArg: true, describe: 'x264 or x265: also encode uniform in the other encoder at the same rate points' })
    .option('plan', { type: 'string', describe: 'Use this plan (from analyze) instead of analysing' })
    .option('preset', { type: 'string', defaultDescription: HELP_DEFAULTS.preset, describe: presetHelp })
    .option('strength', { type: 'number', requiresArg: true, defaultDescription: String(HELP_DEFAULTS.strength), describe: 'Scales all QP offsets: 0 uniform, 1 as planned, 2 twice as strong' })
    .option('match-crf', { type: 'number', requiresArg: true, describe: 'Also encode with faces as good as uniform x265 at this CRF, smallest file (encode --match-crf), shown as a point' })
    .option('height', { type: 'number', requiresArg: true, describe: 'Encode every point at this height (as encode --height), measured against the source scaled the same way' })
    .option('width', { type: 'number', requiresArg: true, describe: 'The same by width' })
    .option('x265-params', { type: 'string', requiresArg: true, describe: "Expert x265 settings for every x265 encode, as encode takes them" })
    .option('x264-params', { type: 'string', requiresArg: true, describe: "Expert x264 settings for every x264 encode, as encode takes them" });

/** The analysis options every command takes, from parsed arguments (validated by the library). */
export function analysisArgs(argv: Record<string, unknown>) {
  return {
    roi: argv.roi as string | undefined,
    sampleFps: argv['sample-fps'] as number | undefined,
    minScore: argv['min-score'] as number | undefined,
    minFaceSize: argv['min-face'] as number | undefined,
    faceDetector: argv['face-detector'] as string | undefined,
    saliencyModel: argv['saliency-model'] as string | undefined,
    saliencyNormalization: argv['saliency-normalization'] as string | undefined,
    ffmpegPath: argv.ffmpeg as string | undefined,
  };
}
