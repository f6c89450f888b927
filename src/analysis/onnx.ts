import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { RoiError } from '../errors.js';

/** The models/ folder shipped in the package (one level above src/ or dist/). */
export const MODELS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models');

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
    session = ort.InferenceSession.create(modelPath, {
      // Warnings about unused initialisers in the converted models are noise for users.
      logSeverityLevel: 3,
      graphOptimizationLevel: 'all',
    }).catch((error: unknown) => {
      sessions.delete(modelPath);
      throw new RoiError('MODEL_INVALID', `cannot load ONNX model ${modelPath}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
    });
    sessions.set(modelPath, session);
  }
  return session;
}

export { ort };
