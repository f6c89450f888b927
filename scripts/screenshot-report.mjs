#!/usr/bin/env node
// Makes docs/report.png, the README's picture: the top of the report `npm run demo` writes
// (demo-output/report/index.html), rendered by Debian's Chromium through playwright-core (no browser
// download). Run `npm run demo` first, then `node scripts/screenshot-report.mjs [report.html] [out.png]`.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const page = resolve(process.argv[2] ?? 'demo-output/report/index.html');
const out = resolve(process.argv[3] ?? 'docs/report.png');
if (!existsSync(page)) {
  console.error(`screenshot-report: ${page} does not exist; run \`npm run demo\` first`);
  process.exit(1);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  // Headless and offline: no GPU, no sandbox (CI runs as root), none of Chromium's background fetches.
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const tab = await browser.newPage({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: 1 });
  await tab.goto(pathToFileURL(page).href, { waitUntil: 'load' });
  // The charts are drawn by script after load; wait until they have their SVG.
  await tab.waitForFunction("document.querySelectorAll('svg').length > 0", undefined, { timeout: 20000 }).catch(() => {});
  await tab.screenshot({ path: out, clip: { x: 0, y: 0, width: 1200, height: 900 } });
  console.log(out);
} finally {
  await browser.close();
}
