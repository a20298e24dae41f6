import { GatehouseError, toGatehouseError } from '../errors.ts';
import type { Outcome, Stage, StageLog, StageObserver } from './context.ts';

/**
 * Runs stages in order until one rejects or answers. Synchronous stages stay
 * synchronous (no promise per stage on the hot path).
 */
export function runStages<C extends { stageLog: StageLog | undefined }>(
  stages: readonly Stage<C>[],
  ctx: C,
  observe?: StageObserver,
  from = 0,
): Outcome | Promise<Outcome> {
  for (let i = from; i < stages.length; i++) {
    const stage = stages[i] as Stage<C>;
    const t0 = observe ? performance.now() : 0;
    let out: Outcome | Promise<Outcome>;
    try {
      out = stage.run(ctx);
    } catch (err) {
      return tag(toGatehouseError(err), stage.name);
    }
    if (out instanceof Promise) {
      return out.then(
        (o) => {
          observe?.(stage.name, (performance.now() - t0) / 1000, ctx);
          return o === undefined
            ? runStages(stages, ctx, observe, i + 1)
            : o instanceof GatehouseError
              ? tag(o, stage.name)
              : o;
        },
        (err: unknown) => tag(toGatehouseError(err), stage.name),
      );
    }
    observe?.(stage.name, (performance.now() - t0) / 1000, ctx);
    if (out !== undefined) return out instanceof GatehouseError ? tag(out, stage.name) : out;
  }
  return undefined;
}

/** Remembers which stage produced an error, for logs. */
function tag(e: GatehouseError, stage: string): GatehouseError {
  e.stage ??= stage;
  return e;
}
