import { test } from "node:test";
import assert from "node:assert/strict";
import { averageBits, averageNewTokens, tokensPerSecond } from "../src/score/index.js";
import type { AnswerRecord } from "../src/score/index.js";

function record(
  id: number,
  turns: Array<{ new_tokens: number; wall_time: number; log: Record<string, number> }>,
): AnswerRecord {
  return {
    question_id: id,
    answer_id: `a${id}`,
    model_id: "test-model",
    choices: [
      {
        index: 0,
        turns: turns.map((_, i) => `turn ${i}`),
        idxs: turns.map(() => 0),
        new_tokens: turns.map((t) => t.new_tokens),
        wall_time: turns.map((t) => t.wall_time),
        precision_log: turns.map((t) => t.log),
      },
    ],
    tstamp: 1700000000 + id,
  };
}

test("averageBits: step-weighted per question, then the plain mean over questions", () => {
  const q1 = record(1, [{ new_tokens: 256, wall_time: 4, log: { "4": 84, "3": 172 } }]);
  assert.equal(averageBits([q1]), 3.328125);
  // Summed over turns before dividing: (4*10 + 3*10 + 2*20) / 40 = 2.75.
  const q2 = record(2, [
    { new_tokens: 20, wall_time: 1, log: { "4": 10, "3": 10 } },
    { new_tokens: 20, wall_time: 1, log: { "2": 20 } },
  ]);
  assert.equal(averageBits([q2]), 2.75);
  // Questions with empty logs are skipped.
  const q3 = record(3, [{ new_tokens: 5, wall_time: 1, log: {} }]);
  assert.equal(averageBits([q1, q2, q3]), (3.328125 + 2.75) / 2);
  assert.ok(Number.isNaN(averageBits([q3])));
  assert.ok(Number.isNaN(averageBits([])));
});

test("averageNewTokens: mean over all turns of all questions", () => {
  const q1 = record(1, [{ new_tokens: 10, wall_time: 1, log: {} }]);
  const q2 = record(2, [
    { new_tokens: 20, wall_time: 2, log: {} },
    { new_tokens: 60, wall_time: 2, log: {} },
  ]);
  assert.equal(averageNewTokens([q1, q2]), 30);
  assert.ok(Number.isNaN(averageNewTokens([])));
});

test("tokensPerSecond: total tokens over total wall time", () => {
  const q1 = record(1, [{ new_tokens: 10, wall_time: 1, log: {} }]);
  const q2 = record(2, [
    { new_tokens: 20, wall_time: 2, log: {} },
    { new_tokens: 60, wall_time: 2, log: {} },
  ]);
  assert.equal(tokensPerSecond([q1, q2]), 90 / 5);
  assert.ok(Number.isNaN(tokensPerSecond([record(3, [{ new_tokens: 4, wall_time: 0, log: {} }])])));
});
