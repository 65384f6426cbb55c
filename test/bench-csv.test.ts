import { test } from "node:test";
import assert from "node:assert/strict";
import { PmpdError } from "../src/errors.js";
import { csvRecords, parseCsv } from "../src/bench/csv.js";

const fields = (text: string) => parseCsv(text, "t.csv").map((r) => r.fields);

test("plain fields, LF and CRLF record ends, final newline optional", () => {
  assert.deepEqual(fields("a,b,c\n1,2,3\n"), [["a", "b", "c"], ["1", "2", "3"]]);
  assert.deepEqual(fields("a,b\r\n1,2\r\n"), [["a", "b"], ["1", "2"]]);
  assert.deepEqual(fields("a,b\r\n1,2"), [["a", "b"], ["1", "2"]]);
  assert.deepEqual(fields(""), []);
  assert.deepEqual(fields("\ufeffx,y\n"), [["x", "y"]], "a byte-order mark is ignored");
});

test("quoted fields: commas, doubled quotes, embedded CRLF and LF newlines", () => {
  const text = 'id,text\n1,"Hello, world"\n2,"She said ""yes""."\n3,"line one\nline two\r\nline three"\n4,""\n';
  assert.deepEqual(fields(text), [
    ["id", "text"], ["1", "Hello, world"], ["2", 'She said "yes".'], ["3", "line one\nline two\r\nline three"], ["4", ""],
  ]);
  const rows = parseCsv(text, "t.csv");
  assert.deepEqual(rows.map((r) => r.line), [1, 2, 3, 4, 7], "line numbers count embedded newlines");
});

test("empty fields and trailing commas", () => {
  assert.deepEqual(fields("a,,c\n,,\n"), [["a", "", "c"], ["", "", ""]]);
  assert.deepEqual(fields("a,"), [["a", ""]]);
  assert.deepEqual(fields('"a",'), [["a", ""]]);
});

test("a quote inside an unquoted field is kept", () => {
  assert.deepEqual(fields('5" tall,x\n'), [['5" tall', "x"]]);
});

test("errors name the file and line", () => {
  assert.throws(() => parseCsv('a,b\n1,"open\n\n', "t.csv"), (e: unknown) => e instanceof PmpdError && e.message === "t.csv:2: unterminated quoted field");
  assert.throws(() => parseCsv('a,b\n"x"y,2\n', "t.csv"), (e: unknown) => e instanceof PmpdError && /^t\.csv:2: unexpected text after a closing quote/.test(e.message));
  assert.throws(() => csvRecords("a,b\n1,2,3\n", "t.csv"), (e: unknown) => e instanceof PmpdError && e.message === "t.csv:2: 3 field(s) where the header has 2");
  assert.throws(() => csvRecords("a,a\n1,2\n", "t.csv"), (e: unknown) => e instanceof PmpdError && /column "a" twice/.test(e.message));
});

test("csvRecords keys rows by the header and skips blank lines", () => {
  const recs = csvRecords('id,article,highlights\n7,"A, B","x\ny"\n\n8,C,D\n', "t.csv");
  assert.deepEqual(recs, [
    { line: 2, record: { id: "7", article: "A, B", highlights: "x\ny" } },
    { line: 5, record: { id: "8", article: "C", highlights: "D" } },
  ]);
});
