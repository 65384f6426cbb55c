import { test } from "node:test";
import assert from "node:assert/strict";
import { gsm8kExtractNumber, gsm8kReference, gsm8kCorrect, passkeyCorrect, accuracy } from "../src/score/index.js";

test("gsm8kExtractNumber takes the last number, commas removed, sign and decimals kept", () => {
  assert.equal(gsm8kExtractNumber("She pays 3 * 4 = 12 dollars, so the answer is 18."), 18);
  assert.equal(gsm8kExtractNumber("Total: $1,234,567.50"), 1234567.5);
  assert.equal(gsm8kExtractNumber("The change is -3.25 degrees"), -3.25);
  assert.equal(gsm8kExtractNumber("so x = +4"), 4);
  assert.equal(gsm8kExtractNumber("pages 10-15"), 15);
  assert.equal(gsm8kExtractNumber("about .5 of it"), 0.5);
  assert.equal(gsm8kExtractNumber("50% of them"), 50);
  assert.equal(gsm8kExtractNumber("1, 2, and 3"), 3);
  assert.equal(gsm8kExtractNumber("no digits here"), null);
  assert.equal(gsm8kExtractNumber(""), null);
});

test("gsm8kReference reads the number after ####, else the last number", () => {
  assert.equal(gsm8kReference("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72"), 72);
  assert.equal(gsm8kReference("blah 5 then 7\n#### 1,000"), 1000);
  assert.equal(gsm8kReference("#### -3"), -3);
  assert.equal(gsm8kReference("no marker, answer 42"), 42);
  assert.equal(gsm8kReference(17), 17);
  assert.equal(gsm8kReference("nothing"), null);
});

test("gsm8kCorrect compares with a 1e-6 tolerance", () => {
  const answer = "He has 5 + 13 = <<5+13=18>>18 apples.\n#### 18";
  assert.equal(gsm8kCorrect("5 + 13 = 18. The answer is 18.", answer), true);
  assert.equal(gsm8kCorrect("The answer is 18.0000001", answer), true);
  assert.equal(gsm8kCorrect("The answer is 18.001", answer), false);
  assert.equal(gsm8kCorrect("The answer is 18 apples, not 19", answer), false);
  assert.equal(gsm8kCorrect("I don't know", answer), false);
  assert.equal(gsm8kCorrect("answer: 1,000", "#### 1000"), true);
  assert.equal(gsm8kCorrect("answer: -7", "#### -7"), true);
});

test("passkeyCorrect uses the first run of digits, exactly", () => {
  assert.equal(passkeyCorrect("The pass key is 68613. Remember it: 68613.", "68613"), true);
  assert.equal(passkeyCorrect("The pass key is 68613.", 68613), true);
  assert.equal(passkeyCorrect("Key 1 is 68613", "68613"), false);
  assert.equal(passkeyCorrect("686130", "68613"), false);
  assert.equal(passkeyCorrect("The pass key is 0042", "0042"), true);
  assert.equal(passkeyCorrect("The pass key is 0042", 42), false);
  assert.equal(passkeyCorrect("no key", "1"), false);
  assert.equal(passkeyCorrect("x 123 ", " 123 "), true);
});

test("accuracy is the fraction of hits", () => {
  assert.equal(accuracy([true, false, true, true]), 0.75);
  assert.ok(Number.isNaN(accuracy([])));
});
