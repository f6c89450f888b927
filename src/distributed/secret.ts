import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { RoiError } from '../media/errors.js';

/**
 * The secret submitters and workers share, which signs every job and every result (signing.ts).
 * Where it comes from, first found wins: `secretFile` (--secret-file), ROI_ENCODER_SECRET, the
 * default file ~/.config/roi-encoder/secret. The default file is made on first use (32 random bytes,
 * hex, mode 0600), so on one machine nothing needs setting up; across machines it is copied, as an
 * Erlang cookie is. The secret's value is never put in a message.
 */
export const SECRET_ENV = 'ROI_ENCODER_SECRET';
/** Shorter secrets are refused: 16 characters is about the least a guess cannot reach. */
export const MIN_SECRET_LENGTH = 16;

export interface SecretOptions {
  /** The secret itself (library use); takes precedence over everything else. */
  secret?: string;
  /** A file holding the secret (first line); it must not be readable by group or others. */
  secretFile?: string;
}

export function defaultSecretFile(): string {
  return join(homedir(), '.config', 'roi-encoder', 'secret');
}

function checked(value: string, where: string): Buffer {
  const text = value.trim();
  if (text.length < MIN_SECRET_LENGTH) {
    throw new RoiError('INVALID_SECRET', `the secret in ${where} is ${text.length} characters; use at least ${MIN_SECRET_LENGTH} (e.g. the output of: openssl rand -hex 32)`);
  }
  return Buffer.from(text, 'utf8');
}

/** Makes the default file if it is not there: written under a temporary name, then linked into place, so two first uses at once agree. */
async function createSecretFile(file: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(temp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await unlink(temp).catch(() => {});
  }
}

async function readSecretFile(file: string, create: boolean): Promise<Buffer> {
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new RoiError('INVALID_SECRET', `cannot read the secret file ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    if (!create) throw new RoiError('INVALID_SECRET', `the secret file ${file} does not exist (copy it from the machine whose secret the workers use)`);
    try {
      await createSecretFile(file);
    } catch (e) {
      throw new RoiError('INVALID_SECRET', `cannot create the secret file ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'}); set ${SECRET_ENV} or give --secret-file`);
    }
    info = await stat(file);
  }
  // As ssh does with private keys: a secret others can read is no secret.
  if ((info.mode & 0o077) !== 0) {
    throw new RoiError('INVALID_SECRET', `the secret file ${file} can be read by others (mode ${(info.mode & 0o777).toString(8)}); run: chmod 600 ${file}`);
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new RoiError('INVALID_SECRET', `cannot read the secret file ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return checked(text.split('\n')[0] ?? '', file);
}

/** The shared secret, as bytes. */
export async function loadSecret(options: SecretOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<Buffer> {
  if (options.secret !== undefined) {
    if (typeof options.secret !== 'string') throw new RoiError('INVALID_OPTION', 'Expected a string for secret', { option: 'secret' });
    return checked(options.secret, 'the secret option');
  }
  if (options.secretFile !== undefined) {
    if (typeof options.secretFile !== 'string' || options.secretFile.trim() === '') throw new RoiError('INVALID_OPTION', 'Expected a file path for secretFile', { option: 'secretFile' });
    return readSecretFile(options.secretFile, false);
  }
  const fromEnv = env[SECRET_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return checked(fromEnv, SECRET_ENV);
  return readSecretFile(defaultSecretFile(), true);
}
