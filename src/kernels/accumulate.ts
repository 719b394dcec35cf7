// The ACCUM override constant that every gradient-writing shader declares
// (`override ACCUM: bool = false;`): set only when accumulating, so that the pipelines and cache
// keys of overwriting calls are the ones they always were.
import type { AccumulateOptions } from '../ops/accumulate.ts';

export type { AccumulateOptions } from '../ops/accumulate.ts';

/** `constants` plus ACCUM = 1 when `opts.accumulate` is set; `constants` unchanged otherwise. */
export function withAccumulate(constants: Record<string, number>, opts: AccumulateOptions | undefined): Record<string, number> {
  return opts?.accumulate ? { ...constants, ACCUM: 1 } : constants;
}
