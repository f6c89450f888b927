import type { Box } from '../analysis/boxes.js';
import { HEATMAP_COLOURS, signedOffset, type LegendEntry } from './images.js';
import { MODE_COLOURS, overTimeSpec, rateQualitySpec, renderSvg, type SeriesPoint } from './charts.js';
import { matchingState } from './matching.js';
import { escapeHtml, modeNames, rateCell, rateText, sameSizeSentence } from './words.js';
import { pictureWords } from '../media/hdr.js';
import type { Report, ReportPoint } from './report-schema.js';

/**
 * index.html: one self-contained page (charts as inline SVG, pictures as data: URIs, no script, and
 * a Content-Security-Policy that forbids any network fetch), readable offline and mailable.
 */
export interface ReportImages {
  /** JPEG of the showcase frame with the plan drawn on it. */
  heatmap: Buffer;
  /** What its colours mean, for the regions that frame has. */
  legend: LegendEntry[];
  frame: number;
  /** PNG crops at 2× of the same frame from the source and the matched encodes. */
  crops: { title: string; box: Box; source: Buffer; uniform: Buffer; roi: Buffer }[];
  /** The matched pair's files, embedded as playable video (H.264 only: browsers do not play HEVC). */
  videos?: { uniform: Buffer; roi: Buffer };
}

const esc = escapeHtml;
const dataUri = (mime: string, buf: Buffer) => `data:${mime};base64,${buf.toString('base64')}`;
const fmt = (v: number | null, digits: number) => (v === null ? '–' : v.toFixed(digits));
const offset = (v: number | null) => (v === null ? '–' : signedOffset(v));
/** "38% smaller at the same face quality (PSNR)": a BD-rate in words. */
/**
 * One headline item, read after "ROI HEVC is": "38.0% smaller at the same face quality (PSNR) than
 * uniform HEVC". `bold` marks the number that matters most.
 */
export function bdSentence(bd: number | null, what: string, against: string, bold = false): string {
  if (bd === null) return `not comparable with ${against} on ${what}: the two curves share no quality range`;
  const pct = Math.abs(bd).toFixed(1);
  const claim = Math.abs(bd) < 0.05 ? `the same size at the same ${what}` : `${pct}% ${bd < 0 ? 'smaller' : 'larger'} at the same ${what}`;
  return `${bold ? `<strong>${esc(claim)}</strong>` : esc(claim)} than ${esc(against)}`;
}

/** One chart series per mode, from the grid encodes (the bitrate-matching and target ones are not curve points). */
function series(points: ReportPoint[], key: 'facePsnr' | 'facePsnrY' | 'psnr' | 'psnrY' | 'faceSsim' | 'backgroundPsnr' | 'salientPsnr', names: Record<string, string>): SeriesPoint[] {
  return points.filter((p) => !p.matching && !p.target).map((p) => ({ series: names[p.mode]!, x: p.bitrateKbps, y: p[key] ?? NaN }));
}

/**
 * compare's matchCrf encode on the face PSNR chart: its point, and a level line at the face PSNR it
 * aimed at (uniform at that CRF: measured when the grid has that CRF, else estimated on samples).
 */
function targetSeries(points: ReportPoint[]): SeriesPoint[] {
  const rates = points.map((p) => p.bitrateKbps);
  return points.flatMap((p) => {
    if (!p.target || p.facePsnr === null) return [];
    const { matchCrf } = p.target;
    const grid = points.find((q) => q.mode === 'uniform' && q.crf === matchCrf && !q.matching);
    const level = grid?.facePsnr ?? p.target.referenceFacePsnr;
    const line = `uniform CRF ${matchCrf}'s faces${grid ? '' : ' (estimated)'}`;
    return [
      { series: `--match-crf ${matchCrf} (ROI, CRF ${p.crf})`, x: p.bitrateKbps, y: p.facePsnr },
      ...(level === null ? [] : [{ series: line, x: Math.min(...rates), y: level }, { series: line, x: Math.max(...rates), y: level }]),
    ];
  });
}

/**
 * The matched pair as playable video, side by side (H.264 embedded as data: URIs, so the page stays
 * one file); for HEVC or a pair over the limit, a line that says why and links the files.
 */
function videoSection(report: Report, images: ReportImages, names: Record<string, string>, uniform: ReportPoint, roi: ReportPoint): string {
  const state = report.matched.video;
  const links = `<a href="${esc(uniform.file)}">${esc(uniform.file)}</a> and <a href="${esc(roi.file)}">${esc(roi.file)}</a>`;
  if (state === 'not web-playable') return `<p class="notes">Browsers do not play HEVC, so the pair is not embedded as video: ${links} open in a player that decodes HEVC (compare --codec x264 makes a report whose pair plays here).</p>`;
  if (state === 'too large' || !images.videos) return `<p class="notes">The pair is too large to embed in this page: ${links}.</p>`;
  const clip = (label: string, buf: Buffer) => `<div><video controls muted loop playsinline preload="auto" src="${dataUri('video/mp4', buf)}"></video><span>${esc(label)}</span></div>`;
  return `<h3>Playing, at the same size</h3>
<div class="row videos">${clip(`${names.uniform}, ${rateText(uniform)}, ${uniform.bitrateKbps.toFixed(0)} kbit/s`, images.videos.uniform)}${clip(`${names.roi}, ${rateText(roi)}, ${roi.bitrateKbps.toFixed(0)} kbit/s`, images.videos.roi)}</div>`;
}

/** The first ROI encode: what the meta line describes (every ROI encode shares its settings). */
const roiPoint = (report: Report) => report.points.find((p) => p.mode === 'roi') ?? report.points[0]!;
/** " (psy-rd=2:deblock=-1,-1)": the expert parameters as passed; '' for none. */
const paramsWords = (p: ReportPoint) => (Object.keys(p.encoderParams).length ? ` (${Object.entries(p.encoderParams).map(([k, v]) => `${k}=${v}`).join(':')})` : '');

/**
 * Each chart series' colour by its name. Only the modes this report has: 'uniform' (HEVC in an x265
 * report) and the x265 baseline (HEVC beside x264) share a name, and must not share a colour.
 */
export function seriesColours(report: Pick<Report, 'points' | 'settings'>): Record<string, string> {
  const names = modeNames(report.settings.codec);
  return Object.fromEntries(Object.entries(names).filter(([mode]) => report.points.some((p) => p.mode === mode)).map(([mode, label]) => [label, MODE_COLOURS[mode]!]));
}

export async function renderHtml(report: Report, images: ReportImages, name: string): Promise<string> {
  const { points, input } = report;
  const MODE_NAMES = modeNames(report.settings.codec);
  const SERIES_COLOURS = seriesColours(report);
  // Face (or salient) charts only when there is something to measure: empty axes explain nothing.
  const anyFace = points.some((p) => p.facePsnr !== null);
  const anySalient = points.some((p) => p.salientPsnr !== null);
  const charts = await Promise.all([
    ...(anyFace ? [
      renderSvg(rateQualitySpec('Face PSNR (YUV, pooled)', 'face PSNR (dB)', [...series(points, 'facePsnr', MODE_NAMES), ...targetSeries(points)], SERIES_COLOURS)),
      renderSvg(rateQualitySpec('Face Y-PSNR (luma, mean of frames)', 'face Y-PSNR (dB)', series(points, 'facePsnrY', MODE_NAMES), SERIES_COLOURS)),
      renderSvg(rateQualitySpec('Face SSIM (luma)', 'face SSIM (luma)', series(points, 'faceSsim', MODE_NAMES), SERIES_COLOURS)),
    ] : []),
    ...(anySalient ? [renderSvg(rateQualitySpec('Salient-region PSNR (YUV, pooled)', 'salient PSNR (dB)', series(points, 'salientPsnr', MODE_NAMES), SERIES_COLOURS))] : []),
    renderSvg(rateQualitySpec('Full-frame PSNR (YUV, pooled)', 'PSNR (dB)', series(points, 'psnr', MODE_NAMES), SERIES_COLOURS)),
    renderSvg(rateQualitySpec('Full-frame Y-PSNR (luma, mean of frames)', 'Y-PSNR (dB)', series(points, 'psnrY', MODE_NAMES), SERIES_COLOURS)),
    renderSvg(rateQualitySpec('Background PSNR (YUV, pooled)', 'background PSNR (dB)', series(points, 'backgroundPsnr', MODE_NAMES), SERIES_COLOURS)),
  ]);
  const uniform = points.find((p) => p.file === report.matched.uniform)!;
  const roi = points.find((p) => p.file === report.matched.roi)!;
  const overTime: SeriesPoint[] = [];
  for (const p of [uniform, roi]) {
    const values = report.perFrame.facePsnr[p.file] ?? [];
    values.forEach((v, i) => overTime.push({ series: `${MODE_NAMES[p.mode]} ${rateText(p)}`, x: report.perFrame.time[i] ?? i, y: v ?? NaN }));
  }
  const hasFaces = overTime.some((p) => Number.isFinite(p.y));
  const timeChart = hasFaces ? await renderSvg(overTimeSpec(`Face PSNR per frame, ${MODE_NAMES.uniform} ${uniform.bitrateKbps.toFixed(0)} kbit/s against ${MODE_NAMES.roi} ${roi.bitrateKbps.toFixed(0)} kbit/s`, 'face PSNR (dB)', overTime, SERIES_COLOURS, 1500, input.durationSeconds)) : '';

  const bd = report.bdRate;
  const hevc = MODE_NAMES.uniform!;
  const same = sameSizeSentence(report.sameSize, anyFace);
  const headline = same ? [`<li>${same}</li>`] : [];
  headline.push(...anyFace
    ? [
      `<li>${bdSentence(bd.facePsnr, 'face quality (PSNR)', hevc, true)}</li>`,
      `<li>${bdSentence(bd.facePsnrY, 'face quality (Y-PSNR)', hevc)}</li>`,
      `<li>${bdSentence(bd.faceSsim, 'face quality (SSIM)', hevc)}</li>`,
    ]
    : []);
  if (anySalient) headline.push(`<li>${bdSentence(bd.salientPsnr, 'quality in the salient regions (PSNR)', hevc, !anyFace && !same)}</li>`);
  const pays = bd.psnr !== null && bd.psnr > 0 && (anyFace || anySalient) ? `: the background pays for the ${anyFace ? 'faces' : 'salient regions'}` : '';
  headline.push(`<li>${bdSentence(bd.psnr, 'full-frame PSNR', hevc)}${pays}</li>`);
  headline.push(`<li>${bdSentence(bd.psnrY, 'full-frame Y-PSNR', hevc)}</li>`);
  if (report.bdRateVsBaseline && report.settings.baseline) {
    const x = report.bdRateVsBaseline;
    const against = `${MODE_NAMES[report.settings.baseline]} (${report.settings.baseline})`;
    headline.push(`<li>${anyFace ? bdSentence(x.facePsnr, 'face quality (PSNR)', against) : bdSentence(x.psnr, 'full-frame PSNR', against)}</li>`);
  }
  const noFaces = anyFace ? '' : '<p class="headline">No faces were found in the analysed frames, so there is no face quality to compare.</p>';

  const rows = points.map((p) => `<tr class="${p.mode}"><td>${MODE_NAMES[p.mode]}${p.matching ? (matchingState(p, points) === 'matched' ? ' (bitrate matched)' : ' (closest try at matching bitrate)') : ''}${p.target ? ` (faces as good as uniform CRF ${p.target.matchCrf}${p.target.met ? '' : ': target missed'})` : ''}</td><td>${rateCell(p)}</td><td>${(p.bytes / 1024).toFixed(1)}</td><td>${p.bitrateKbps.toFixed(1)}</td><td>${fmt(p.facePsnr, 2)}</td><td>${fmt(p.facePsnrY, 2)}</td><td>${fmt(p.facePsnrP5, 2)}</td><td>${fmt(p.faceSsim, 4)}</td><td>${fmt(p.psnr, 2)}</td><td>${fmt(p.psnrY, 2)}</td><td>${fmt(p.ssim, 4)}</td><td>${fmt(p.backgroundPsnr, 2)}</td>${anySalient ? `<td>${fmt(p.salientPsnr, 2)}</td>` : ''}<td>${p.encodeSeconds.toFixed(1)}</td><td><a href="${esc(p.file)}">${esc(p.file)}</a></td></tr>`);
  const crops = images.crops.map((c) => `
    <figure class="crops"><figcaption>${esc(c.title)} at 2× (frame ${images.frame}, ${c.box.w}×${c.box.h} px at ${c.box.x},${c.box.y})</figcaption>
      <div class="row">
        <div><img alt="source" src="${dataUri('image/png', c.source)}"><span>source</span></div>
        <div><img alt="uniform" src="${dataUri('image/png', c.uniform)}"><span>${MODE_NAMES.uniform}, ${rateText(uniform)}, ${uniform.bitrateKbps.toFixed(0)} kbit/s</span></div>
        <div><img alt="ROI" src="${dataUri('image/png', c.roi)}"><span>${MODE_NAMES.roi}, ${rateText(roi)}, ${roi.bitrateKbps.toFixed(0)} kbit/s</span></div>
      </div></figure>`);

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; media-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>roi-encoder report: ${esc(name)}</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1.5em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
.meta{color:#666} .headline{font-size:1.1em} .charts{display:flex;flex-wrap:wrap;gap:1em}
table{border-collapse:collapse;font-size:.85em} td,th{padding:.25em .5em;border-bottom:1px solid #eee;text-align:right} th{white-space:nowrap;vertical-align:bottom} th small{display:block;font-weight:normal;color:#666}
code{font-size:.85em;word-break:break-all} details table td{text-align:left;vertical-align:top} td:first-child,th:first-child,td:last-child{text-align:left}
tr.roi td:first-child{color:${MODE_COLOURS.roi};font-weight:600} tr.x264 td:first-child{color:${MODE_COLOURS.x264}} tr.x265 td:first-child{color:${MODE_COLOURS.x265}}
video{max-width:100%;border:1px solid #ccc}
.row{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start} .row div{display:flex;flex-direction:column;font-size:.85em;color:#444}
.crops img{image-rendering:pixelated;border:1px solid #ccc} figure{margin:1em 0}
.swatch{display:inline-block;width:1em;height:1em;vertical-align:middle;margin:0 .3em 0 1em;border:1px solid #999}
.notes{font-size:.9em;color:#444}
</style></head><body>
<h1>ROI against uniform: ${esc(name)}</h1>
<p class="meta">${input.width}×${input.height}${report.settings.output ? ` encoded at ${report.settings.output.width}×${report.settings.output.height} (measured against the source scaled to it)` : ''}${input.rotation ? ` (rotated ${input.rotation}°)` : ''}, ${input.frameCount} frames, ${input.durationSeconds.toFixed(2)} s at ${input.frameRate.toFixed(3)} fps · ${report.settings.codec}${esc(paramsWords(roiPoint(report)))}${esc(pictureWords(roiPoint(report).picture))} preset ${esc(report.settings.preset)}, ${report.settings.bitratesKbps.length ? `two-pass at ${report.settings.bitratesKbps.join(', ')} kbit/s` : `CRF ${report.settings.crfs.join(', ')}`}${report.settings.baseline ? `, baseline ${report.settings.baseline}` : ''} · QP offsets: face ${offset(report.settings.faceQpOffset)}${report.settings.saliencyQpOffset !== null ? `, salient ${offset(report.settings.saliencyQpOffset)}` : ''}, background ${offset(report.settings.backgroundQpOffset)}${report.settings.keyframeMaxQpOffset != null ? ` (keyframes at most ${offset(report.settings.keyframeMaxQpOffset)})` : ''}, strength ${report.settings.strength} · roi-encoder ${esc(report.generator.version)}, ffmpeg ${esc(report.tools.ffmpeg)}${report.tools.x265 ? `, ${esc(report.tools.x265)}` : ''}${report.tools.x264 ? `, ${esc(report.tools.x264)}` : ''} · ${esc(report.createdAt)}</p>
${noFaces}
<h2>In short</h2>
<ul class="headline">${headline.join('\n')}</ul>
<p class="notes">${same ? 'The first line compares ROI and uniform encodes of about the same size (ROI minus uniform; the rest of the frame is everything outside the faces, salient regions and their margins). ' : ''}The others are Bjøntegaard delta rates (BD-rate) of ${esc(MODE_NAMES.roi!)} over the encodes below: how much smaller or larger it is at the same quality. The analysis looked at ${report.analysis.samples} sampled frames and found ${report.analysis.faceDetections} faces in them${report.analysis.given ? ' by an earlier analysis' : ` in ${report.analysis.seconds.toFixed(1)} s`}; the plan has ${report.analysis.segments} segments (<a href="${esc(report.analysis.plan)}">plan.json</a>).</p>

<h2>Rate and quality</h2>
<div class="charts">${charts.map((svg) => `<div class="chart">${svg}</div>`).join('\n')}</div>

<h2>Encodes</h2>
<table><thead><tr><th>mode</th><th>CRF</th><th>file<small>KiB</small></th><th>video<small>kbit/s</small></th><th>face PSNR<small>YUV</small></th><th>face<small>Y-PSNR</small></th><th title="face PSNR of the frame at the 5th percentile: 95% of frames are better">face PSNR<small>5th pct frame</small></th><th>face SSIM<small>luma</small></th><th>PSNR<small>YUV</small></th><th>Y-PSNR<small>luma</small></th><th>SSIM<small>ffmpeg All</small></th><th>background<small>PSNR YUV</small></th>${anySalient ? '<th>salient<small>PSNR YUV</small></th>' : ''}<th>encode<small>seconds</small></th><th>file</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>
<p class="notes">"video kbit/s" is the video stream's packets over the clip's duration (what the charts and BD-rates use); "file KiB" includes the container. PSNR "YUV" pools the squared error of all frames and all three planes (ffmpeg's "average"); Y-PSNR is the mean over frames of each frame's luma PSNR, as codec papers report it. Face SSIM is luma SSIM; the full-frame SSIM is ffmpeg's "All" (Y, U and V weighted by size).</p>

<h2>Side by side, at matched bitrate</h2>
<p class="notes">The same frame from a uniform encode and an ROI encode of about the same size: ${roi.matching ? `ROI at CRF ${roi.crf}, a CRF searched to spend what uniform CRF ${uniform.crf} spends` : roi.targetBitrateKbps !== null ? `both two-pass at ${roi.targetBitrateKbps} kbit/s` : 'the ROI encode closest in bitrate'} (${(100 * roi.bitrateKbps / uniform.bitrateKbps).toFixed(1)}% of its bits). Enlarged 2× without smoothing.</p>
${crops.join('\n') || '<p>No crops: the frame could not be cut.</p>'}
${videoSection(report, images, MODE_NAMES, uniform, roi)}

<h2>Where the bits go</h2>
<p class="notes">Frame ${images.frame} with the plan drawn on it (offsets as applied, --strength included):${images.legend.map((e) => `<span class="swatch" style="background:${e.colour}"></span>${esc(e.label)}`).join('')}<span class="swatch" style="border-color:${HEATMAP_COLOURS.face};border-width:2px"></span>detected face</p>
<img alt="importance heatmap" style="max-width:100%" src="${dataUri('image/jpeg', images.heatmap)}">

<h2>Face quality over time</h2>
${hasFaces ? `<div class="chart">${timeChart}</div><p class="notes">Dips show frames where the face lost quality (fast motion, scene changes, keyframe cycles). Long videos are thinned to each interval's lowest value, so no dip is hidden.</p>` : '<p>No faces were found, so there is no face quality to follow.</p>'}

<h2>How this was measured</h2>
<div class="notes"><ul>
<li>ROI and uniform encodes use identical ${report.settings.codec} settings (preset, ${report.settings.bitratesKbps.length ? 'two-pass average bitrate, the same filter graph in both passes' : 'CRF'}, ${report.settings.codec === 'x265' ? 'aq-mode 2' : 'aq-mode 1'}) except the ROI offsets${report.settings.baseline ? `; the ${report.settings.baseline} baseline is uniform at the same rate points` : ''}. Each encode's full settings are listed at the end.</li>
<li>PSNR and SSIM (full frame) are ffmpeg's psnr and ssim filters on YUV 4:2:0 ("average" and "All"). Face and background values are computed over the same decoded frames by roi-encoder: PSNR of the pooled squared error inside the face boxes of the analysed frames, moved along their tracks between them (a moving face is measured where it is), inside the salient boxes (with saliency analysis, the same way; faces excepted), or outside every face and salient region (the feathered margins count as neither); SSIM on luma, 8×8 windows at 4-pixel steps as ffmpeg's filter, credited to a class only when the window lies wholly inside it. "5th pct frame" is the face PSNR of the frame at the 5th percentile (95% of frames with a face are better): where dips from fast motion or cuts show. A dash means not measurable (no face) or infinite (identical frames).</li>
<li>Bitrate is the size of the video stream's packets (as ffprobe lists them) over the clip's duration: the container's overhead (a few kilobytes per file, a large share of the smallest encodes) is not counted. The table shows the file size beside it.</li>
<li>Y-PSNR is luma PSNR computed per frame and averaged over the frames (inside the face boxes: over the frames that have a face), the convention of codec papers and of x265's own log; the other PSNR figures pool the squared error over all frames and the three planes.</li>
<li>BD-rate (Bjøntegaard, VCEG-M33): each curve's log10(bitrate) is fitted with a cubic polynomial in quality, both fits are integrated over the quality range the curves share, and the mean difference d is shown as (10^d − 1) × 100%. Negative means ROI needs fewer bits for the same quality.</li>
</ul></div>
<details><summary>Encoder settings and command lines (to reproduce the encodes)</summary>
<table><thead><tr><th>file</th><th>encoder and its settings (from the stream)</th><th>ffmpeg command</th></tr></thead><tbody>
${points.map((p) => `<tr><td>${esc(p.file)}</td><td>${esc(p.encoder ?? '–')}<br><code>${esc(p.encoderOptions ?? '')}</code></td><td><code>${esc(p.command ?? '–')}</code></td></tr>`).join('\n')}
</tbody></table></details>
</body></html>
`;
}
