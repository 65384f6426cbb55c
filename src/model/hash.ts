/**
 * A content hash of a model, for provenance records: SHA-256 over config.json (and the
 * settings file of a layout that keeps its own, AutoGPTQ's quantize_config.json) and the
 * weight files (for a multi-model JSON, over the JSON and the models it lists: those of the
 * precisions a run loaded, when given, and the float model). Two runs with the same hash
 * used the same weights, whatever the paths.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join } from "node:path";
import { checkpointOf } from "../formats/registry.js";
import { readJsonFile } from "../io/config.js";
import { hashFileInto } from "../io/file-hash.js";

const cache = new Map<string, string>();

/**
 * config.json, a layout's own settings file and the weight files the model loads (not other
 * safetensors lying beside them).
 */
function modelFiles(dir: string): string[] {
  const names = new Set(readdirSync(dir));
  const checkpoint = checkpointOf(dir, readJsonFile(join(dir, "config.json")));
  const files = ["config.json", basename(checkpoint.settingsFile)];
  if (names.has("model.safetensors")) files.push("model.safetensors");
  else if (names.has("model.safetensors.index.json")) {
    const index = readJsonFile(join(dir, "model.safetensors.index.json"));
    files.push("model.safetensors.index.json", ...new Set(Object.values(index.weight_map as Record<string, string>)));
  } else if (checkpoint.weightFile !== null) files.push(basename(checkpoint.weightFile));
  return [...new Set(files)].filter((f) => names.has(f)).sort();
}

export function modelHash(path: string, precisions?: readonly number[]): string {
  const key = `${path}:${existsSync(path) ? statSync(path).mtimeMs : 0}:${precisions?.join(",") ?? "all"}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const hash = createHash("sha256");
  if (statSync(path).isFile()) {
    hashFileInto(hash, path);
    const json = readJsonFile(path);
    for (const [k, v] of Object.entries(json).sort(([a], [b]) => (a < b ? -1 : 1))) {
      // A checkpoint the run did not load is not part of what made its outputs.
      if (typeof v !== "string" || (precisions !== undefined && k !== "model_path" && !precisions.includes(Number(k)))) continue;
      hash.update(`${k}=`);
      hash.update(modelHash(isAbsolute(v) ? v : join(dirname(path), v)));
    }
  } else {
    for (const f of modelFiles(path)) {
      hash.update(`${f}\0`);
      hashFileInto(hash, join(path, f));
    }
  }
  const digest = `sha256:${hash.digest("hex")}`;
  cache.set(key, digest);
  return digest;
}
