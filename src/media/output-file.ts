import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { RoiError } from '../errors.js';

/**
 * Safe output files: checked before any work starts (directory exists, not the input, no silent
 * overwrite), written under a temporary name in the same directory, renamed into place only on
 * success, and removed on failure or abort.
 */
export interface OutputCheck {
  force?: boolean;
  /** Paths the output must not be (the inputs). */
  inputs?: string[];
  what?: string;
}

function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

export async function checkOutputPath(output: string, check: OutputCheck = {}): Promise<void> {
  const what = check.what ?? 'output';
  const dir = dirname(resolve(output));
  const dirInfo = await stat(dir).catch(() => undefined);
  if (!dirInfo?.isDirectory()) throw new RoiError('OUTPUT_DIR_MISSING', `${what} directory does not exist: ${dir}`);
  const target = canonical(output);
  for (const input of check.inputs ?? []) {
    if (canonical(input) === target) throw new RoiError('OUTPUT_IS_INPUT', `${what} ${output} is the input file; choose another name`);
  }
  const existing = await stat(output).catch(() => undefined);
  if (existing?.isDirectory()) throw new RoiError('OUTPUT_IS_DIR', `${what} ${output} is a directory`);
  if (existing && !check.force) throw new RoiError('OUTPUT_EXISTS', `${what} ${output} already exists; use --force (force: true) to overwrite it`);
}

/** A temporary path beside `output`, with the same extension so ffmpeg picks the same muxer. */
export function tempPathFor(output: string): string {
  const ext = extname(output);
  return join(dirname(resolve(output)), `.${basename(output, ext)}.${randomBytes(4).toString('hex')}.partial${ext}`);
}

/** Runs `write(tempPath)`, then renames the result onto `output`; cleans up on any failure. */
export async function writeAtomically<T>(output: string, write: (tempPath: string) => Promise<T>): Promise<T> {
  const temp = tempPathFor(output);
  try {
    const result = await write(temp);
    await rename(temp, output);
    return result;
  } catch (error) {
    // Aborts (Ctrl-C in the CLI) arrive here too: the runner has killed ffmpeg by now.
    await rm(temp, { force: true });
    throw error;
  }
}

/** A private scratch directory for filter scripts and the like, removed when `use` settles. */
export async function withScratchDir<T>(use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'roi-encoder-'));
  try {
    return await use(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
