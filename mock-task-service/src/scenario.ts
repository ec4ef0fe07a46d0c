import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { type Behaviour, type BehaviourTarget, behaviourSchema, targetSchema } from './behaviour.ts';
import { type OutageOptions, outageSchema, type RestartOptions, restartSchema } from './outage.ts';

/** A behaviour rule in a scenario: for one service and/or one action, optionally only the next `times` requests. */
export interface ScenarioRule {
  service?: string;
  action?: BehaviourTarget;
  behaviour: Partial<Behaviour>;
  times?: number;
}

/**
 * A scripted change at a time after start: apply a behaviour, forget tasks, begin an outage of
 * `service` (every service when omitted), and/or restart the whole process.
 */
export interface ScenarioStep {
  atMs: number;
  service?: string;
  action?: BehaviourTarget;
  behaviour?: Partial<Behaviour>;
  forget?: boolean;
  outage?: { ms: number } & OutageOptions;
  restart?: { ms: number } & RestartOptions;
}

/** Scenario: the JSON file format (`--scenario file.json`) and `MockOptions.scenario`. */
export interface Scenario {
  description?: string;
  name?: string;
  services?: number | string[];
  stageMs?: number;
  publishMs?: number;
  coordinatorUrl?: string;
  callbackToken?: string;
  behaviour?: Partial<Behaviour>;
  perService?: Record<string, Partial<Behaviour>>;
  rules?: ScenarioRule[];
  timeline?: ScenarioStep[];
}

const ms = z.number().int().min(0);

export const scenarioSchema = z.strictObject({
  $schema: z.string().optional(),
  description: z.string().optional(),
  name: z.string().min(1).optional(),
  services: z.union([z.number().int().min(0).max(100_000), z.array(z.string().min(1))]).optional(),
  stageMs: ms.optional(),
  publishMs: ms.optional(),
  coordinatorUrl: z.url().optional(),
  callbackToken: z.string().optional(),
  behaviour: behaviourSchema.optional(),
  perService: z.record(z.string(), behaviourSchema).optional(),
  rules: z
    .array(
      z.strictObject({
        service: z.string().optional(),
        action: targetSchema.optional(),
        behaviour: behaviourSchema,
        times: z.number().int().min(1).optional(),
      }),
    )
    .optional(),
  timeline: z
    .array(
      z.strictObject({
        atMs: ms,
        service: z.string().optional(),
        action: targetSchema.optional(),
        behaviour: behaviourSchema.optional(),
        forget: z.boolean().optional(),
        outage: outageSchema.optional(),
        restart: restartSchema.optional(),
      }),
    )
    .optional(),
});

/** Readable one-line summary of zod issues. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}

/** Validates a parsed scenario; throws an Error naming every bad field. */
export function parseScenario(value: unknown, source = 'scenario'): Scenario {
  const result = scenarioSchema.safeParse(value);
  if (!result.success) throw new Error(`invalid ${source}: ${describeIssues(result.error)}`);
  const { $schema: _ignored, ...scenario } = result.data;
  return scenario as Scenario;
}

/** Reads and validates a scenario JSON file. */
export async function loadScenario(path: string): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read scenario ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`scenario ${path} is not JSON: ${(e as Error).message}`);
  }
  return parseScenario(json, `scenario ${path}`);
}
