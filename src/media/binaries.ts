import { dirname, join } from 'node:path';
import { RoiError } from './errors.js';
import { run } from './process.js';

/** Where ffmpeg and ffprobe are: an explicit option, then FFMPEG_PATH / FFPROBE_PATH, then PATH. */
export interface BinaryOptions {
  ffmpegPath?: string;
  ffprobePath?: string;
}

export interface Binaries {
  ffmpeg: string;
  ffprobe: string;
}

const INSTALL_HINT = 'install ffmpeg 5.1 or newer with libx265 (Debian: apt-get install -y ffmpeg) or point FFMPEG_PATH at one';

export function resolveBinaries(options: BinaryOptions = {}): Binaries {
  const ffmpeg = options.ffmpegPath ?? process.env.FFMPEG_PATH ?? 'ffmpeg';
  // An explicit ffmpeg path usually has its ffprobe beside it.
  const siblingProbe = ffmpeg.includes('/') ? join(dirname(ffmpeg), 'ffprobe') : 'ffprobe';
  const ffprobe = options.ffprobePath ?? process.env.FFPROBE_PATH ?? siblingProbe;
  return { ffmpeg, ffprobe };
}

export interface FfmpegCapabilities {
  version: string;
  major: number;
  libx265: boolean;
  libx264: boolean;
}

const checked = new Map<string, Promise<FfmpegCapabilities>>();

/** Checks (once per path) that ffmpeg runs, is 5.1+, and has the encoders we need. */
export function ffmpegCapabilities(ffmpeg: string): Promise<FfmpegCapabilities> {
  let cached = checked.get(ffmpeg);
  if (!cached) {
    cached = probeCapabilities(ffmpeg);
    checked.set(ffmpeg, cached);
    cached.catch(() => checked.delete(ffmpeg));
  }
  return cached;
}

async function probeCapabilities(ffmpeg: string): Promise<FfmpegCapabilities> {
  let versionText: string;
  let encoders: string;
  try {
    versionText = (await run(ffmpeg, ['-hide_banner', '-version'])).stdout;
    encoders = (await run(ffmpeg, ['-hide_banner', '-encoders'])).stdout;
  } catch (error) {
    if (error instanceof RoiError && error.code === 'BINARY_NOT_FOUND') {
      throw new RoiError('FFMPEG_MISSING', `ffmpeg was not found at '${ffmpeg}': ${INSTALL_HINT}`);
    }
    throw error;
  }
  const version = /ffmpeg version (\S+)/.exec(versionText)?.[1] ?? 'unknown';
  const major = Number(/^n?(\d+)\./.exec(version)?.[1] ?? NaN);
  const caps = {
    version,
    major,
    libx265: /\blibx265\b/.test(encoders),
    libx264: /\blibx264\b/.test(encoders),
  };
  // Git builds report versions like N-112345-g…; accept them, reject known-old releases.
  if (Number.isFinite(major) && major < 5) {
    throw new RoiError('FFMPEG_TOO_OLD', `ffmpeg ${version} is too old: ${INSTALL_HINT}`);
  }
  return caps;
}

export async function requireEncoder(ffmpeg: string, encoder: 'libx265' | 'libx264'): Promise<void> {
  const caps = await ffmpegCapabilities(ffmpeg);
  if (!caps[encoder]) {
    throw new RoiError('ENCODER_MISSING', `ffmpeg ${caps.version} at '${ffmpeg}' has no ${encoder}: ${INSTALL_HINT}`);
  }
}
