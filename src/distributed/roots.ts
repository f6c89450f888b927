import { lstat, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, parse, resolve, sep } from 'node:path';
import { RoiError } from '../media/errors.js';

/**
 * The folders a worker reads and writes in (`--root`, repeatable). Every path a job names is checked
 * here after symlinks are resolved, so a link under a root that points outside it is outside too.
 * Without --root a worker serves its current directory, as a file server started in a folder serves
 * that folder; started in `/` (a service without a working directory) it refuses to start, since that
 * would contain nothing.
 */
export async function resolveRoots(roots: readonly string[] | undefined, cwd = process.cwd()): Promise<string[]> {
  const given = roots && roots.length ? roots : [cwd];
  const out: string[] = [];
  for (const r of given) {
    if (typeof r !== 'string' || r.trim() === '') throw new RoiError('INVALID_OPTION', `Expected a folder for root but received '${String(r)}'`, { option: 'root' });
    let real: string;
    try {
      real = await realpath(resolve(r));
      if (!(await stat(real)).isDirectory()) throw new Error('not a folder');
    } catch {
      throw new RoiError('INVALID_OPTION', `--root ${r} is not a folder this worker can see`, { option: 'root' });
    }
    if (real === parse(real).root) {
      throw new RoiError('INVALID_OPTION', roots && roots.length ? `--root ${r} is the whole filesystem; give the shared folder jobs use, e.g. --root /shared` : `the worker was started in ${real}, the whole filesystem; give the shared folder jobs use with --root, e.g. --root /shared`, { option: 'root' });
    }
    out.push(real);
  }
  return [...new Set(out)];
}

function inside(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** The path with every symlink resolved; for a file not yet written, its folder's real path plus its name. */
async function realTarget(path: string): Promise<string> {
  try {
    await lstat(path);
    return await realpath(path);
  } catch {
    // Not there yet (an output): where it would be written.
    try {
      return join(await realpath(dirname(path)), basename(path));
    } catch {
      return path;
    }
  }
}

/** Throws unless `path` lies under one of `roots` (real paths from resolveRoots). */
export async function expectUnderRoots(path: string, roots: readonly string[], what: string): Promise<void> {
  const real = await realTarget(path);
  if (roots.some((r) => inside(real, r))) return;
  const via = real !== path ? ` (${real})` : '';
  throw new RoiError('PATH_OUTSIDE_ROOT', `refused: ${what} ${path}${via} is outside this worker's folders (${roots.join(', ')}); start the worker with --root for the folder jobs use`);
}
