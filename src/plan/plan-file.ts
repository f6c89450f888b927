import type { Plan } from './plan.js';

/**
 * The plan's format version and its JSON text, apart from the schema in plan.ts: writing a plan
 * needs neither, and the analyze command then never loads zod (~0.1 s of start-up).
 */
export const PLAN_VERSION = 1;

export function planToJson(plan: Plan): string {
  return `${JSON.stringify(plan, null, 2)}\n`;
}
