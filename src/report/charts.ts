import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/**
 * Charts for the report, as Vega-Lite specs rendered headless to SVG strings (no canvas, no DOM), so
 * the page embeds them inline and needs no script to show them.
 */
export interface SeriesPoint {
  series: string;
  x: number;
  y: number;
}

const WIDTH = 360;
const HEIGHT = 240;
/** Mode colours, fixed so every chart (and the page's table) agrees. */
export const MODE_COLOURS: Record<string, string> = { uniform: '#7f7f7f', roi: '#d62728', x264: '#1f77b4', x265: '#2ca02c' };
// Not the modes' colours: a target's point must not look like a mode's curve.
const FALLBACK = ['#9467bd', '#8c564b', '#e377c2'];

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  // Vega's own warnings would land on the CLI's stderr; real failures still throw.
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none', logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Colours by series name: the colour of the longest key the name starts with. */
function colourScale(series: string[], colours: Record<string, string>) {
  const pick = (s: string, i: number) => {
    const key = Object.keys(colours).filter((k) => s.startsWith(k)).sort((a, b) => b.length - a.length)[0];
    return key ? colours[key]! : FALLBACK[i % FALLBACK.length]!;
  };
  return { domain: series, range: series.map(pick) };
}

/** Quality against bitrate, one line per series (mode), points marked. */
export function rateQualitySpec(title: string, yTitle: string, points: SeriesPoint[], colours: Record<string, string> = {}): TopLevelSpec {
  const finite = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const series = [...new Set(finite.map((p) => p.series))];
  return {
    title,
    width: WIDTH,
    height: HEIGHT,
    data: { values: finite },
    mark: { type: 'line', point: { filled: true, size: 50 }, strokeWidth: 2 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: 'bitrate (kbit/s)', scale: { type: 'log', nice: false } },
      y: { field: 'y', type: 'quantitative', title: yTitle, scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null, scale: colourScale(series, colours), legend: { orient: 'bottom-right', labelLimit: 240 } },
      order: { field: 'x', type: 'quantitative' },
    },
    config: { font: 'sans-serif', view: { stroke: '#ddd' } },
  };
}

/** A per-frame value over time, one line per series; long videos are thinned to `maxPoints`. */
export function overTimeSpec(title: string, yTitle: string, points: SeriesPoint[], colours: Record<string, string> = {}, maxPoints = 1500, xMax?: number): TopLevelSpec {
  const bySeries = new Map<string, SeriesPoint[]>();
  for (const p of points) if (Number.isFinite(p.y)) (bySeries.get(p.series) ?? bySeries.set(p.series, []).get(p.series)!).push(p);
  const values: SeriesPoint[] = [];
  for (const list of bySeries.values()) {
    // Thinning keeps each bucket's minimum: dips (quality pumping) are what the chart is for.
    const bucket = Math.ceil(list.length / maxPoints);
    for (let i = 0; i < list.length; i += bucket) {
      let low = list[i]!;
      for (let j = i + 1; j < Math.min(list.length, i + bucket); j++) if (list[j]!.y < low.y) low = list[j]!;
      values.push(low);
    }
  }
  const series = [...bySeries.keys()];
  return {
    title,
    width: 2 * WIDTH + 60,
    height: HEIGHT,
    data: { values },
    mark: { type: 'line', strokeWidth: 1.5, interpolate: 'linear' },
    encoding: {
      // The axis ends where the clip does (not at the next round number).
      x: { field: 'x', type: 'quantitative', title: 'time (s)', ...(xMax ? { scale: { domain: [0, xMax], nice: false } } : {}) },
      y: { field: 'y', type: 'quantitative', title: yTitle, scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null, scale: colourScale(series, colours), legend: { orient: 'bottom' } },
    },
    config: { font: 'sans-serif', view: { stroke: '#ddd' } },
  };
}
