import { eventModule } from '../../shared/protocol/catalog.ts';
import type { AnyAgentModule, BackupSource, CallContext, ModuleAvailability } from './types.ts';

type Step = (req: unknown, ctx: CallContext) => Promise<void>;
type AnyHandler = (req: unknown, ctx: CallContext) => Promise<unknown>;

/**
 * Composes the available modules' `before` steps into the handlers of the modules that own
 * those events (agent/main.ts wires; nothing registers itself). A step runs in the same call,
 * under the owner's lock, before its handler; a step of a module that is not available is left out.
 */
export function composeBefore<T extends { mod: AnyAgentModule; a: ModuleAvailability }>(
  added: readonly T[],
  ready: readonly AnyAgentModule[],
): T[] {
  const steps = new Map<string, Step[]>();
  for (const m of ready)
    for (const [event, step] of Object.entries(m.before ?? {}) as [string, Step][]) {
      if (eventModule(event) === undefined) throw new Error(`module ${m.name} hooks unknown event ${event}`);
      steps.set(event, [...(steps.get(event) ?? []), step]);
    }
  return added.map((entry) => {
    const handlers = { ...(entry.mod.handlers as Record<string, AnyHandler>) };
    let changed = false;
    for (const [event, handler] of Object.entries(handlers)) {
      const before = steps.get(event);
      if (!before) continue;
      changed = true;
      handlers[event] = async (req, ctx) => {
        for (const step of before) await step(req, ctx);
        return handler(req, ctx);
      };
    }
    return changed ? { ...entry, mod: { ...entry.mod, handlers } as unknown as AnyAgentModule } : entry;
  });
}

/** The backup sources of the available modules, merged (each module offers its own part). */
export function mergeBackupSources(ready: readonly AnyAgentModule[]): BackupSource {
  const out: BackupSource = {};
  for (const m of ready) Object.assign(out, m.backupSource ?? {});
  return out;
}
