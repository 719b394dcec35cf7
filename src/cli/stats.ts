// `train --stats-every N`: the per-layer statistics of the run. Snapshots are judged as they arrive
// (src/train/stats-series.ts says what is wrong and why); their warnings are printed between
// epochs, where they do not cut through the progress bar, and the series goes into the metrics JSON.
import { statsSeries, StatsWatch, type StatsSnapshot, type StatsWarning } from '../train/stats-series.ts';
import type { StatsOptions } from '../train/stats.ts';
import type { StatsReport } from './report.ts';

/** Histogram bins per tensor in the CLI's reports. */
const BINS = 32;

export class StatsCollector {
  readonly snapshots: StatsSnapshot[] = [];
  private readonly watch = new StatsWatch();
  private unprinted: StatsWarning[] = [];

  constructor(
    readonly every: number,
    private readonly log: (line: string) => void,
  ) {}

  /** What fit() takes: statistics every `every` steps, each snapshot kept and judged. */
  get options(): StatsOptions {
    return {
      every: this.every,
      bins: BINS,
      onSnapshot: (s) => {
        this.snapshots.push(s);
        this.unprinted.push(...this.watch.check(s));
      },
    };
  }

  /** Print the warnings raised since the last call, one line each. */
  printWarnings(): void {
    for (const w of this.unprinted) this.log(`warning: ${w.message}`);
    this.unprinted = [];
  }

  /** One line on what was recorded. */
  summary(): string {
    const n = this.watch.warnings.length;
    return `layer statistics: ${this.snapshots.length} snapshots, every ${this.every} steps; ${n ? `${n} warning${n > 1 ? 's' : ''}` : 'no warnings'}`;
  }

  report(): StatsReport {
    return { every: this.every, bins: BINS, ...statsSeries(this.snapshots), warnings: this.watch.warnings };
  }
}
