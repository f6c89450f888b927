import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { RoiError } from './errors.js';

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
  if (existing && !check.force) throw new RoiError('OUTPUT_EXISTS', `${what} ${output} already exists; use force: true to overwrite it`, { option: 'force' });
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

/**
 * Checks an output directory before work starts. A missing directory is fine (its parent must
 * exist). An existing one is replaced only with `force`, and only if it is empty or holds `marker`
 * (a file we write), so --force never deletes a directory that is not ours; it must not contain any
 * of the inputs either.
 */
export async function checkOutputDir(dir: string, check: OutputCheck & { marker: string }): Promise<void> {
  const what = check.what ?? 'output directory';
  const parent = dirname(resolve(dir));
  if (!(await stat(parent).catch(() => undefined))?.isDirectory()) throw new RoiError('OUTPUT_DIR_MISSING', `parent of ${what} ${dir} does not exist: ${parent}`);
  const target = canonical(dir);
  for (const input of check.inputs ?? []) {
    const abs = canonical(input);
    if (abs === target || abs.startsWith(`${target}/`)) throw new RoiError('OUTPUT_IS_INPUT', `${what} ${dir} contains the input ${input}; choose another directory`);
  }
  const existing = await stat(dir).catch(() => undefined);
  if (!existing) return;
  if (!existing.isDirectory()) throw new RoiError('OUTPUT_NOT_DIR', `${what} ${dir} exists and is not a directory`);
  const entries = await readdir(dir);
  if (entries.length === 0) return;
  if (!check.force) throw new RoiError('OUTPUT_EXISTS', `${what} ${dir} already exists and is not empty; use force: true to replace it`, { option: 'force' });
  if (!entries.includes(check.marker)) throw new RoiError('OUTPUT_NOT_OURS', `${what} ${dir} has files but no ${check.marker}; refusing to replace a directory roi-encoder did not write`);
}

/**
 * Builds a directory under a temporary name beside `dir`, then swaps it into place (replacing an old
 * one checked by checkOutputDir); on failure or abort the temporary directory is removed and any
 * old directory is left as it was.
 */
export async function writeDirAtomically<T>(dir: string, write: (tempDir: string) => Promise<T>): Promise<T> {
  const abs = resolve(dir);
  const temp = join(dirname(abs), `.${basename(abs)}.${randomBytes(4).toString('hex')}.partial`);
  await mkdir(temp);
  try {
    const result = await write(temp);
    const old = (await stat(abs).catch(() => undefined)) ? `${temp}.old` : undefined;
    if (old) await rename(abs, old);
    await rename(temp, abs);
    if (old) await rm(old, { recursive: true, force: true });
    return result;
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
}
