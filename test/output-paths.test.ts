/**
 * Output paths are checked before any work, replaced atomically, and the temporaries of
 * killed runs are cleaned up; operating-system errors a user can cause are one line naming
 * the file and the cause, never an "internal error".
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { describeOsError, isOsError, PmpdError } from "../src/errors.js";
import { checkNotAnInput, checkOutputFile, checkOutputFolder, checkReplaceableFolder, removeStaleTemps, replaceAtomically, writeFileAtomic } from "../src/io/output-path.js";
import { packageRoot } from "../src/paths.js";
import { bundledModel, onSmallDisk, runCli, smallDisksAvailable, tempDir } from "./helpers.js";

const work = tempDir("pmpd-outputs-");
test.after(() => work.cleanup());

/** A folder no process can write into, even as root (sysfs), or null where there is none. */
const unwritable = (() => {
  const r = spawnSync("sh", ["-c", "touch /sys/pmpd-probe"], { encoding: "utf8" });
  return r.status !== 0 && existsSync("/sys") ? "/sys" : null;
})();

function rejects(work: () => unknown, pattern: RegExp): void {
  assert.throws(work, (e: unknown) => e instanceof PmpdError && pattern.test(e.message) && !e.message.includes("\n"));
}

test("output files and folders are checked up front: folders for files, files for folders, devices, unwritable places", () => {
  const dir = join(work.dir, "checks");
  mkdirSync(dir);
  const file = join(dir, "plain.txt");
  writeFileSync(file, "x");
  rejects(() => checkOutputFile(dir, "CSV table"), /checks: is a folder; the CSV table must be a file path/);
  rejects(() => checkOutputFile("/dev/null"), /\/dev\/null: not a regular file \(a device or pipe\); refusing to replace it/);
  rejects(() => checkOutputFile(join(file, "out.csv")), /plain\.txt\/out\.csv: a part of the path is a file, not a folder/);
  rejects(() => checkOutputFolder(file), /plain\.txt: is a file, not a folder/);
  checkOutputFile(join(dir, "new", "deeper", "out.csv")); // a folder that can be created is fine
  checkOutputFolder(join(dir, "answers", "dsum"));
  assert.deepEqual(readdirSync(dir), ["plain.txt"], "the checks leave nothing behind");
  if (unwritable !== null) {
    rejects(() => checkOutputFile(join(unwritable, "scores.csv")), /scores\.csv: cannot write into \/sys: (permission denied \(EACCES\)|read-only file system \(EROFS\))/);
    rejects(() => checkOutputFolder(join(unwritable, "answers")), /answers: cannot write into \/sys: /);
  }
});

test("--force replaces only a model folder: never the working folder, its parents or a folder of other files", () => {
  const dir = join(work.dir, "replace");
  mkdirSync(join(dir, "notes"), { recursive: true });
  writeFileSync(join(dir, "notes", "todo.txt"), "keep me");
  rejects(() => checkReplaceableFolder(join(dir, "notes"), false), /notes: already exists \(pass --force to replace it\)/);
  rejects(() => checkReplaceableFolder(join(dir, "notes"), true), /notes: holds files but no config\.json, so it is not a model folder/);
  rejects(() => checkReplaceableFolder(process.cwd(), true), /is the working folder or one of its parents; refusing to replace it/);
  rejects(() => checkReplaceableFolder("/", true), /is the working folder or one of its parents/);
  rejects(() => checkReplaceableFolder(join(dir, "missing", "out"), false), /parent folder .*missing does not exist/);
  mkdirSync(join(dir, "model"));
  writeFileSync(join(dir, "model", "config.json"), "{}");
  checkReplaceableFolder(join(dir, "model"), true);
  // Through the CLI, from a working folder: `-o . --force` is refused before loading anything.
  const r = runCli(["quantize", bundledModel(), "-o", ".", "--force"], {}, join(dir, "model"));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^pmpd: \.: is the working folder or one of its parents; refusing to replace it/);
  assert.equal(readFileSync(join(dir, "notes", "todo.txt"), "utf8"), "keep me");
});

test("a folder is replaced atomically; temporaries of killed runs are removed, those of live runs kept, a half-swapped folder restored", async () => {
  const dir = join(work.dir, "atomic");
  mkdirSync(dir);
  const out = join(dir, "model");
  replaceAtomically(out, (tmp) => { mkdirSync(tmp); writeFileSync(join(tmp, "config.json"), "1"); });
  replaceAtomically(out, (tmp) => { mkdirSync(tmp); writeFileSync(join(tmp, "config.json"), "2"); });
  assert.equal(readFileSync(join(out, "config.json"), "utf8"), "2");
  assert.throws(() => replaceAtomically(out, (tmp) => { mkdirSync(tmp); throw Object.assign(new Error("full"), { code: "ENOSPC", syscall: "write" }); }),
    (e: unknown) => e instanceof PmpdError && /model: cannot write: no space left on the device \(ENOSPC\)/.test(e.message));
  assert.equal(readFileSync(join(out, "config.json"), "utf8"), "2", "a failed write keeps the old output");
  assert.deepEqual(readdirSync(dir), ["model"], "and leaves no temporary");

  // A process that has exited, and one that still runs.
  const dead = spawnSync(process.execPath, ["-e", "0"]).pid!;
  const live = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"]);
  try {
    for (const name of [`.model.tmp-${dead}`, `model.tmp-${dead}`, `.model.tmp-${live.pid}`, `.other.tmp-${dead}`]) mkdirSync(join(dir, name));
    removeStaleTemps(out);
    assert.deepEqual(readdirSync(dir).sort(), [`.model.tmp-${live.pid}`, `.other.tmp-${dead}`, "model"].sort());
    // Killed between the two renames of a replacement: the old folder is put back.
    const half = join(dir, "half");
    mkdirSync(join(dir, `.half.old.tmp-${dead}`));
    writeFileSync(join(dir, `.half.old.tmp-${dead}`, "config.json"), "old");
    writeFileAtomic(join(dir, "unrelated.txt"), "x");
    removeStaleTemps(half);
    assert.equal(readFileSync(join(half, "config.json"), "utf8"), "old");
  } finally {
    live.kill();
  }
});

test("quantize into a folder it cannot write fails before any work, in one line naming the folder", { skip: unwritable === null && "no unwritable folder here" }, () => {
  const started = performance.now();
  const r = runCli(["quantize", bundledModel(), "--method", "rtn", "--bits", "4", "-o", join(unwritable!, "pmpd-q")]);
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /pmpd-q-w4: cannot write into \/sys: /);
  assert.ok(performance.now() - started < 15_000);
  const csv = runCli(["score", join(packageRoot(), "test", "fixtures", "score", "none.jsonl"), "--csv", work.dir]);
  assert.equal(csv.status, 1);
  assert.match(csv.stderr, /is a folder; the CSV table must be a file path/, "outputs are checked before the answer files are read");
});

test("the slurm launcher refuses an answer or dataset folder it cannot write before planning or submitting anything", { skip: unwritable === null && "no unwritable folder here" }, () => {
  const slurm = ["--launcher", "slurm", "--shards", "2"];
  const runs = [
    ["eval", "--model-path", bundledModel(), "--bench", "dsum", "--baseline", "--question-end", "1", "--answer-file-dir", join(unwritable!, "pmpd-answers"), ...slurm],
    ["gen-dataset", "--dir", join(unwritable!, "pmpd-data"), "--size", "2", "--max-new-tokens", "4", "--stage", "1", ...slurm],
  ];
  for (const args of runs) {
    const r = runCli(args);
    assert.equal(r.status, 1, r.stderr);
    const errors = r.stderr.split("\n").filter((l) => l.startsWith("pmpd:") && !l.includes("bundled fixture"));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0]!, /pmpd-(answers|data): cannot write into \/sys: /);
    assert.doesNotMatch(r.stderr, /internal error|submitted/);
  }
});

test("an output that is an input of the run is refused: score --csv onto an answer file, quantize -o onto its own model", () => {
  const dir = join(work.dir, "inputs");
  mkdirSync(join(dir, "model"), { recursive: true });
  const answers = join(dir, "a-dsum.jsonl");
  writeFileSync(answers, "{}\n");
  const r = runCli(["score", answers, "--csv", answers]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /a-dsum\.jsonl: is an input of this run \(.*a-dsum\.jsonl\); refusing to overwrite it/);
  assert.equal(readFileSync(answers, "utf8"), "{}\n");
  rejects(() => checkNotAnInput(join(dir, "model"), [join(dir, "model")]), /model: is an input of this run/);
  rejects(() => checkNotAnInput(dir, [join(dir, "model", "calib.jsonl")]), /inputs: is a folder holding an input of this run/);
  checkNotAnInput(join(dir, "model-q"), [join(dir, "model")]);
});

test("a second gen-dataset on the same folder is refused while the first runs", () => {
  const dir = join(work.dir, "busy");
  mkdirSync(dir);
  writeFileSync(join(dir, "gen-dataset.lock"), JSON.stringify({ pid: process.pid, hostname: hostname() }));
  const r = runCli(["gen-dataset", "--dir", dir, "--stage", "1", "--size", "2", "--max-new-tokens", "4"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`gen-dataset is being written by process ${process.pid} \\(lock .*gen-dataset\\.lock\\)`));
  assert.ok(!existsSync(join(dir, "stage1.partial.jsonl")));
});

test("OS errors that escape are described with the file and cause, not as internal errors", () => {
  const e = Object.assign(new Error("EACCES: permission denied, open '/x/y'"), { code: "EACCES", syscall: "open", path: "/x/y" });
  assert.ok(isOsError(e));
  assert.equal(describeOsError(e), "/x/y: open failed: permission denied (EACCES)");
  assert.ok(!isOsError(new Error("plain")));
});

test("eval on a full disk stops with one line and resumes when there is space again", { skip: !smallDisksAvailable() && "cannot mount a tmpfs here" }, () => {
  const disk = join(work.dir, "disk");
  mkdirSync(disk);
  const evalArgs = ["eval", "--fp16", "--fp-model-path", bundledModel(), "--model-id", "t", "--bench", "dsum", "--question-end", "3",
    "--max-new-tokens", "4", "--answer-file-dir", join(disk, "answers")];
  // One 4 KiB page free: the lock file takes it, the first answer line finds none.
  const [full, resumed, scored] = onSmallDisk(disk, 16, [
    { sh: `head -c 12288 /dev/zero > ${disk}/filler` },
    { pmpd: evalArgs },
    { sh: `rm ${disk}/filler` },
    { pmpd: evalArgs },
    { pmpd: ["score", join(disk, "answers", "dsum", "t-fp16.jsonl"), "--json", "--csv", join(disk, "s.csv")] },
  ]);
  assert.equal(full!.status, 1);
  assert.match(full!.stderr, /t-fp16\.jsonl: cannot append to the answer file: no space left on the device \(ENOSPC\)/);
  assert.doesNotMatch(full!.stderr, /internal error/);
  assert.equal(resumed!.status, 0, resumed!.stderr);
  assert.equal(scored!.status, 0, scored!.stderr);
  assert.equal((JSON.parse(scored!.stdout) as Array<{ questions: number }>)[0]!.questions, 3);
});
