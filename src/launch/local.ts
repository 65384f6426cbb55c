/**
 * The local launcher: one worker process per shard on this machine, all at once. The
 * workers die with the launcher: SIGTERM, SIGINT and SIGHUP are forwarded to them (and the
 * launcher then merges what they finished), and each worker watches for the launcher's
 * death itself (watchdog.ts), which covers SIGKILL.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { PmpdError } from "../errors.js";
import { PARENT_PID_ENV } from "./watchdog.js";

export interface WorkerExit {
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last line the worker wrote on stderr (its error message when it failed). */
  lastLine: string;
}

/** Thrown after the launcher was asked to stop and its workers have ended. */
export class LaunchInterrupted extends PmpdError {
  override readonly exitCode: number;
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.exitCode = 128 + (signal === "SIGINT" ? 2 : signal === "SIGHUP" ? 1 : 15);
  }
}

const FORWARDED: NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGHUP"];

/**
 * Runs `node <args> --shard k` for every k in `shards`, in parallel, and resolves with how
 * each ended. `tick` is called every `tickMs` while they run (progress). When this process
 * gets SIGTERM/SIGINT/SIGHUP, the workers get the same signal, and once they are gone the
 * promise rejects with LaunchInterrupted.
 */
export function runWorkers(args: string[], shards: number[], tick: () => void, tickMs = 1000): Promise<Map<number, WorkerExit>> {
  return new Promise((resolve, reject) => {
    const exits = new Map<number, WorkerExit>();
    const children = new Map<number, ChildProcess>();
    let interrupted: NodeJS.Signals | null = null;
    const onSignal = (signal: NodeJS.Signals) => {
      if (interrupted !== null) process.exit(128 + 15); // a second signal: stop waiting
      interrupted = signal;
      for (const child of children.values()) child.kill(signal);
    };
    for (const s of FORWARDED) process.on(s, onSignal);
    const timer = setInterval(tick, tickMs);
    const settle = () => {
      if (exits.size < shards.length) return;
      clearInterval(timer);
      for (const s of FORWARDED) process.off(s, onSignal);
      if (interrupted !== null) reject(new LaunchInterrupted(interrupted));
      else resolve(exits);
    };
    for (const shard of shards) {
      const child = spawn(process.execPath, [...args, "--shard", String(shard)], {
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, [PARENT_PID_ENV]: String(process.pid) },
      });
      children.set(shard, child);
      let tail = "";
      child.stderr!.on("data", (d: Buffer) => { tail = (tail + d.toString()).slice(-4000); });
      child.on("error", (e) => { tail += `\n${e.message}`; });
      child.on("close", (code, signal) => {
        children.delete(shard);
        const lines = tail.trim().split("\n");
        exits.set(shard, { code, signal, lastLine: lines[lines.length - 1] ?? "" });
        settle();
      });
    }
    if (shards.length === 0) settle();
  });
}
