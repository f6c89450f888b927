import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The talking head's first 10 s (250 frames), which the demo encodes. */
export const SAMPLE = join(ROOT, 'samples', 'talking-head.mp4');
/** The whole 30.6 s talking-head clip the sample was cut from. */
export const HEAD_FULL = join(ROOT, 'samples', 'talking-head-full.mp4');
/** NASA's astronaut portrait (public domain), 512x512. */
export const ASTRONAUT = join(ROOT, 'samples', 'astronaut.png');
/** A 751x563 street photo without people, from Debian's opencv-doc (scripts/test-media.sh fetches it). */
export const STREET = join(ROOT, 'test-media', 'street.jpg');
export const CLI = join(ROOT, 'src', 'cli.ts');

/** A fresh directory under test-output/ for one test file's fixtures and outputs. */
export function workDir(name: string): string {
  const base = join(ROOT, 'test-output');
  mkdirSync(base, { recursive: true });
  return mkdtempSync(join(base, `${name}-`));
}

export function ffmpeg(args: string[]): void {
  execFileSync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Builds a fixture once per directory; returns its path. */
export function fixture(dir: string, name: string, args: (out: string) => string[]): string {
  const out = join(dir, name);
  if (!existsSync(out)) ffmpeg(args(out));
  return out;
}

export function devComposite(dir: string): string {
  const out = join(dir, 'dev-composite.mkv');
  if (!existsSync(out)) execFileSync('bash', [join(ROOT, 'test', 'fixtures', 'make-dev-composite.sh'), out], { stdio: 'ignore' });
  return out;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI from source (through tsx) as a user would. */
export function cli(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): CliResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: options.cwd ?? ROOT, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0', ...options.env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function ffprobeJson(file: string, args: string[]): Record<string, unknown> {
  return JSON.parse(execFileSync('ffprobe', ['-v', 'error', ...args, '-of', 'json', file], { encoding: 'utf8' })) as Record<string, unknown>;
}

/** Decoded frame count and presentation times (seconds) of the first video stream. */
export function frameTimes(file: string): number[] {
  const out = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts_time,best_effort_timestamp_time', '-of', 'json', file], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const frames = (JSON.parse(out) as { frames: { pts_time?: string; best_effort_timestamp_time?: string }[] }).frames;
  return frames.map((f) => Number(f.pts_time ?? f.best_effort_timestamp_time));
}

export function centre(b: { x: number; y: number; w: number; h: number }): [number, number] {
  return [b.x + b.w / 2, b.y + b.h / 2];
}

/**
 * ffmpeg arguments for a clip whose video starts 0.523 s after its first audio track, with frames
 * off the 1/25 s grid (VFR jitter) and a second (FLAC) audio track starting at 0.25 s.
 */
export function offsetClipArgs(seconds: number, out: string): string[] {
  return [
    '-f', 'lavfi', '-i', `testsrc2=size=320x240:rate=25:duration=${seconds}`,
    '-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds + 1}`,
    '-f', 'lavfi', '-i', `sine=frequency=660:duration=${seconds}`,
    '-filter_complex', "[0:v]settb=1/1000,setpts='(N*40+mod(N,3)*7)/1000/TB+0.523/TB'[v];[2:a]adelay=250:all=1[a2]",
    '-map', '[v]', '-map', '1:a', '-map', '[a2]', '-enc_time_base:v', '1:1000', '-fps_mode', 'passthrough',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a:0', 'aac', '-c:a:1', 'flac', out,
  ];
}

/**
 * What a report page does wrong while a test looks at it: console errors and page errors, and every
 * request that leaves the machine (anything but file: and data:). Both lists must stay empty.
 */
export function watchPage(page: { on(event: 'console', f: (m: { type(): string; text(): string }) => void): unknown; on(event: 'pageerror', f: (e: Error) => void): unknown; on(event: 'request', f: (r: { url(): string }) => void): unknown }): { errors: string[]; requests: string[] } {
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => {
    if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url());
  });
  return { errors, requests };
}
