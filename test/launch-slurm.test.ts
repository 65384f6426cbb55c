/**
 * The slurm launcher against a real Slurm (a single-node cluster will do:
 * ../shared/slurm/start-local-cluster.sh starts one). Skipped when no Slurm answers.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { cancelTasks } from "../src/launch/slurm.js";
import { packageRoot } from "../src/paths.js";
import { bundledModel, runCli, tempDir } from "./helpers.js";
import { assertSameDataset, comparable, readLines, shardAnswers, writeLongBench } from "./launch-helpers.js";

function slurmProblem(): string | null {
  const q = spawnSync("squeue", ["-h", "-o", "%i"], { encoding: "utf8", timeout: 20_000 });
  if (q.error) return `no Slurm here (${q.error.message})`;
  if (q.status !== 0) return `Slurm does not answer (${q.stderr.trim().split("\n")[0]})`;
  const s = spawnSync("sbatch", ["--version"], { encoding: "utf8" });
  return s.status === 0 ? null : "sbatch does not run";
}

const problem = slurmProblem();
const work = tempDir("pmpd-launch-slurm-");
const model = join(work.dir, "anyprec");
const jobs = new Set<string>();
const launchers = new Set<ChildProcess>();
test.after(() => {
  // A failed test may leave its launcher waiting: stop it before it writes into the removed folder.
  for (const launcher of launchers) launcher.kill("SIGKILL");
  for (const job of jobs) cancelTasks(job);
  work.cleanup();
});

const env = { PMPD_SLURM_POLL_SECONDS: "0.5" };
const base = (dir: string) => ["eval", "--model-path", model, "--model-id", "tiny", "--bench", "dsum", "--answer-file-dir", dir];
const slurm = ["--launcher", "slurm", "--shards", "2"];

function noteJobs(stderr: string): string[] {
  const ids = [...stderr.matchAll(/submitted slurm job (\d+)/g)].map((m) => m[1]!);
  for (const id of ids) jobs.add(id);
  return ids;
}

function skipWithoutSlurm(t: TestContext): boolean {
  if (problem === null) return false;
  t.skip(`needs Slurm: ${problem}`);
  return true;
}

test("setup: a 2..4-bit any-precision model", (t) => {
  if (skipWithoutSlurm(t)) return;
  const r = runCli(["quantize", bundledModel(), "--method", "anyprec", "--sensitivity", "uniform", "-o", model]);
  assert.equal(r.status, 0, r.stderr);
});

test("slurm: a 2-shard array job (--no-wait, then the same command waits and merges) writes the answers of one local process", (t) => {
  if (skipWithoutSlurm(t)) return;
  const one = join(work.dir, "one"), two = join(work.dir, "two");
  const args = ["--static-scheduler", "--high-bit-steps", "4", "--baseline", "--max-new-tokens", "12", "--question-end", "5"];
  assert.equal(runCli([...base(one), ...args]).status, 0);
  const submitted = runCli([...base(two), ...args, ...slurm, "--no-wait"], env);
  assert.equal(submitted.status, 0, submitted.stderr);
  const [job] = noteJobs(submitted.stderr);
  assert.equal(submitted.stdout.trim(), job, "--no-wait prints the job id");
  const r = runCli([...base(two), ...args, ...slurm], env);
  noteJobs(r.stderr);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /submitted/, "nothing is submitted again");
  assert.match(r.stderr, new RegExp(`slurm job ${job}: (\\d+)/\\1 `), "it waits for the submitted job");
  for (const f of ["tiny-static-4-3.jsonl", "tiny-4bit.jsonl", "tiny-3bit.jsonl"]) {
    assert.deepEqual(readLines(join(two, "dsum", f)).map(comparable), readLines(join(one, "dsum", f)).map(comparable), f);
  }
  assert.ok(!existsSync(join(two, ".pmpd-launch")), "the launch folder is removed");
});

/**
 * Starts a waiting 2-shard launch of 24 long questions and resolves once shard 1 has answered
 * its first question, with the job id and how the launcher ends.
 */
async function launchUntilShard1Answers(dir: string): Promise<{ args: string[]; job: string; exit: Promise<number | null>; stderr: () => string }> {
  const bench = join(work.dir, "long.jsonl");
  writeLongBench(bench, 24);
  const args = [...base(dir), "--static-scheduler", "--bench-file", bench, "--max-new-tokens", "200", ...slurm];
  const launcher = spawn(process.execPath, [join(packageRoot(), "bin", "pmpd.js"), ...args], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } });
  launchers.add(launcher);
  let stderr = "";
  launcher.stderr.on("data", (d) => { stderr += d; });
  let ended = false;
  const exit = new Promise<number | null>((resolve) => launcher.on("close", (code) => { ended = true; resolve(code); }));
  const end = Date.now() + 120_000;
  while (shardAnswers(dir).filter((l) => l.question_id >= 12).length < 1 || noteJobs(stderr).length === 0) {
    assert.ok(Date.now() < end && !ended, `shard 1 never answered: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { args, job: noteJobs(stderr)[0]!, exit, stderr: () => stderr };
}

test("slurm: a task cancelled mid-run is reported with its log, and the rerun resubmits only it and completes the merge", async (t) => {
  if (skipWithoutSlurm(t)) return;
  const dir = join(work.dir, "cancel"), root = join(dir, ".pmpd-launch");
  const { args, job, exit, stderr: output } = await launchUntilShard1Answers(dir);
  cancelTasks(job, [1]);
  const code = await exit, stderr = output();
  assert.equal(code, 1, stderr);
  const folder = join(root, readdirSync(root)[0]!);
  const log = join(folder, "logs", `${job}_1.out`);
  const failures = stderr.split("\n").filter((l) => l.startsWith("pmpd: shard"));
  assert.equal(failures.length, 1, stderr);
  assert.ok(failures[0]!.startsWith(`pmpd: shard 1 (static-4-3 questions 12-23) did not finish (CANCELLED`), failures[0]);
  assert.ok(failures[0]!.includes(`log ${log}`), failures[0]);
  const script = readFileSync(join(folder, "submit-1.sbatch"), "utf8");
  assert.match(script, /^#SBATCH --array=0-1$/m);
  assert.ok(script.includes(`exec ${process.execPath} ${join(packageRoot(), "bin", "pmpd.js")} shard-worker ${join(folder, "plan.json")} `), script);
  const file = join(dir, "dsum", "tiny-static-4-3.jsonl");
  const partial = readLines(file);
  assert.ok(partial.length >= 13 && partial.length < 24, `shard 0 and the first answers of shard 1 are merged: ${partial.length}`);
  assert.equal(shardAnswers(dir).filter((l) => l.question_id >= 12).length, partial.length - 12, "the cancelled shard's answers stay for the rerun");

  const merged = runCli([...args, "--merge"], env);
  assert.equal(merged.status, 1, merged.stderr);
  assert.match(merged.stderr, /shard 1 \(static-4-3 questions 12-23\) did not finish/);
  assert.doesNotMatch(merged.stderr, /submitted/);

  const r = runCli(args, env);
  assert.equal(r.status, 0, r.stderr);
  const [again] = noteJobs(r.stderr);
  assert.match(r.stderr, new RegExp(`submitted slurm job ${again}: shard 1 \\(`));
  const lines = readLines(file);
  assert.deepEqual(lines.map((l) => l.question_id), Array.from({ length: 24 }, (_, i) => i));
  const ids = new Map(lines.map((l) => [l.question_id, l.answer_id]));
  for (const l of partial) assert.equal(ids.get(l.question_id), l.answer_id, `question ${l.question_id} is kept, not answered again`);
  assert.ok(!existsSync(root), "the launch folder is removed");
});

test("slurm: a --slurm-arg that sbatch refuses gives one line from sbatch's error and leaves nothing behind", (t) => {
  if (skipWithoutSlurm(t)) return;
  const dir = join(work.dir, "bad");
  const r = runCli([...base(dir), "--static-scheduler", "--max-new-tokens", "12", ...slurm, "--slurm-arg=--partition=pmpd-no-such-partition"], env);
  assert.equal(r.status, 1);
  // Besides the notice that the bundled fixtures stand in for the dataset, one line.
  const lines = r.stderr.trim().split("\n").filter((l) => !l.startsWith("pmpd: no --bench-file"));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^pmpd: sbatch refused \S+submit-1\.sbatch: invalid partition specified: pmpd-no-such-partition$/);
  assert.ok(!existsSync(join(dir, ".pmpd-launch")));
});

test("slurm: a requeued task (preemption) resumes its shard file and the launcher merges everything", async (t) => {
  if (skipWithoutSlurm(t)) return;
  const dir = join(work.dir, "requeue");
  const { job, exit, stderr } = await launchUntilShard1Answers(dir);
  const before = shardAnswers(dir).filter((l) => l.question_id >= 12);
  const task1 = () => spawnSync("squeue", ["-h", "-r", "-j", job, "-o", "%K %T"], { encoding: "utf8" }).stdout.split("\n").find((l) => l.startsWith("1 "))?.split(" ")[1];
  assert.equal(task1(), "RUNNING");
  assert.equal(spawnSync("scontrol", ["requeue", `${job}_1`]).status, 0);
  // A requeued task waits (BeginTime) before it may start again; once it is pending, start it
  // sooner. Not at once: slurmd refuses a job whose new credential dates from the second its
  // old one was revoked.
  const end = Date.now() + 30_000;
  while (task1() !== "PENDING") {
    assert.ok(Date.now() < end, "the requeued task never became pending");
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(spawnSync("scontrol", ["update", `JobId=${job}_1`, "StartTime=now"]).status, 0);
  assert.equal(await exit, 0, stderr());
  assert.equal(noteJobs(stderr()).length, 1, "nothing is resubmitted");
  const lines = readLines(join(dir, "dsum", "tiny-static-4-3.jsonl"));
  assert.deepEqual(lines.map((l) => l.question_id), Array.from({ length: 24 }, (_, i) => i));
  const ids = new Map(lines.map((l) => [l.question_id, l.answer_id]));
  for (const l of before) assert.equal(ids.get(l.question_id), l.answer_id, `question ${l.question_id}, answered before the requeue, is kept`);
});

test("slurm: gen-dataset as 2-shard array jobs (stage 1, then stage 2) writes the files of one process", (t) => {
  if (skipWithoutSlurm(t)) return;
  const gen = (dir: string) => ["gen-dataset", "--dir", dir, "--model", model, "--size", "6", "--max-new-tokens", "9"];
  const one = join(work.dir, "gen-one"), two = join(work.dir, "gen-two");
  assert.equal(runCli(gen(one)).status, 0);
  const r = runCli([...gen(two), ...slurm], env);
  const submitted = noteJobs(r.stderr);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(submitted.length, 2, "one job per stage");
  assert.match(r.stdout, /wrote .*stage1\.json\nwrote .*kv_dataset_4_3\.json/);
  assertSameDataset(two, one);
});
