// The progress bar of a terminal training run (cli-progress): one per epoch, moved on as loss
// windows are read; off when stderr is not a terminal or with --quiet (a line per epoch then).
import cliProgress from 'cli-progress';
import type { StepEvent } from '../train/trainer.ts';

const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(2)}%`);

export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  /** Whether a bar is drawn at all. */
  readonly shown: boolean;

  constructor(
    private readonly epochs: number,
    quiet: boolean,
  ) {
    this.shown = Boolean(process.stderr.isTTY) && !quiet;
  }

  update(ev: StepEvent): void {
    if (!this.shown) return;
    if (!this.bar) {
      this.bar = new cliProgress.SingleBar(
        {
          format: `epoch ${ev.epoch + 1}/${this.epochs} {bar} {value}/{total} | loss {loss} | acc {acc} | {sps} samples/s`,
          hideCursor: true,
          clearOnComplete: true,
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(ev.batches, 0, { loss: '-', acc: '-', sps: '-' });
    }
    this.bar.update(ev.batch, { loss: ev.loss.toFixed(4), acc: pct(ev.accuracy), sps: Math.round(ev.samplesPerSecond) });
  }

  /** Take the bar off the terminal (and give the cursor back): at an epoch end, or when training stops. */
  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
