#!/usr/bin/env node
// npm run demo: the main job on the bundled sample. Finds the face, encodes ROI and uniform HEVC at
// four CRFs, measures them side by side, and writes the comparison report.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { compare } from '../dist/index.js';
import { summaryTable } from '../dist/cli/summary.js';

const input = 'samples/talking-head.mp4';
const outDir = join('demo-output', 'report');
mkdirSync('demo-output', { recursive: true });
let last = '';
const report = await compare(input, outDir, {
  force: true,
  onProgress: (e) => {
    const line = `${e.stage}${e.label ? ` ${e.label}` : ''}`;
    if (line !== last && process.stderr.isTTY) process.stderr.write(`\r${line.padEnd(60)}`);
    last = line;
  },
}).catch((error) => {
  // One line, as the CLI does: a failed demo should say why, not dump a stack.
  process.stderr.write(`\ndemo: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
if (process.stderr.isTTY) process.stderr.write(`\r${' '.repeat(60)}\r`);
process.stdout.write(summaryTable(report));
console.log(`\nReport: ${join(outDir, 'index.html')}  (data: ${join(outDir, 'report.json')}, encodes: ${join(outDir, 'encodes')}/)`);
