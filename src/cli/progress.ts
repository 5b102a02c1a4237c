/** Progress bars on stderr (only on a terminal, so logs and pipes stay clean). */
import cliProgress from 'cli-progress';

export interface Progress {
  tick(n?: number, payload?: Record<string, string | number>): void;
  /** Sets the count done so far. */
  update(done: number, payload?: Record<string, string | number>): void;
  stop(): void;
}

const silent: Progress = { tick() {}, update() {}, stop() {} };

/** `detail` is an extra format with payload tokens (`loss {loss}`) filled by tick/update. */
export function progressBar(label: string, total: number, unit = 'items', detail?: string): Progress {
  if (!process.stderr.isTTY || process.env.MOBILIZE_NO_PROGRESS) return silent;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | ${detail ? `${detail} | ` : ''}{eta_formatted} left`,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, detail ? Object.fromEntries([...detail.matchAll(/\{(\w+)\}/g)].map((m) => [m[1], '…'])) : undefined);
  return {
    tick(n = 1, payload) {
      bar.increment(n, payload);
    },
    update(done, payload) {
      bar.update(done, payload);
    },
    stop() {
      bar.stop();
    },
  };
}
