import { open } from 'node:fs/promises';

/**
 * x265 and x264 write their version and their complete parameter string (every setting, defaults
 * included) into the stream as an SEI message. Read back from the file, they say exactly what made
 * it, whatever the command line asked for.
 */
export interface EncoderInfo {
  /** "x265 3.5+1-f0c1022b6" or "x264 core 164 r3095 baee400". */
  encoder: string;
  /** "cpuid=1111039 frame-threads=1 wpp …". */
  options: string;
}

/** The SEI sits in the first access unit; MP4s are written with faststart, so the header comes first. */
const SCAN_BYTES = 4 << 20;

/** Parses the encoder's SEI text; undefined when there is none. Pure, for tests. */
export function parseEncoderSei(text: string): EncoderInfo | undefined {
  const x265 = /x265 \(build \d+\) - ([^:\s]+):[^\0]*? - options: ([^\0]*)/.exec(text);
  if (x265) return { encoder: `x265 ${x265[1]}`, options: cleanOptions(x265[2]!) };
  const x264 = /x264 - core (\d+(?: r\d+ [0-9a-f]+)?) - [^\0]*? - options: ([^\0]*)/.exec(text);
  if (x264) return { encoder: `x264 core ${x264[1]}`, options: cleanOptions(x264[2]!) };
  return undefined;
}

/** The SEI string ends at a NUL byte or, in some muxers, runs into binary: keep the printable part. */
function cleanOptions(raw: string): string {
  const end = raw.search(/[^\x20-\x7e]/);
  return (end < 0 ? raw : raw.slice(0, end)).trim();
}

export async function readEncoderInfo(file: string): Promise<EncoderInfo | undefined> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(SCAN_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, SCAN_BYTES, 0);
    return parseEncoderSei(buffer.subarray(0, bytesRead).toString('latin1'));
  } finally {
    await handle.close();
  }
}
