/**
 * Progress for long work: a live ink view on a terminal (ink-progress.tsx), plain lines on
 * stderr otherwise (CI logs, pipes), so stdout stays clean for results. Both show
 * done/total, a rate and an ETA computed from the time spent so far.
 */
export interface ProgressReporter {
  /** Starts a phase of `total` units. */
  start(label: string, total: number): void;
  /** Sets the units done and an optional status text (e.g. tokens/s, current precision). */
  update(done: number, status?: string): void;
  /** Logs one line above the live view. */
  log(line: string): void;
  finish(): void;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(r).padStart(2, "0")}s` : `${r}s`;
}

function eta(startedMs: number, done: number, total: number): string {
  if (done <= 0) return "?";
  const elapsed = (performance.now() - startedMs) / 1000;
  return formatDuration((elapsed / done) * (total - done));
}

/** Plain lines, at most one every `intervalMs`, plus the last one of each phase. */
class LineProgress implements ProgressReporter {
  private label = "";
  private total = 0;
  private started = 0;
  private lastPrint = 0;

  constructor(private readonly intervalMs = 2000) {}

  start(label: string, total: number): void {
    this.label = label;
    this.total = total;
    this.started = performance.now();
    this.lastPrint = 0;
  }

  update(done: number, status = ""): void {
    const now = performance.now();
    if (done < this.total && now - this.lastPrint < this.intervalMs) return;
    this.lastPrint = now;
    process.stderr.write(`${this.label}: ${done}/${this.total} ETA ${eta(this.started, done, this.total)}${status ? ` ${status}` : ""}\n`);
  }

  log(line: string): void {
    process.stderr.write(`${line}\n`);
  }

  finish(): void {}
}

class SilentProgress implements ProgressReporter {
  start(): void {}
  update(): void {}
  log(): void {}
  finish(): void {}
}

/**
 * The reporter for this process: ink when stderr is a terminal, lines otherwise. ink and
 * React take most of a second to import, so only a run on a terminal loads them.
 */
export async function createProgress(options: { quiet?: boolean } = {}): Promise<ProgressReporter> {
  if (options.quiet) return new SilentProgress();
  if (!process.stderr.isTTY || process.env.CI) return new LineProgress();
  const { InkProgress } = await import("./ink-progress.js");
  return new InkProgress(eta);
}
