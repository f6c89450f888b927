import type { Readable } from 'node:stream';

/** Splits a byte stream into frames of `frameBytes` bytes, copying each into its own buffer. */
export async function* rawFrames(stdout: Readable, frameBytes: number): AsyncGenerator<Uint8Array> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of stdout as AsyncIterable<Buffer>) {
    pending.push(chunk);
    pendingBytes += chunk.length;
    while (pendingBytes >= frameBytes) {
      const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
      yield new Uint8Array(all.buffer.slice(all.byteOffset, all.byteOffset + frameBytes));
      const rest = all.subarray(frameBytes);
      pending = rest.length ? [rest] : [];
      pendingBytes = rest.length;
    }
  }
}
