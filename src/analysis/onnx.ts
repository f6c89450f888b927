import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { RoiError } from '../media/errors.js';

/** The models/ folder shipped in the package (one level above src/ or dist/). */
export const MODELS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models');

const INTRA_OP_THREADS = Math.max(1, Math.min(4, Math.floor(availableParallelism() / 2)));

const sessions = new Map<string, Promise<ort.InferenceSession>>();

/**
 * One inference session per model file for the life of the process: creating a session costs far
 * more than running it, and sessions are safe to reuse across calls.
 */
export function loadSession(modelPath: string): Promise<ort.InferenceSession> {
  let session = sessions.get(modelPath);
  if (!session) {
    if (!existsSync(modelPath)) {
      throw new RoiError('MODEL_MISSING', `model file not found: ${modelPath} (run npm run models in a checkout, or reinstall roi-encoder)`);
    }
    // onnxruntime 1.30 on Linux starts Microsoft's 1DS telemetry with the first session: it leaves
    // mat-debug-<pid>.log and .ses in TMPDIR on every run and queues usage events for upload. No
    // session option turns it off; this variable does (read at that moment). A user's own value wins.
    process.env.ORT_DISABLE_TELEMETRY ??= '1';
    session = ort.InferenceSession.create(modelPath, {
      // Warnings about unused initialisers in the converted models are noise for users.
      logSeverityLevel: 3,
      graphOptimizationLevel: 'all',
      // Half the cores: the other half decode the next frames meanwhile. On 2 cores one thread ran a
      // full BlazeFace scan in 191 ms of CPU against 549 ms with two, whose threads spin against ffmpeg.
      intraOpNumThreads: INTRA_OP_THREADS,
    }).catch((error: unknown) => {
      sessions.delete(modelPath);
      throw new RoiError('MODEL_INVALID', `cannot load ONNX model ${modelPath}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
    });
    sessions.set(modelPath, session);
  }
  return session;
}

export { ort };
