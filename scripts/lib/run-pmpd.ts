/** Runs the real `pmpd` CLI from the demo scripts, echoing each command as a user would type it. */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { packageRoot } from "../../src/paths.js";

export const root = packageRoot();

/** Runs `pmpd ...args` with output on this terminal; exits with its code if it fails. */
export function pmpd(args: string[]): void {
  process.stderr.write(`\n$ pmpd ${args.join(" ")}\n`);
  const r = spawnSync(process.execPath, [join(root, "bin", "pmpd.js"), ...args], { cwd: root, stdio: "inherit" });
  exitOnFailure(args[0]!, r.status);
}

/** Runs `pmpd ...args --json` and returns the parsed document (progress still goes to stderr). */
export function pmpdJson<T>(args: string[]): T {
  process.stderr.write(`\n$ pmpd ${args.join(" ")} --json\n`);
  const r = spawnSync(process.execPath, [join(root, "bin", "pmpd.js"), ...args, "--json"], {
    cwd: root, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8",
  });
  exitOnFailure(args[0]!, r.status);
  return JSON.parse(r.stdout) as T;
}

function exitOnFailure(command: string, status: number | null): void {
  if (status === 0) return;
  process.stderr.write(`demo: "pmpd ${command}" failed with exit code ${status}\n`);
  process.exit(status ?? 1);
}
