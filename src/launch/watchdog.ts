/**
 * A shard worker started by the local launcher must not outlive it: a parent killed with
 * SIGKILL cannot forward anything, so the worker watches for itself. Its main thread is
 * busy in long synchronous decoding and never turns its event loop, so timers and signal
 * handlers there would wait for the whole run; the check runs in its own thread instead and
 * ends the process as soon as it has been handed to another parent.
 */
import { Worker } from "node:worker_threads";

/** The environment variable through which the local launcher tells a worker its pid. */
export const PARENT_PID_ENV = "PMPD_LAUNCHER_PID";

const WATCH = `
const { workerData } = require("node:worker_threads");
setInterval(() => {
  if (process.ppid !== workerData.parent) process.kill(process.pid, "SIGKILL");
}, workerData.intervalMs);
`;

/** Ends this process once its parent is no longer `PMPD_LAUNCHER_PID`; does nothing when that is not set. */
export function exitWithLauncher(intervalMs = 250): void {
  const parent = Number(process.env[PARENT_PID_ENV]);
  if (!Number.isInteger(parent) || parent <= 0) return;
  if (process.ppid !== parent) process.kill(process.pid, "SIGKILL");
  const watcher = new Worker(WATCH, { eval: true, workerData: { parent, intervalMs } });
  watcher.unref();
}
