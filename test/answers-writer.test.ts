import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { PmpdError } from "../src/errors.js";
import {
  AnswerWriter, PyFloat, makeProvenance, newAnswerId, pyFloatRepr, pyJsonDumps, readAnswerFile, serializeAnswerLine,
  type NewAnswer, type Provenance,
} from "../src/answers/index.js";
import { packageRoot } from "../src/paths.js";
import { Rng } from "../src/util/random.js";
import { PMPD_VERSION } from "../src/version.js";
import { tempDir } from "./helpers.js";

const PROV: Provenance = makeProvenance({
  model: { path: "models/tiny-llama-anyprec-4-2", hash: "sha256:abc" },
  quantization: { method: "anyprec", seed: 2, parent: 4 },
  scheduler: { name: "naive", params: { precisions: [4, 3], highBitSteps: 11 } },
  seed: 0,
  options: { bench: "dsum", split: "test", maxNewTokens: 33 },
});

function answer(id: number | string, text = `answer ${id}`): NewAnswer {
  return {
    question_id: id,
    model_id: "tiny",
    choices: [{ index: 0, turns: [text], idxs: [3], new_tokens: [4], wall_time: [0.5], precision_log: [new Map([[4, 2], [3, 1]])] }],
  };
}

const ids = (file: string) => readAnswerFile(file).map((l) => l.question_id);

test("Python float repr and json.dumps formatting", () => {
  const cases: [number, string][] = [
    [1e-5, "1e-05"], [1e16, "1e+16"], [123, "123.0"], [0.0001, "0.0001"], [1.5e-7, "1.5e-07"], [1719999999.1234567, "1719999999.1234567"],
    [-0, "-0.0"], [2.5e300, "2.5e+300"], [1e15, "1000000000000000.0"], [0.1 + 0.2, "0.30000000000000004"], [0.5, "0.5"], [NaN, "NaN"],
  ];
  for (const [x, s] of cases) assert.equal(pyFloatRepr(x), s, String(x));
  assert.equal(pyJsonDumps({ a: "é\u007f\u0001\"/", b: [1, new PyFloat(2)] }), '{"a": "\\u00e9\\u007f\\u0001\\"/", "b": [1, 2.0]}');
  assert.equal(pyJsonDumps(new Map([[4, 84], [3, 172]])), '{"4": 84, "3": 172}');
  assert.equal(pyJsonDumps("😀"), '"\\ud83d\\ude00"');
});

test("answer lines: key order of the reference schema, provenance last", () => {
  const line = serializeAnswerLine({
    question_id: 7, answer_id: "A".repeat(22), model_id: "m",
    choices: [{ index: 0, turns: ["hi"], idxs: [256], new_tokens: [257], wall_time: [2], precision_log: [new Map([[4, 84], [3, 172]])] }],
    tstamp: 1700000000, pass_key: "123", reference: "ref", provenance: PROV,
  });
  assert.equal(line,
    `{"question_id": 7, "answer_id": "${"A".repeat(22)}", "model_id": "m", "choices": [{"index": 0, "turns": ["hi"], "idxs": [256], "new_tokens": [257], "wall_time": [2.0], "precision_log": [{"4": 84, "3": 172}]}], "tstamp": 1700000000.0, "pass_key": "123", "reference": "ref", ` +
    `"provenance": {"model": {"path": "models/tiny-llama-anyprec-4-2", "hash": "sha256:abc"}, "quantization": {"method": "anyprec", "seed": 2, "parent": 4}, "scheduler": {"name": "naive", "params": {"precisions": [4, 3], "highBitSteps": 11}}, "seed": 0, "options": {"bench": "dsum", "split": "test", "maxNewTokens": 33}, "pmpd_version": "${PMPD_VERSION}"}}`);
});

test("answer ids: 22 characters of the shortuuid alphabet, seedable", () => {
  assert.match(newAnswerId(), /^[23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz]{22}$/);
  assert.equal(newAnswerId(new Rng(5)), newAnswerId(new Rng(5)));
  assert.notEqual(newAnswerId(), newAnswerId());
});

test("writes, flushes each line, then sorts and de-duplicates on finish", () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, "deep", "er", "answers.jsonl");
    const w = AnswerWriter.open(file, { provenance: PROV, rng: new Rng(1), now: () => 1700000000.25 });
    assert.deepEqual([...w.answered], []);
    assert.ok(existsSync(`${file}.lock`));
    const lock = JSON.parse(readFileSync(`${file}.lock`, "utf8")) as { pid: number; hostname: string };
    assert.deepEqual(lock, { pid: process.pid, hostname: hostname() });
    let n = 0;
    for (const id of [10, "b", 2, 1, "a", 2]) {
      w.append(answer(id, id === 2 && w.answered.has(2) ? "second try" : `answer ${id}`));
      n++;
      assert.equal(readFileSync(file, "utf8").split("\n").filter(Boolean).length, n, "every append is on disk at once");
    }
    w.finish();
    assert.ok(!existsSync(`${file}.lock`), "finish releases the lock");
    const lines = readAnswerFile(file);
    assert.deepEqual(lines.map((l) => l.question_id), [1, 2, 10, "a", "b"]);
    assert.equal(lines[1]!.choices[0]!.turns[0], "second try", "the last line per id wins");
    assert.equal(lines[0]!.tstamp, 1700000000.25);
    assert.match(readFileSync(file, "utf8"), /"precision_log": \[\{"4": 2, "3": 1\}\]/);
    assert.deepEqual(lines[0]!.provenance, PROV);
  } finally {
    cleanup();
  }
});

test("resume after a kill: the stale lock is taken over, the cut-off last line dropped and its question redone", () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, "answers.jsonl");
    const answersModule = pathToFileURL(join(packageRoot(), "dist", "src", "answers", "index.js")).href;
    // A child process writes two answers, starts a third and dies without cleaning up.
    const script = `
      import { AnswerWriter } from ${JSON.stringify(answersModule)};
      import { appendFileSync } from "node:fs";
      const provenance = JSON.parse(process.env.PROV);
      const w = AnswerWriter.open(process.env.FILE, { provenance });
      for (const id of [0, 1]) w.append({ question_id: id, model_id: "tiny", choices: [{ index: 0, turns: ["t" + id], idxs: [0], new_tokens: [1], wall_time: [0.1], precision_log: [{}] }] });
      appendFileSync(process.env.FILE, '{"question_id": 2, "answer_id": "xyz", "model_id": "ti');
      process.exit(0);`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { env: { ...process.env, FILE: file, PROV: JSON.stringify(PROV) }, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(`${file}.lock`), "the dead writer left its lock");
    const w = AnswerWriter.open(file, { provenance: PROV });
    try {
      assert.deepEqual([...w.answered].sort(), [0, 1]);
      assert.equal(w.warnings.length, 2, w.warnings.join("\n"));
      assert.match(w.warnings[0]!, /took over the stale lock of process \d+/);
      assert.match(w.warnings[1]!, /answers\.jsonl:3: dropped an incomplete last line \(not valid JSON \(unterminated string at column 55\)\)/);
      assert.equal(readFileSync(file, "utf8").split("\n").filter(Boolean).length, 2, "rewritten without the broken line");
      assert.ok(readFileSync(file, "utf8").endsWith("\n"));
      w.append(answer(2));
      w.finish();
    } finally {
      w.close();
    }
    assert.deepEqual(ids(file), [0, 1, 2]);
  } finally {
    cleanup();
  }
});

test("a second writer is refused while the first holds the lock", () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, "a.jsonl");
    const first = AnswerWriter.open(file, { provenance: PROV });
    first.append(answer(1));
    assert.throws(() => AnswerWriter.open(file, { provenance: PROV }),
      (e: unknown) => e instanceof PmpdError && e.message.includes(`${file} is being written by process ${process.pid}`));
    first.close();
    assert.ok(!existsSync(`${file}.lock`), "close releases the lock");
    const second = AnswerWriter.open(file, { provenance: PROV });
    assert.deepEqual([...second.answered], [1]);
    assert.deepEqual(second.warnings, []);
    second.close();
    // A lock from another host is never taken over.
    writeFileSync(`${file}.lock`, JSON.stringify({ pid: 1, hostname: "elsewhere.example" }));
    assert.throws(() => AnswerWriter.open(file, { provenance: PROV }), /process 1 on host elsewhere\.example .*delete the lock file/);
  } finally {
    cleanup();
  }
});

test("a corrupt line before the last one is an error naming the line; the lock is released", () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, "a.jsonl");
    const w = AnswerWriter.open(file, { provenance: PROV });
    w.append(answer(1));
    w.close();
    appendFileSync(file, "{not json}\n");
    const w2 = AnswerWriter.open(file, { provenance: PROV });
    assert.equal(w2.warnings.length, 1, "a bad LAST line is dropped");
    w2.append(answer(2));
    w2.close();
    const lines = readFileSync(file, "utf8").split("\n");
    writeFileSync(file, [lines[0], '{"question_id": 5}', lines[1], ""].join("\n"));
    assert.throws(() => AnswerWriter.open(file, { provenance: PROV }),
      (e: unknown) => e instanceof PmpdError && e.message.startsWith(`${file}:2: "answer_id" must be a string`));
    assert.ok(!existsSync(`${file}.lock`));
    assert.throws(() => readAnswerFile(file), (e: unknown) => e instanceof PmpdError && e.message.startsWith(`${file}:2: `));
  } finally {
    cleanup();
  }
});

test("lines written with another provenance are refused; the pmpd version alone does not matter", () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, "a.jsonl");
    const w = AnswerWriter.open(file, { provenance: PROV });
    w.append(answer(1));
    w.finish();
    const other = makeProvenance({ ...PROV, scheduler: { name: "naive", params: { precisions: [4, 3], highBitSteps: 22 } } });
    assert.throws(() => AnswerWriter.open(file, { provenance: other }),
      (e: unknown) => e instanceof PmpdError && e.message === `${file}:1: written by a run with other settings (scheduler); delete the file or write elsewhere (--answer-file-dir, --model-id)`);
    const otherModel = makeProvenance({ ...PROV, model: { path: "x", hash: "sha256:def" }, seed: 3 });
    assert.throws(() => AnswerWriter.open(file, { provenance: otherModel }), /other settings \(model; seed: 0 in the file, 3 in this run\)/);
    const moved = makeProvenance({ ...PROV, model: { path: "/elsewhere/model", hash: "sha256:abc" }, pmpd_version: "9.9.9" });
    const ok = AnswerWriter.open(file, { provenance: moved });
    assert.deepEqual([...ok.answered], [1]);
    ok.close();
    // A reference-produced file (no provenance) is not appended to.
    writeFileSync(file, `${JSON.stringify({ question_id: 0, answer_id: "a", model_id: "m", choices: [{ index: 0, turns: ["x"], idxs: [0], new_tokens: [1], wall_time: [0.1], precision_log: [{ 4: 1 }] }], tstamp: 1 })}\n`);
    assert.throws(() => AnswerWriter.open(file, { provenance: PROV }), /:1: this line has no pmpd provenance/);
    assert.equal(readAnswerFile(file).length, 1, "but the reader accepts it");
  } finally {
    cleanup();
  }
});

test("readAnswerFile validates per-turn list lengths and types", () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, "a.jsonl");
    const good = { question_id: "q", answer_id: "a", model_id: "m", choices: [{ index: 0, turns: ["x", "y"], idxs: [0, 1], new_tokens: [1, 2], wall_time: [0.1, 0.2], precision_log: [{ 4: 1 }, {}] }], tstamp: 1 };
    writeFileSync(file, `${JSON.stringify(good)}\n`);
    assert.equal(readAnswerFile(file)[0]!.question_id, "q");
    writeFileSync(file, `\n${JSON.stringify({ ...good, choices: [{ ...good.choices[0], idxs: [0] }] })}\n`);
    assert.throws(() => readAnswerFile(file), (e: unknown) => e instanceof PmpdError && e.message === `${file}:2: choices[0].idxs has 1 entries for 2 turn(s)`);
    writeFileSync(file, `${JSON.stringify({ ...good, choices: [{ ...good.choices[0], precision_log: [{ four: 1 }, {}] }] })}\n`);
    assert.throws(() => readAnswerFile(file), /:1: choices\[0\]\.precision_log must be a list of \{bits: count\} objects/);
    writeFileSync(file, `${JSON.stringify({ ...good, question_id: 1.5 })}\n`);
    assert.throws(() => readAnswerFile(file), /:1: "question_id" must be an integer or a string/);
    assert.throws(() => readAnswerFile(join(dir, "none.jsonl")), /no such answer file/);
  } finally {
    cleanup();
  }
});
