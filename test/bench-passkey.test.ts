import { test } from "node:test";
import assert from "node:assert/strict";
import { PmpdError } from "../src/errors.js";
import { REFERENCE_TEMPLATE, PASSKEY_GARBAGE, getBenchmark, passkeyText } from "../src/bench/index.js";

const INSTRUCTION = "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you about the important information there.";
const GARBAGE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

test("the reference layout: 5 lines, garbage around the key, empty line for prefix 0", () => {
  assert.equal(PASSKEY_GARBAGE, GARBAGE);
  assert.equal(passkeyText("123", 2, 3),
    `${INSTRUCTION}\n${GARBAGE}${GARBAGE}\nThe pass key is 123. Remember it. 123 is the pass key.\n${GARBAGE}\nWhat is the pass key? The pass key is`);
  assert.equal(passkeyText("9", 0, 1),
    `${INSTRUCTION}\n\nThe pass key is 9. Remember it. 9 is the pass key.\n${GARBAGE}\nWhat is the pass key? The pass key is`);
});

test("reference defaults: 100 prompts, 200-digit keys, 8 blocks split around the key", () => {
  const qs = getBenchmark("passkey").load({ split: "test", seed: 0 });
  assert.equal(qs.length, 100);
  assert.deepEqual(qs.map((q) => q.questionId), Array.from({ length: 100 }, (_, i) => i));
  const prefixes = new Set<number>();
  for (const q of qs) {
    assert.match(q.passKey!, /^\d{200}$/);
    assert.equal(q.reference, q.passKey);
    const lines = q.turns[0]!.split("\n");
    assert.equal(lines.length, 5);
    const before = lines[1]!.split(GARBAGE).length - 1;
    const after = lines[3]!.split(GARBAGE).length - 1;
    assert.equal(before + after, 8);
    assert.equal(before, q.extra!.prefix_blocks);
    prefixes.add(before);
    assert.equal(lines[2], `The pass key is ${q.passKey}. Remember it. ${q.passKey} is the pass key.`);
  }
  assert.ok(prefixes.size >= 7, "prefixes cover 0..8");
});

test("seeded: same seed same prompts, other seed other prompts; validation equals test", () => {
  const b = getBenchmark("passkey");
  const a = b.load({ split: "test", seed: 7, passkeyCount: 5, passkeyDigits: 12, garbageBlocks: 2 });
  assert.deepEqual(b.load({ split: "test", seed: 7, passkeyCount: 5, passkeyDigits: 12, garbageBlocks: 2 }), a);
  assert.deepEqual(b.load({ split: "validation", seed: 7, passkeyCount: 5, passkeyDigits: 12, garbageBlocks: 2 }), a);
  assert.notDeepEqual(b.load({ split: "test", seed: 8, passkeyCount: 5, passkeyDigits: 12, garbageBlocks: 2 }), a);
  assert.ok(a.every((q) => /^\d{12}$/.test(q.passKey!)));
  assert.deepEqual(b.answerFields(a[0]!), { pass_key: a[0]!.passKey });
  assert.equal(b.buildPrompt(a[0]!, 0, [], REFERENCE_TEMPLATE), `\n\nHuman: ${a[0]!.turns[0]}\n\nAssistant:`);
  assert.deepEqual(b.load({ split: "test", seed: 7, passkeyCount: 5, passkeyDigits: 12, garbageBlocks: 2, questionBegin: 3 }), a.slice(3));
});

test("bad passkey options are user errors", () => {
  const b = getBenchmark("passkey");
  assert.throws(() => b.load({ split: "test", seed: 0, passkeyDigits: 0 }), PmpdError);
  assert.throws(() => b.load({ split: "test", seed: 0, garbageBlocks: -1 }), PmpdError);
  assert.throws(() => b.load({ split: "test", seed: 0, passkeyCount: 1.5 }), PmpdError);
});
