/**
 * A content hash of a model, for provenance records: SHA-256 over config.json and the
 * weight files (for a multi-model JSON, over the JSON and every model it lists). Two runs
 * with the same hash used the same weights, whatever the paths.
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join } from "node:path";
import { autoGptqWeightFile } from "../io/autogptq.js";
import { readJsonFile } from "../io/config.js";

const cache = new Map<string, string>();

function hashFile(hash: ReturnType<typeof createHash>, file: string): void {
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.allocUnsafe(1 << 22);
    let pos = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** config.json, an AutoGPTQ quantize_config.json and the weight files the model loads (not other safetensors lying beside them). */
function modelFiles(dir: string): string[] {
  const names = new Set(readdirSync(dir));
  const files = ["config.json"];
  if (names.has("model.safetensors")) files.push("model.safetensors");
  else if (names.has("model.safetensors.index.json")) {
    const index = readJsonFile(join(dir, "model.safetensors.index.json"));
    files.push("model.safetensors.index.json", ...new Set(Object.values(index.weight_map as Record<string, string>)));
  } else {
    const autoGptq = autoGptqWeightFile(dir);
    if (autoGptq !== null) files.push(basename(autoGptq));
  }
  if (names.has("quantize_config.json")) files.push("quantize_config.json");
  return files.filter((f) => names.has(f)).sort();
}

export function modelHash(path: string): string {
  const key = `${path}:${existsSync(path) ? statSync(path).mtimeMs : 0}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const hash = createHash("sha256");
  if (statSync(path).isFile()) {
    hashFile(hash, path);
    const json = readJsonFile(path);
    for (const [k, v] of Object.entries(json).sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (typeof v !== "string") continue;
      hash.update(`${k}=`);
      hash.update(modelHash(isAbsolute(v) ? v : join(dirname(path), v)));
    }
  } else {
    for (const f of modelFiles(path)) {
      hash.update(`${f}\0`);
      hashFile(hash, join(path, f));
    }
  }
  const digest = `sha256:${hash.digest("hex")}`;
  cache.set(key, digest);
  return digest;
}
