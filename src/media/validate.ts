import { RoiError } from './errors.js';

/** Option validation in the style of sharp: "Expected number 0–51 for crf but received 'abc'". */

function show(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export function invalid(expected: string, name: string, value: unknown): RoiError {
  return new RoiError('INVALID_OPTION', `Expected ${expected} for ${name} but received ${show(value)}`, { option: name });
}

/** Two options that cannot be given together: "Expected crf or bitrate, not both (why): drop one". */
export function conflict(a: string, b: string, why: string): RoiError {
  return new RoiError('INVALID_OPTION', `Expected ${a} or ${b}, not both (${why}): drop one`, { option: a });
}

/** Accepts numbers and numeric strings (CLI values arrive as strings). */
function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  return undefined;
}

export function expectInteger(name: string, value: unknown, min: number, max: number): number {
  const n = toNumber(value);
  if (n === undefined || !Number.isInteger(n) || n < min || n > max) throw invalid(`integer ${min}–${max}`, name, value);
  return n;
}

export function expectNumber(name: string, value: unknown, min: number, max: number): number {
  const n = toNumber(value);
  if (n === undefined || !Number.isFinite(n) || n < min || n > max) throw invalid(`number ${min}–${max}`, name, value);
  return n;
}

export function expectOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalid(`one of ${allowed.join(', ')}`, name, value);
  }
  return value as T;
}

export function expectString(name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw invalid('non-empty string', name, value);
  return value;
}
