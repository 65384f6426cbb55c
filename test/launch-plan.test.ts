import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync, appendFileSync, mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { makeProvenance, serializeAnswerLine, type Provenance, type QuestionId } from "../src/answers/index.js";
import { cutIntoShards, describeRanges, newPlan, planFile, readPlan, toRanges, writePlan } from "../src/launch/plan.js";
import { checkSharedDir, checkSlurmArg, sbatchScript, shellQuote, slurmErrorLine } from "../src/launch/slurm.js";
import { mergeAnswerFiles, readCompleteLines } from "../src/launch/merge.js";
import { dropLockOfEndedTask } from "../src/launch/requeue.js";
import { Rng } from "../src/util/random.js";
import { PmpdError } from "../src/errors.js";
import { tempDir } from "./helpers.js";

const work = tempDir("pmpd-launch-plan-");
test.after(() => work.cleanup());
const seed = Date.now() % 2 ** 31;

test("shards: equal contiguous parts of all units' remaining indices, larger parts first", () => {
  const rng = new Rng(seed);
  for (let trial = 0; trial < 300; trial++) {
    const units = Array.from({ length: 1 + rng.int(5) }, () => {
      const out: number[] = [];
      for (let i = 0, n = rng.int(40); out.length < n; i++) if (rng.next() < 0.7) out.push(i);
      return out;
    });
    const n = 1 + rng.int(12);
    const shards = cutIntoShards(units, n);
    const flat = units.flatMap((indices, u) => indices.map((i) => `${u}:${i}`));
    const why = `seed ${seed} trial ${trial}: ${JSON.stringify(units)} into ${n}`;
    assert.equal(shards.length, Math.min(n, flat.length), why);
    const sizes = shards.map((s) => s.reduce((k, p) => k + p.count, 0));
    assert.ok(sizes.every((s, k) => s >= 1 && (k === 0 || s <= sizes[k - 1]!) && sizes[0]! - s <= 1), `${why}: sizes ${sizes}`);
    const back = shards.flatMap((s) => s.flatMap((p) => p.ranges.flatMap(([b, e]) => Array.from({ length: e - b }, (_, j) => `${p.unit}:${b + j}`))));
    assert.deepEqual(back, flat, why);
    for (const s of shards) {
      for (const p of s) {
        assert.equal(p.count, p.ranges.reduce((k, [b, e]) => k + e - b, 0), why);
        p.ranges.forEach(([b, e], j) => assert.ok(b < e && (j === 0 || b > p.ranges[j - 1]![1]), `${why}: ranges ${JSON.stringify(p.ranges)} not maximal`));
      }
    }
  }
  assert.deepEqual(cutIntoShards([[0, 1, 2], [], [5, 6, 9]], 2), [
    [{ unit: 0, ranges: [[0, 3]], count: 3 }],
    [{ unit: 2, ranges: [[5, 7], [9, 10]], count: 3 }],
  ]);
  assert.deepEqual(cutIntoShards([[], []], 4), []);
  assert.deepEqual(toRanges([3, 4, 5, 9, 11, 12]), [[3, 6], [9, 10], [11, 13]]);
  assert.equal(describeRanges([[3, 6], [9, 10]]), "3-5, 9");
});

test("sbatch script: an array over the shards, --slurm-arg lines, one command with the task id, valid bash", () => {
  const text = sbatchScript({
    jobName: "pmpd-eval", shards: [4, 1, 3], logDir: "/shared/answers/.pmpd-launch/eval-x/logs",
    slurmArgs: ["--partition=main", "--time=1:00:00", "--gres=gpu:1"],
    command: ["/usr/bin/node", "/opt/pmpd/bin/pmpd.js", "shard-worker", "/shared/a b/plan.json", "--device", "auto"],
    about: ["pmpd eval, launch x"],
  });
  const lines = text.split("\n");
  assert.equal(lines[0], "#!/bin/bash");
  assert.deepEqual(lines.filter((l) => l.startsWith("#SBATCH")), [
    "#SBATCH --job-name=pmpd-eval", "#SBATCH --array=1,3-4", "#SBATCH --output=/shared/answers/.pmpd-launch/eval-x/logs/%A_%a.out",
    "#SBATCH --open-mode=append", "#SBATCH --partition=main", "#SBATCH --time=1:00:00", "#SBATCH --gres=gpu:1",
  ]);
  assert.ok(lines.includes(`exec /usr/bin/node /opt/pmpd/bin/pmpd.js shard-worker '/shared/a b/plan.json' --device auto --shard "$SLURM_ARRAY_TASK_ID"`), text);
  // The #SBATCH block must come before the first command, or sbatch ignores it.
  assert.ok(lines.findIndex((l) => l.startsWith("exec")) > lines.map((l) => l.startsWith("#SBATCH")).lastIndexOf(true));
  const script = join(work.dir, "job.sbatch");
  writeFileSync(script, text);
  const r = spawnSync("bash", ["-n", script], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
});

test("shell quoting gives back every word as it was", () => {
  const words = ["plain/path-1.json", "a b", "it's", "$HOME", "`x`", "\"q\"", "semi;colon", "", "ü"];
  const r = spawnSync("bash", ["-c", `printf '%s\\n' ${words.map(shellQuote).join(" ")}`], { encoding: "utf8" });
  assert.deepEqual(r.stdout.split("\n").slice(0, -1), words);
});

test("--slurm-arg: sbatch options only, and not the ones pmpd sets", () => {
  for (const ok of ["--partition=main", "--time=2:00:00", "--gres=gpu:1", "-p main", "--mem 4G", "--cpus-per-task=4"]) checkSlurmArg(ok);
  const bad: Array<[string, RegExp]> = [
    ["partition=main", /expected one sbatch option/], ["--time=1\n#SBATCH --x", /expected one sbatch option/],
    ["--array=0-3", /--array is set by pmpd/], ["-a0-3", /-a is set by pmpd/], ["--output=x.log", /--output is set by pmpd/],
    ["-e err", /-e is set by pmpd/], ["--open-mode=truncate", /--open-mode is set by pmpd/],
  ];
  for (const [arg, pattern] of bad) assert.throws(() => checkSlurmArg(arg), pattern, arg);
});

test("sbatch's error output becomes one line", () => {
  assert.equal(slurmErrorLine("sbatch: error: invalid partition specified: nope\nsbatch: error: Batch job submission failed: Invalid partition name specified\n"),
    "invalid partition specified: nope");
  assert.equal(slurmErrorLine("sbatch: unrecognized option '--tme=3'\nTry \"sbatch --help\" for more information\n"), "unrecognized option '--tme=3'");
  assert.equal(slurmErrorLine(""), "no message");
});

test("slurm output folders: absolute, or relative under the submit folder", () => {
  checkSharedDir("--answer-file-dir", "/shared/answers", "/home/u/project");
  checkSharedDir("--answer-file-dir", "answers/run1", "/home/u/project");
  checkSharedDir("--dir", "./a/../b", "/home/u/project");
  assert.throws(() => checkSharedDir("--answer-file-dir", "../answers", "/home/u/project"), /--answer-file-dir \.\.\/answers: a relative folder must lie under the submit folder \/home\/u\/project/);
  assert.throws(() => checkSharedDir("--dir", "a/../../x", "/home/u/project"), /--dir a\/\.\.\/\.\.\/x: a relative folder must lie under/);
});

const PROV: Provenance = makeProvenance({
  model: { path: "/m", hash: "sha256:1" }, quantization: null, scheduler: { name: "naive", params: { precisions: [4, 3] } },
  seed: 0, options: { bench: "dsum" },
});

function line(id: QuestionId, answerId: string, provenance: Provenance = PROV): string {
  return serializeAnswerLine({
    question_id: id, answer_id: answerId, model_id: "m", tstamp: 1,
    choices: [{ index: 0, turns: [`answer ${id}`], idxs: [1], new_tokens: [2], wall_time: [0.1], precision_log: [{ 4: 1, 3: 1 }] }],
    provenance,
  });
}

/** Python's sort of question ids: ints numerically, then strings by code point. */
function pythonOrder(ids: QuestionId[]): QuestionId[] {
  const nums = ids.filter((i): i is number => typeof i === "number").sort((a, b) => a - b);
  const strs = ids.filter((i): i is string => typeof i === "string")
    .sort((a, b) => { const x = [...a].map((c) => c.codePointAt(0)!), y = [...b].map((c) => c.codePointAt(0)!); for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!; return x.length - y.length; });
  return [...nums, ...strs];
}

test("merge: one line per question id (the later file wins), sorted as Python sorts, torn last lines left out", () => {
  const rng = new Rng(seed + 1);
  for (let trial = 0; trial < 20; trial++) {
    const dir = join(work.dir, `merge-${trial}`);
    mkdirSync(dir);
    const pool: QuestionId[] = [...Array.from({ length: 30 }, (_, i) => i * 7 % 31), "10", "9", "B", "a", "é", "😀", "a\u0301"];
    const files = [join(dir, "target.jsonl"), join(dir, "s0.jsonl"), join(dir, "s1.jsonl"), join(dir, "s2.jsonl")];
    const expected = new Map<string, string>();
    files.forEach((f, k) => {
      const chosen = pool.filter(() => rng.next() < 0.4).sort(() => rng.next() - 0.5);
      writeFileSync(f, chosen.map((id) => `${line(id, `f${k}-${String(id)}`)}\n`).join(""));
      for (const id of chosen) expected.set(`${typeof id}:${id}`, `f${k}-${String(id)}`);
    });
    appendFileSync(files[2]!, '{"question_id": 99, "answer_id": "torn", "model_');
    const n = mergeAnswerFiles(files[0]!, files.slice(1));
    const merged = readCompleteLines(files[0]!).map((l) => l.value);
    const ids = merged.map((l) => l.question_id);
    assert.equal(n, expected.size);
    assert.deepEqual(ids, pythonOrder(ids), `seed ${seed}: order`);
    assert.equal(new Set(ids.map((i) => `${typeof i}:${i}`)).size, ids.length, "no duplicates");
    assert.deepEqual(new Map(merged.map((l) => [`${typeof l.question_id}:${l.question_id}`, l.answer_id])), expected, `seed ${seed}: the last file's line wins`);
    assert.ok(!existsSync(`${files[0]}.lock`), "the lock is released");
  }
  assert.deepEqual(pythonOrder(["a", 10, "10", "9", 2, "B", "é", "😀"]), [2, 10, "10", "9", "B", "a", "é", "😀"]);
});

test("merge: lines of another provenance are refused with file and line; nothing to merge creates nothing", () => {
  const dir = join(work.dir, "merge-bad");
  mkdirSync(dir);
  const target = join(dir, "t.jsonl"), a = join(dir, "a.jsonl"), b = join(dir, "b.jsonl");
  writeFileSync(a, `${line(1, "x")}\n${line(2, "y")}\n`);
  writeFileSync(b, `${line(3, "z")}\n${line(4, "w", { ...PROV, seed: 5 })}\n`);
  assert.throws(() => mergeAnswerFiles(target, [a, b]), new RegExp(`${b.replace(/[.]/g, "\\.")}:2: written by a run with other settings than ${a.replace(/[.]/g, "\\.")}:1 \\(seed: 5 here, 0 there\\)`));
  assert.ok(!existsSync(target) && !existsSync(`${target}.lock`));
  writeFileSync(b, `${line(3, "z")}\nnot json\n${line(5, "v")}\n`);
  assert.throws(() => mergeAnswerFiles(target, [a, b]), /b\.jsonl:2: not valid JSON \(unexpected character "o"\) \(only the last line may be incomplete/);
  assert.equal(mergeAnswerFiles(target, [join(dir, "missing.jsonl")]), 0);
  assert.ok(!existsSync(target));
  assert.equal(readFileSync(a, "utf8").split("\n").length, 3, "sources are not changed");
});

test("a Slurm task takes over its shard's lock from another node (requeue), never outside Slurm or from its own node", () => {
  const target = join(work.dir, "shard.jsonl");
  const lockOf = (host: string, pid: number) => writeFileSync(`${target}.lock`, JSON.stringify({ pid, hostname: host }));
  const saved = process.env.SLURM_JOB_ID;
  try {
    delete process.env.SLURM_JOB_ID;
    lockOf("node-that-was-preempted", 4242);
    const warnings: string[] = [];
    dropLockOfEndedTask(target, warnings);
    assert.ok(existsSync(`${target}.lock`) && warnings.length === 0, "outside Slurm a foreign lock stays");
    process.env.SLURM_JOB_ID = "77";
    dropLockOfEndedTask(target, warnings);
    assert.ok(!existsSync(`${target}.lock`));
    assert.match(warnings[0]!, /removed the lock of process 4242 on "node-that-was-preempted", an earlier task of this shard/);
    lockOf(hostname(), process.pid);
    dropLockOfEndedTask(target, warnings);
    assert.ok(existsSync(`${target}.lock`), "a lock of this node is judged by its process, as always");
  } finally {
    if (saved === undefined) delete process.env.SLURM_JOB_ID;
    else process.env.SLURM_JOB_ID = saved;
  }
});

test("a launch plan is read within the config limit and checked: bad JSON, another kind, pieces outside the plan are one line naming it", () => {
  const folder = join(work.dir, "plans", "eval-0123456789ab");
  const units = [{ label: "a" }, { label: "b" }];
  writePlan(folder, newPlan("eval", "0123456789ab", "local", 2, units, cutIntoShards([[0, 1, 2], [0, 1]], 2)));
  assert.deepEqual(readPlan(folder, "eval")?.units, units);
  const plan = JSON.parse(readFileSync(planFile(folder), "utf8")) as Record<string, unknown>;
  const oneLine = (pattern: RegExp) => (e: unknown) => e instanceof PmpdError && pattern.test(e.message) && !e.message.includes("\n");
  const again = "; delete the folder .* to plan again$";
  const cases: Array<[string, RegExp]> = [
    ["{\"format\": \"pmpd-launch\",", new RegExp(`plan\\.json: .*${again}`)],
    [JSON.stringify({ ...plan, kind: "gen-dataset" }), new RegExp(`plan\\.json: not a pmpd eval launch plan${again}`)],
    [JSON.stringify({ ...plan, shards: [[{ unit: 2, ranges: [[0, 1]], count: 1 }]] }), new RegExp(`plan\\.json: shard 0 has a piece that is not \\{unit, ranges, count\\} over the plan's 2 units${again}`)],
    [JSON.stringify({ ...plan, shards: [[{ unit: 0, ranges: [[3, 1]], count: -2 }]] }), /shard 0 has a piece that is not/],
    [JSON.stringify({ ...plan, shards: [[{ unit: 0, ranges: [[0, 2]], count: 5 }]] }), /shard 0 has a piece that is not/],
    [JSON.stringify({ ...plan, shards: {} }), /"shards" is not a list/],
    [`${"[".repeat(100000)}`, new RegExp(`plan\\.json: .*${again}`)],
  ];
  for (const [text, pattern] of cases) {
    writeFileSync(planFile(folder), text);
    assert.throws(() => readPlan(folder, "eval"), oneLine(pattern), text.slice(0, 80));
  }
});
