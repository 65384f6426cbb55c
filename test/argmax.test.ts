import { test } from "node:test";
import assert from "node:assert/strict";
import { argmax } from "../src/util/argmax.js";
import { randomFloats } from "./helpers.js";

test("argmax: the first maximum, NaN ignored, over any array of numbers", () => {
  const x = randomFloats(1001, 41);
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  assert.equal(argmax(x), best);
  x[900] = x[best]! + 1;
  x[17] = x[900]!;
  x[500] = x[900]!;
  assert.equal(argmax(x), 17, "ties go to the first index");
  x[3] = NaN;
  x[0] = NaN;
  assert.equal(argmax(x), 17, "NaN is ignored");
  assert.equal(argmax(Float32Array.from([-0, 0, 0])), 0);
  assert.equal(argmax([-5, -5, -7]), 0);
  assert.equal(argmax(Float64Array.from([NaN, -Infinity, NaN])), 1);
  assert.equal(argmax([-Infinity, -Infinity]), 0);
  assert.equal(argmax([NaN, NaN]), 0);
  assert.equal(argmax([]), -1);
});
