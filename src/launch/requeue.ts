/**
 * A Slurm task that is requeued (preemption, node failure) or resubmitted may start on
 * another node than the one that left the lock on its shard's output, and a lock from
 * another host is normally refused because it cannot be checked. Inside a Slurm task it can
 * be judged: Slurm runs one task of a shard at a time, and pmpd submits a shard again only
 * after its last task has ended, so such a lock belongs to a task that is gone.
 */
import { existsSync, unlinkSync } from "node:fs";
import { hostname } from "node:os";
import { quote } from "../errors.js";
import { readOwner } from "../answers/lock.js";

export function runningInSlurm(): boolean {
  return process.env.SLURM_JOB_ID !== undefined;
}

/** In a Slurm task: removes the lock on `target` when another node holds it (see above). */
export function dropLockOfEndedTask(target: string, warnings: string[]): void {
  const file = `${target}.lock`;
  if (!runningInSlurm() || !existsSync(file)) return;
  const seen = readOwner(file);
  if (seen?.owner && seen.owner.hostname !== hostname()) {
    try { unlinkSync(file); } catch { /* gone meanwhile */ }
    warnings.push(`${target}: removed the lock of process ${seen.owner.pid} on ${quote(seen.owner.hostname)}, an earlier task of this shard that Slurm ended`);
  }
}
