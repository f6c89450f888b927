// package.json denies every dependency's install script (allowScripts), so nothing is built or
// downloaded at install time. This checks that each native dependency still loads the CPU build it
// ships (or its prebuilt platform package provides) and does real work with it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from './helpers.js';

describe('native dependencies load their CPU builds', () => {
  it('onnxruntime-node runs the BlazeFace model on the CPU', async () => {
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(join(ROOT, 'models', 'face_detection_front_128x128_barracuda.onnx'), { executionProviders: ['cpu'] });
    // Every input, at its declared size (dynamic dimensions, which come back as names, at 1).
    const feeds = Object.fromEntries(session.inputNames.map((name, i) => {
      const meta = session.inputMetadata[i]!;
      const shape = 'shape' in meta ? meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1)) : [1];
      return [name, new ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5), shape)];
    }));
    const out = await session.run(feeds);
    const outputs = Object.values(out);
    assert.ok(outputs.length > 0 && outputs.every((t) => t.size > 0), 'the model produced no output');
    assert.ok(outputs.every((t) => [...(t.data as Float32Array)].every(Number.isFinite)), 'the output holds non-finite values');
    await session.release();
  });

  it('sharp decodes and resizes a PNG with libvips', async () => {
    const sharp = (await import('sharp')).default;
    const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toBuffer();
    const { data, info } = await sharp(png).resize(20, 15).raw().toBuffer({ resolveWithObject: true });
    assert.equal(info.width, 20);
    assert.equal(info.height, 15);
    assert.ok(data[0]! > 150 && data[1]! < 50, `expected red, got ${data[0]},${data[1]},${data[2]}`);
  });

  it('msgpackr (BullMQ) uses msgpackr-extract\'s native decoder', async () => {
    const msgpackr = await import('msgpackr');
    assert.equal(msgpackr.isNativeAccelerationEnabled, true, 'msgpackr-extract did not load: msgpackr fell back to JavaScript');
    const value = { job: 'chunk', frames: [0, 250], name: 'x'.repeat(100) };
    assert.deepEqual(msgpackr.unpack(msgpackr.pack(value)), value);
  });

  it('esbuild (through tsx) transforms TypeScript with its native binary', async () => {
    const esbuild = await import('esbuild');
    const { code } = await esbuild.transform('const n: number = 1 + 1; export default n;', { loader: 'ts', format: 'esm' });
    assert.match(code, /const n = 1 \+ 1/);
  });
});
