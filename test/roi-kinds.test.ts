import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { analyze, compare, type Plan } from '../src/index.js';
import { GraphBuilder } from '../scripts/onnx-graph.js';
import { centre, cli, devComposite, fixture, SAMPLE, workDir } from './helpers.js';

const dir = workDir('roi-kinds');

const segmentAt = (plan: Plan, frame: number) => plan.segments.find((s) => s.startFrame <= frame && frame < s.endFrame)!;
const inside = (p: [number, number], b: { x: number; y: number; w: number; h: number }) => p[0] >= b.x && p[0] < b.x + b.w && p[1] >= b.y && p[1] < b.y + b.h;

describe('--roi faces,saliency', () => {
  it('keeps the face on top: face regions first with the lowest offset, then saliency, then background', async () => {
    const plan = await analyze(SAMPLE, { roi: 'faces,saliency' });
    assert.deepEqual(plan.settings.roi, ['faces', 'saliency']);
    let withSaliency = 0;
    for (const seg of plan.segments) {
      const kinds = seg.regions.map((r) => r.kind);
      const firstSaliency = kinds.indexOf('saliency');
      if (firstSaliency >= 0) withSaliency += seg.endFrame - seg.startFrame;
      assert.ok(firstSaliency < 0 || kinds.slice(firstSaliency).every((k) => k !== 'face'), `faces before saliency: ${kinds}`);
      assert.equal(kinds.at(-1), 'background');
      const faceQp = Math.min(...seg.regions.filter((r) => r.kind === 'face').map((r) => r.qpOffset));
      for (const r of seg.regions.filter((x) => x.kind === 'saliency')) {
        assert.ok(r.qpOffset > faceQp && r.qpOffset < seg.regions.at(-1)!.qpOffset, `saliency offset ${r.qpOffset} between face ${faceQp} and background`);
      }
    }
    assert.ok(withSaliency > 0.8 * plan.input.frameCount, `saliency regions on ${withSaliency} of ${plan.input.frameCount} frames`);
    // The face is still found where it is, with the core at the full face offset.
    const core = plan.segments[0]!.regions[0]!;
    assert.equal(core.kind, 'face');
    assert.ok(inside([205, 188], core));
  });
});

describe('--roi saliency on a clip with no people', () => {
  // An orange disc crossing a textured blue-grey background, 25 fps, 3 s: centre (40 + 80t, 120 + 40 sin(πt/1.5)).
  const at = (t: number): [number, number] => [40 + 80 * t, 120 + 40 * Math.sin((Math.PI * t) / 1.5)];
  const clip = fixture(dir, 'disc.mp4', (out) => {
    const inDisc = 'lte(hypot(X-(40+80*T),Y-(120+40*sin(PI*T/1.5))),18)';
    const ch = (disc: number, bg: number) => `if(${inDisc},${disc},${bg}+14*sin(X/5)*cos(Y/7))`;
    return ['-f', 'lavfi', '-i', `color=c=black:s=320x240:r=25:d=3,format=gbrp,geq=r='${ch(230, 90)}':g='${ch(80, 110)}':b='${ch(40, 130)}'`, '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-crf', '18', out];
  });

  it('follows the object frame by frame and never covers the frame', async () => {
    const plan = await analyze(clip, { roi: 'saliency' });
    assert.equal(plan.settings.detector, 'none');
    assert.equal(plan.keyframeMaxQpOffset, undefined, 'no keyframe cap without faces');
    assert.ok(plan.detections.every((d) => d.faces.length === 0));
    let covered = 0;
    for (let f = 0; f < plan.input.frameCount; f++) {
      const salient = segmentAt(plan, f).regions.filter((r) => r.kind === 'saliency');
      if (salient.some((r) => inside(at(f / 25), r))) covered++;
      const area = salient.reduce((s, r) => s + r.w * r.h, 0);
      assert.ok(area <= 0.35 * 320 * 240, `frame ${f}: saliency covers ${(area / (320 * 240)).toFixed(2)} of the frame`);
    }
    assert.ok(covered >= 0.9 * plan.input.frameCount, `disc inside a saliency region on ${covered} of ${plan.input.frameCount} frames`);
    const sampled = plan.detections.filter((d) => d.salient?.some((b) => Math.hypot(centre(b)[0] - at(d.time)[0], centre(b)[1] - at(d.time)[1]) < 20));
    assert.ok(sampled.length >= 0.8 * plan.detections.length, `salient box on the disc in ${sampled.length} of ${plan.detections.length} samples`);
  });

  it('compare measures the salient regions: same quality for fewer bits, no face claims', async () => {
    const out = join(dir, 'saliency-report');
    const report = await compare(clip, out, { roi: 'saliency', crfs: [24, 32] });
    for (const p of report.points) {
      assert.equal(p.facePsnr, null);
      assert.ok(p.salientPsnr !== null && p.salientPsnr > 25, `${p.file}: salient PSNR ${p.salientPsnr}`);
    }
    for (const crf of [24, 32]) {
      const u = report.points.find((p) => p.mode === 'uniform' && p.crf === crf)!;
      const r = report.points.find((p) => p.mode === 'roi' && p.crf === crf)!;
      assert.ok(r.bytes < u.bytes, `crf ${crf}: ROI ${r.bytes} B vs uniform ${u.bytes} B`);
      assert.ok(r.backgroundPsnr! < u.backgroundPsnr!, `crf ${crf}: the background pays`);
    }
    assert.equal(report.bdRate.facePsnr, null);
    // Salient regions keep the base QP while the background gets +4: the same salient quality for
    // fewer bits (a few percent on this cheap, smooth background).
    assert.ok(report.bdRate.salientPsnr! < 0, `salient BD-rate ${report.bdRate.salientPsnr}`);
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    assert.match(html, /No faces were found/);
    assert.match(html, /smaller at the same quality in the salient regions/);
    assert.match(html, /Salient region at 2×/);
    assert.doesNotMatch(html, /Face PSNR<|face quality \(PSNR\)/);
  });

  it('rejects a user model of the wrong shape, and a model without saliency in --roi, with one clear line', () => {
    const g = new GraphBuilder('nhwc');
    const x = g.input('input', [1, 64, 64, 3]);
    g.node('Identity', [g.node('ReduceMean', [x], { axes: { ints: [3] }, keepdims: { int: 1 } })], {}, 'map');
    g.output('map', [1, 64, 64, 1]);
    const model = join(dir, 'nhwc.onnx');
    writeFileSync(model, g.encode({ opset: 13 }));
    const bad = cli(['analyze', clip, '--roi', 'saliency', '--saliency-model', model]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^roi-encode: saliency model .*nhwc\.onnx: expected NCHW float input \[1,3,H,W\], got .*\[1,64,64,3\]\n$/);
    const unused = cli(['analyze', clip, '--roi', 'faces', '--saliency-model', model]);
    assert.equal(unused.code, 1);
    assert.match(unused.stderr, /^roi-encode: a saliency model was given but roi is 'faces'/);
  });
});

describe('--face-detector mediapipe-full', () => {
  it('finds all three dev-composite faces, the smallest included', async () => {
    const file = devComposite(dir);
    const plan = await analyze(file, { faceDetector: 'mediapipe-full', sampleFps: 1 });
    assert.equal(plan.settings.detector, 'mediapipe-full-verified');
    let smallest = 0;
    for (const d of plan.detections) {
      // The 120x90 picture at (700, 560) holds the smallest face, about 30 px wide.
      const hit = d.faces.find((f) => Math.hypot(centre(f)[0] - (700 + 120 * 0.515), centre(f)[1] - (560 + 90 * 0.625)) < 15);
      if (hit) smallest++;
      assert.ok(d.faces.length <= 3, `sample ${d.frame}: ${d.faces.length} faces`);
    }
    assert.ok(smallest >= plan.detections.length - 1, `smallest face in ${smallest} of ${plan.detections.length} samples`);
  });
});
