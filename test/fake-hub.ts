/**
 * A minimal Hugging Face hub on 127.0.0.1 for tests: it serves the files of one local
 * folder as repository `repo` at revision "main", through the endpoints @huggingface/hub
 * uses (tree listing, paths-info, resolve with HTTP ranges).
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";

export interface FakeHub { url: string; requests: string[]; close: () => Promise<void> }

export const FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567";

export async function startFakeHub(repo: string, folder: string, extraListing: string[] = []): Promise<FakeHub> {
  const files = new Map<string, Buffer>();
  for (const name of readdirSync(folder)) files.set(name, readFileSync(join(folder, name)));
  const oid = (b: Buffer) => createHash("sha1").update(b).digest("hex");
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    requests.push(`${req.method} ${url.pathname}`);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "Content-Type": "application/json", ...headers });
      res.end(typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body));
    };
    if (req.method === "GET" && url.pathname === `/api/models/${repo}/tree/main`) {
      const listing = [...files].map(([path, b]) => ({ type: "file", path, oid: oid(b), size: b.length }));
      for (const path of extraListing) listing.push({ type: "file", path, oid: "0".repeat(40), size: 1 });
      return send(200, listing);
    }
    if (req.method === "POST" && url.pathname === `/api/models/${repo}/paths-info/main`) {
      let body = "";
      req.on("data", (c) => { body += c; });
      req.on("end", () => {
        const { paths } = JSON.parse(body) as { paths: string[] };
        send(200, paths.filter((p) => files.has(p)).map((p) => ({
          path: p, type: "file", oid: oid(files.get(p)!), size: files.get(p)!.length,
          lastCommit: { id: FAKE_COMMIT, title: "fixture", date: "2026-01-01T00:00:00.000Z" },
        })));
      });
      return;
    }
    const prefix = `/${repo}/resolve/main/`;
    if (req.method === "GET" && url.pathname.startsWith(prefix)) {
      const b = files.get(decodeURIComponent(url.pathname.slice(prefix.length)));
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
  if (address === null || typeof address === "string") throw new Error("fake hub has no port");
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
