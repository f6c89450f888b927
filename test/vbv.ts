import { execFileSync } from 'node:child_process';

/**
 * The decoder's buffer (the VBV / HRD model x265 encodes to), run over a file's video packets: it
 * fills at `maxrate` bit/s up to `bufsize` bits, starts `initial` full (x265's vbv-init, 0.9), and
 * each packet's bits leave it at the packet's decode time. Returns the lowest fullness seen, as a
 * share of bufsize, just after a packet left: below 0 the decoder would have starved (underflow).
 */
export function vbvLowest(file: string, maxrate: number, bufsize: number, initial = 0.9): { lowest: number; packets: number } {
  const out = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=dts_time,size', '-of', 'csv=p=0', file], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const packets = out.trim().split('\n').map((line) => {
    const [dts, size] = line.split(',').map(Number);
    return { dts: dts!, bits: size! * 8 };
  });
  let fullness = initial * bufsize;
  let lowest = Infinity;
  let last = packets[0]!.dts;
  for (const p of packets) {
    fullness = Math.min(bufsize, fullness + (p.dts - last) * maxrate);
    last = p.dts;
    fullness -= p.bits;
    lowest = Math.min(lowest, fullness / bufsize);
  }
  return { lowest, packets: packets.length };
}
