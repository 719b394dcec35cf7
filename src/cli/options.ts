// Parsing and checking CLI option values. A bad value is a UsageError: the CLI prints it with
// the usage line and exits with status 2, never a stack trace.
import { InvalidArgumentError } from 'commander';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got "${v}".`);
    return n;
  };
}

export function nonNegativeInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} must be a non-negative integer, got "${v}".`);
    return n;
  };
}

export function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got "${v}".`);
    return n;
  };
}

export function numberInRange(name: string, lo: number, hi: number, hiInclusive = false) {
  return (v: string): number => {
    const n = Number(v);
    const ok = v.trim() !== '' && Number.isFinite(n) && n >= lo && (hiInclusive ? n <= hi : n < hi);
    if (!ok) throw new InvalidArgumentError(`${name} must be in [${lo}, ${hi}${hiInclusive ? ']' : ')'}, got "${v}".`);
    return n;
  };
}

export function intList(name: string) {
  return (v: string): number[] => {
    const parts = v.split(',').map((s) => s.trim());
    const out = parts.map(Number);
    if (!parts.length || parts.some((p) => !/^\d+$/.test(p)) || out.some((n) => n < 1)) {
      throw new InvalidArgumentError(`${name} must be a comma-separated list of positive integers, got "${v}".`);
    }
    return out;
  };
}

export function oneOf<T extends string>(name: string, allowed: readonly T[]) {
  return (v: string): T => {
    if (!allowed.includes(v as T)) throw new InvalidArgumentError(`${name} must be one of ${allowed.join(', ')}, got "${v}".`);
    return v as T;
  };
}

/** `shift`, `flip` or both, comma-separated; `none` for no augmentation (an empty list). */
export function augmentList(v: string): ('shift' | 'flip')[] {
  if (v.trim() === 'none') return [];
  const parts = v.split(',').map((s) => s.trim());
  for (const p of parts) if (p !== 'shift' && p !== 'flip') throw new InvalidArgumentError(`--augment takes shift, flip, shift,flip or none; got "${v}".`);
  return parts as ('shift' | 'flip')[];
}

/** --augment's value as the data pipeline's options: `true` (bare) is shift and flip; none is undefined. */
export function augmentOptions(a: ('shift' | 'flip')[] | true | undefined): { pad: number; flip: boolean } | undefined {
  if (!a || (a !== true && a.length === 0)) return undefined;
  const kinds = a === true ? ['shift', 'flip'] : a;
  return { pad: kinds.includes('shift') ? 2 : 0, flip: kinds.includes('flip') };
}

/** The --augment kinds that give a checkpoint's recorded augmentation. */
export function augmentKinds(a: { pad: number; flip: boolean }): ('shift' | 'flip')[] {
  return [...(a.pad > 0 ? (['shift'] as const) : []), ...(a.flip ? (['flip'] as const) : [])];
}

/** A CSV field separator: one character, or `tab` / `\t` for a tab. */
export function delimiterOption(v: string): string {
  const d = v === 'tab' || v === '\\t' ? '\t' : v;
  if (d.length !== 1 || d === '"' || d === '\n' || d === '\r') throw new InvalidArgumentError(`--delimiter takes one character (or "tab"), got "${v}".`);
  return d;
}

/** A comma-separated list of column names. */
export function nameList(name: string) {
  return (v: string): string[] => {
    const parts = v.split(',').map((s) => s.trim());
    if (parts.some((p) => p === '')) throw new InvalidArgumentError(`${name} takes comma-separated column names, got "${v}".`);
    return parts;
  };
}

/** An image size: one side (`32`, square) or height x width (`24x32`). */
export function imageSizeOption(v: string): [number, number] {
  const m = /^\s*(\d+)\s*(?:[x×]\s*(\d+)\s*)?$/i.exec(v);
  const hw: [number, number] | null = m ? [Number(m[1]), Number(m[2] ?? m[1])] : null;
  if (!hw || hw.some((n) => !Number.isSafeInteger(n) || n < 1)) throw new InvalidArgumentError(`--image-size takes a side in pixels (32) or HEIGHTxWIDTH (24x32), got "${v}".`);
  return hw;
}

/** Image channels: 1 (grey), 3 (RGB) or auto. */
export function channelsOption(v: string): 1 | 3 | 'auto' {
  if (v === '1' || v === '3') return Number(v) as 1 | 3;
  if (v === 'auto') return 'auto';
  throw new InvalidArgumentError(`--channels takes 1 (grey), 3 (RGB) or auto, got "${v}".`);
}

/** The validation share of an image folder: in (0, 1), since training reports on it. */
export function valSplitOption(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !(n > 0 && n < 1)) throw new InvalidArgumentError(`--val-split must be in (0, 1) (the share of each class held out for validation), got "${v}".`);
  return n;
}

/** The process should end with this status; what to say was said already (a stopped run, say). */
export class ExitStatus extends Error {
  constructor(
    readonly code: number,
    message = `exit status ${code}`,
  ) {
    super(message);
    this.name = 'ExitStatus';
  }
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Seconds in `90s`, `45m`, `2h`, `1h30m`, `1.5h`; null when the text is not a duration with units. */
export function parseDuration(v: string): number | null {
  const t = v.trim();
  if (!/^(\d+(\.\d+)?[smhd])+$/.test(t)) return null;
  let s = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)([smhd])/g)) s += Number(m[1]) * UNIT_SECONDS[m[2]];
  return s > 0 ? s : null;
}

/** When to save within epochs: a number of steps (`500`) or a wall-clock interval (`10m`, `90s`). */
export type SaveEvery = { steps: number } | { seconds: number };

export function saveEveryOption(v: string): SaveEvery {
  if (/^\s*\d+\s*$/.test(v) && Number(v) >= 1 && Number.isSafeInteger(Number(v))) return { steps: Number(v) };
  const seconds = parseDuration(v);
  if (seconds !== null) return { seconds };
  throw new InvalidArgumentError(`--save-every takes a number of steps (e.g. 500) or a time (e.g. 10m, 90s, 1h), got "${v}".`);
}

/** A wall-clock budget: a duration with units (`2h`, `45m`, `1h30m`) or plain seconds. */
export function durationOption(name: string) {
  return (v: string): number => {
    const plain = /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : null;
    const s = plain !== null && plain > 0 ? plain : parseDuration(v);
    if (s === null) throw new InvalidArgumentError(`${name} takes a time such as 2h, 45m, 1h30m or 90s (plain numbers are seconds), got "${v}".`);
    return s;
  };
}

/** A growth factor above 1 (the divergence guard's). */
export function factorOption(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 1) throw new InvalidArgumentError(`${name} takes a factor above 1 (e.g. 3: stop when the loss grows 3-fold), got "${v}".`);
    return n;
  };
}

/** `10m`, `90s`, `1h30m`: a number of seconds as people write it. */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${+seconds.toFixed(1)}s`;
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.round(seconds % 60);
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
}
