import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { PmpdError } from "../src/errors.js";
import { getBenchmark, resolveBenchmarkFile } from "../src/bench/index.js";
import { tempDir } from "./helpers.js";

const COMMIT = "fedcba9876543210fedcba9876543210fedcba98";

/** A minimal hub serving one DATASET repository from an in-memory file map. */
async function fakeDatasetHub(repo: string, files: Record<string, string>): Promise<{ url: string; requests: string[]; close: () => Promise<void> }> {
  const blobs = new Map(Object.entries(files).map(([p, t]) => [p, Buffer.from(t)]));
  const oid = (b: Buffer) => createHash("sha1").update(b).digest("hex");
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    requests.push(`${req.method} ${url.pathname}`);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "Content-Type": "application/json", ...headers });
      res.end(Buffer.isBuffer(body) ? body : JSON.stringify(body));
    };
    if (req.method === "GET" && url.pathname === `/api/datasets/${repo}/tree/main`) {
      return send(200, [...blobs].map(([path, b]) => ({ type: "file", path, oid: oid(b), size: b.length })));
    }
    if (req.method === "POST" && url.pathname === `/api/datasets/${repo}/paths-info/main`) {
      let body = "";
      req.on("data", (c) => { body += c; });
      req.on("end", () => {
        const { paths } = JSON.parse(body) as { paths: string[] };
        send(200, paths.filter((p) => blobs.has(p)).map((p) => ({
          path: p, type: "file", oid: oid(blobs.get(p)!), size: blobs.get(p)!.length,
          lastCommit: { id: COMMIT, title: "fixture", date: "2026-01-01T00:00:00.000Z" },
        })));
      });
      return;
    }
    const prefix = `/datasets/${repo}/resolve/main/`;
    if (req.method === "GET" && url.pathname.startsWith(prefix)) {
      const b = blobs.get(decodeURIComponent(url.pathname.slice(prefix.length)));
      if (!b) return send(404, { error: "Entry not found" }, { "X-Error-Code": "EntryNotFound" });
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
      const headers = { "Content-Type": "application/octet-stream", ETag: `"${oid(b)}"`, "Accept-Ranges": "bytes" };
      if (range) {
        const start = Number(range[1]), end = range[2] ? Math.min(Number(range[2]), b.length - 1) : b.length - 1;
        return send(206, b.subarray(start, end + 1), { ...headers, "Content-Range": `bytes ${start}-${end}/${b.length}` });
      }
      return send(200, b, headers);
    }
    send(404, { error: "not found" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

const DSUM_TEST = `${JSON.stringify({ id: "t0", dialogue: "#Person1#: Hi.\n#Person2#: Hello.", summary: "They greet.", topic: "greeting" })}\n`;

test("downloads the split's file of a dataset repo into the HF cache, then finds it offline", async () => {
  const hub = await fakeDatasetHub("knkarthick/dialogsum", {
    "train.csv": "id,dialogue,summary,topic\n", "validation.csv": "id,dialogue,summary,topic\n", "test.jsonl": DSUM_TEST, "README.md": "# card",
  });
  const { dir: cache, cleanup } = tempDir();
  try {
    await assert.rejects(resolveBenchmarkFile("dsum", "test", { cacheDir: cache, offline: true }),
      (e: unknown) => e instanceof PmpdError && /offline mode is on.*--bench-file/.test(e.message));
    const file = await resolveBenchmarkFile("dsum", "test", { cacheDir: cache, hubUrl: hub.url });
    assert.ok(file !== null);
    assert.equal(file, join(cache, "datasets--knkarthick--dialogsum", "snapshots", COMMIT, "test.jsonl"));
    assert.equal(readFileSync(file, "utf8"), DSUM_TEST);
    assert.equal(readFileSync(join(cache, "datasets--knkarthick--dialogsum", "refs", "main"), "utf8"), COMMIT);
    const qs = getBenchmark("dsum").load({ file, split: "test", seed: 0 });
    assert.equal(qs[0]!.reference, "They greet.");
    const before = hub.requests.length;
    assert.equal(await resolveBenchmarkFile("dsum", "test", { cacheDir: cache, offline: true }), file);
    assert.equal(hub.requests.length, before, "offline resolution makes no request");
    const val = await resolveBenchmarkFile("dsum", "validation", { cacheDir: cache, hubUrl: hub.url });
    assert.match(val!, /validation\.csv$/);
  } finally {
    await hub.close();
    cleanup();
  }
});

test("mt_bench uses the repository's raw/question.jsonl", async () => {
  const line = `${JSON.stringify({ question_id: 81, category: "writing", prompt: ["Hello", " world"], reference: [] })}\n`;
  const hub = await fakeDatasetHub("HuggingFaceH4/mt_bench_prompts", { "raw/question.jsonl": line, "data/train-00000-of-00001.parquet": "PAR1" });
  const { dir: cache, cleanup } = tempDir();
  try {
    const file = await resolveBenchmarkFile("mt_bench", "validation", { cacheDir: cache, hubUrl: hub.url });
    const [q] = getBenchmark("mt_bench").load({ file: file!, split: "test", seed: 0 });
    assert.equal(q!.questionId, 74134844);
  } finally {
    await hub.close();
    cleanup();
  }
});

test("a repository with only parquet for the split is a clear error asking for a local file", async () => {
  const hub = await fakeDatasetHub("openai/gsm8k", { "main/test-00000-of-00001.parquet": "PAR1", "main/train-00000-of-00001.parquet": "PAR1" });
  const { dir: cache, cleanup } = tempDir();
  try {
    await assert.rejects(resolveBenchmarkFile("gsm8k", "validation", { cacheDir: cache, hubUrl: hub.url }),
      (e: unknown) => e instanceof PmpdError && /openai\/gsm8k has no JSONL, JSON or CSV file .*main\/train-00000-of-00001\.parquet.*--bench-file/.test(e.message));
    assert.ok(!existsSync(join(cache, "datasets--openai--gsm8k", "blobs")), "nothing was downloaded");
  } finally {
    await hub.close();
    cleanup();
  }
});

test("an unreachable hub, passkey, bench-file and unknown names", async () => {
  const { dir: cache, cleanup } = tempDir();
  try {
    await assert.rejects(resolveBenchmarkFile("cnn_dm", "test", { cacheDir: cache, hubUrl: "http://127.0.0.1:9" }),
      (e: unknown) => e instanceof PmpdError && /cannot list dataset abisee\/cnn_dailymail.*--bench-file/.test(e.message));
    assert.equal(await resolveBenchmarkFile("passkey", "test", { cacheDir: cache }), null);
    await assert.rejects(resolveBenchmarkFile("bench-file", "test", { cacheDir: cache }), PmpdError);
    await assert.rejects(resolveBenchmarkFile("nope", "test", { cacheDir: cache }), /unknown benchmark "nope"/);
  } finally {
    cleanup();
  }
});

test("HF_HUB_OFFLINE=1 counts as offline", async () => {
  const { dir: cache, cleanup } = tempDir();
  const saved = process.env.HF_HUB_OFFLINE;
  process.env.HF_HUB_OFFLINE = "1";
  try {
    await assert.rejects(resolveBenchmarkFile("IWSLT", "test", { cacheDir: cache }), (e: unknown) => e instanceof PmpdError && /iwslt: .*offline mode/.test(e.message));
  } finally {
    if (saved === undefined) delete process.env.HF_HUB_OFFLINE; else process.env.HF_HUB_OFFLINE = saved;
    cleanup();
  }
});
