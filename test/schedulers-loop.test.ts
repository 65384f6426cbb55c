import { test } from "node:test";
import assert from "node:assert/strict";
import {
  createScheduler, loadedPrecisions, pmpdDecode, precisionLogAverage, prefillPrecision, runPmpdLoop, runPmpdLoopAsync,
  type PmpdLoopResult, type Scheduler,
} from "../src/schedulers/index.js";

const V = 8;
const EOS = 0;

/** Logits whose argmax is `t`. */
function peaked(t: number): Float32Array {
  const l = new Float32Array(V);
  l[t] = 5;
  return l;
}

/**
 * A fake model: after consuming token t it predicts (t % 5) + 1, never EOS, unless
 * `eosAfter` forwards have run, then EOS. Records the precision of every forward.
 */
function fakeModel(eosAfter = Infinity) {
  const precisions: number[] = [];
  const forward = (token: number, precision: number) => {
    precisions.push(precision);
    return peaked(precisions.length >= eosAfter ? EOS : (token % 5) + 1);
  };
  return { forward, precisions };
}

function run(scheduler: Scheduler, maxNewTokens: number, eosAfter = Infinity, maxSteps?: number): PmpdLoopResult & { seen: number[] } {
  const m = fakeModel(eosAfter);
  const r = runPmpdLoop(peaked(1), m.forward, { scheduler, maxNewTokens, eosTokenIds: [EOS], maxSteps });
  assert.deepEqual(r.forwardPrecisions, m.precisions);
  return { ...r, seen: m.precisions };
}

test("the spec's worked example: naive {4,3}, high_bit_steps 85, 256 new tokens, no EOS", () => {
  const r = run(createScheduler("naive", { precisions: [4, 3], highBitSteps: 85 }), 256);
  assert.equal(r.newTokens, 257, "max_new_tokens + 1 tokens");
  assert.equal(r.tokens.length, 257);
  assert.equal(r.stoppedBy, "max_new_tokens");
  assert.deepEqual([...r.precisionLog.entries()], [[4, 84], [3, 172]], "keys in first-seen order");
  assert.equal(precisionLogAverage(r.precisionLog), 3.328125);
  assert.deepEqual(r.seen.slice(0, 85), Array(85).fill(4), "forward passes 1-85 at 4 bits");
  assert.deepEqual(r.seen.slice(85), Array(172).fill(3), "forward passes 86-257 at 3 bits");
  assert.equal(r.tokens[0], 1, "token 1 comes from the prefill logits");
});

test("high_bit_steps 0 and 1 behave identically: only the first decode forward is high", () => {
  const a = run(createScheduler("naive", { precisions: [4, 3], highBitSteps: 0 }), 20);
  const b = run(createScheduler("naive", { precisions: [4, 3], highBitSteps: 1 }), 20);
  assert.deepEqual(a, b);
  assert.deepEqual(a.seen, [4, ...Array(20).fill(3)]);
  assert.deepEqual([...a.precisionLog.entries()], [[3, 20]]);
});

test("high_bit_steps = N logs one low step whose logits are never used", () => {
  const r = run(createScheduler("naive", { precisions: [4, 3], highBitSteps: 256 }), 256);
  assert.deepEqual([...r.precisionLog.entries()], [[4, 255], [3, 1]]);
  assert.equal(r.seen[256], 3, "only the last forward, after the final token, is low");
});

test("EOS stops the loop; it is kept and counted, and its forward was spent", () => {
  const r = run(createScheduler("naive", { precisions: [4, 3], highBitSteps: 3 }), 256, 5);
  assert.equal(r.stoppedBy, "eos");
  assert.equal(r.newTokens, 6);
  assert.equal(r.tokens[5], EOS);
  assert.equal(r.seen.length, 6);
  assert.deepEqual([...r.precisionLog.entries()], [[4, 2], [3, 3]], "new_token - 1 = 5 entries");
  // An EOS predicted by the prefill ends after one forward, with an empty log.
  const m = fakeModel();
  const first = runPmpdLoop(peaked(EOS), m.forward, { scheduler: createScheduler("naive", { precisions: [4, 3], highBitSteps: 3 }), maxNewTokens: 10, eosTokenIds: [EOS] });
  assert.deepEqual([first.tokens, first.precisionLog.size, precisionLogAverage(first.precisionLog)], [[EOS], 0, null]);
});

test("maxNewTokens 0 gives one token; maxSteps caps the fp16-style loop at min(maxSteps, N+1)", () => {
  const zero = run(createScheduler("naive", { precisions: [16], highBitSteps: 0 }), 0);
  assert.equal(zero.newTokens, 1);
  const capped = run(createScheduler("naive", { precisions: [16], highBitSteps: 0 }), 300, Infinity, 256);
  assert.equal(capped.newTokens, 256);
  assert.equal(capped.stoppedBy, "max_steps");
  assert.deepEqual([...capped.precisionLog.entries()], [[16, 255]]);
  const small = run(createScheduler("naive", { precisions: [16], highBitSteps: 0 }), 10, Infinity, 256);
  assert.equal(small.newTokens, 11);
});

test("schedule gets index = new_token, the step's logits, the current precision and the kv-cache accessor; reset runs at both ends", () => {
  const calls: { index: number; precision: number; argmax: number; kv: boolean }[] = [];
  let resets = 0;
  const spy: Scheduler = {
    name: "spy", precisions: [3, 4],
    reset: () => { resets++; },
    schedule: (i) => {
      calls.push({ index: i.index, precision: i.precision, argmax: i.logits.indexOf(5), kv: i.kvCache !== undefined });
      return 3;
    },
    params: () => ({}),
  };
  const m = fakeModel();
  const kvCache = () => ({ keys: new Float32Array(0), values: new Float32Array(0), numKvHeads: 1, length: 0, headDim: 1 });
  const r = runPmpdLoop(peaked(1), m.forward, { scheduler: spy, maxNewTokens: 3, eosTokenIds: [EOS], kvCache });
  assert.equal(resets, 2);
  assert.deepEqual(m.precisions, [4, 3, 3, 3], "the first decode forward runs at max(scheduler precisions)");
  assert.deepEqual(calls.map((c) => [c.index, c.precision, c.kv]), [[1, 4, true], [2, 3, true], [3, 3, true]]);
  assert.deepEqual(calls.map((c) => c.argmax), r.tokens.slice(1, 4), "logits passed are the ones that produce the next token");
});

test("the async driver and the generator give the same result as the sync one", async () => {
  const sync = run(createScheduler("naive", { precisions: [4, 3], highBitSteps: 7 }), 30);
  const m = fakeModel();
  const asyncR = await runPmpdLoopAsync(peaked(1), async (t, p) => m.forward(t, p), { scheduler: createScheduler("naive", { precisions: [4, 3], highBitSteps: 7 }), maxNewTokens: 30, eosTokenIds: [EOS] });
  assert.deepEqual(asyncR.tokens, sync.tokens);
  assert.deepEqual(asyncR.precisionLog, sync.precisionLog);
  const gen = pmpdDecode(peaked(1), { scheduler: createScheduler("naive", { precisions: [4, 3], highBitSteps: 7 }), maxNewTokens: 2, eosTokenIds: [EOS] });
  const first = gen.next();
  assert.deepEqual(first.value, { token: 1, precision: 4, step: 1 });
});

test("prefill precision: explicit prefill bit, else the largest loaded precision", () => {
  assert.equal(prefillPrecision([4, 3, 2]), 4);
  assert.equal(prefillPrecision([3, 2], 8), 8);
  assert.deepEqual(loadedPrecisions([3, 2], 8), [8, 3, 2]);
  assert.deepEqual(loadedPrecisions([4, 3]), [4, 3]);
});
