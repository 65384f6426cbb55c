/**
 * Fetching a benchmark's data file from the Hugging Face hub, for runs that give no local
 * file and want the real dataset rather than the bundled fixture.
 *
 * pmpd reads JSON Lines, JSON and CSV, not parquet or the zipped XML of IWSLT, so only
 * repositories that publish one of those for the split can be used. Each benchmark has its
 * known dataset repository; the file is found by listing the repository (under the
 * config's folder, where there is one) for a .jsonl/.json/.csv file named after the split
 * (mt_bench: the fixed `raw/question.jsonl`). When the repository has no such file (at the
 * time of writing cnn_dm and gsm8k publish parquet, IWSLT zipped XML) the error names what
 * it found and asks for a local file (`--bench-file`), exported e.g. with the `datasets`
 * library. Offline (option or HF_HUB_OFFLINE=1) only the hub cache is searched. Files are
 * cached in the standard HF layout (`datasets--org--name/...`), shared with Python tools.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { basename, extname, join, relative, sep } from "node:path";
import { downloadFileToCacheDir, listFiles } from "@huggingface/hub";
import { PmpdError } from "../errors.js";
import { checkRepoFileName, hubCacheDir, isOfflineByEnv } from "../io/hub.js";
import { canonicalBenchName } from "./fixtures.js";
import type { Split } from "./types.js";

export interface HubDataSource {
  /** Dataset repository id. */
  repo: string;
  /** Folder of the config inside the repository ("" for the root). */
  dir: string;
  /** The split name in the repository's file names, per pmpd split. */
  splitNames: Record<Split, string>;
  /** A fixed file, when the repository's layout is known. */
  fixedPath?: string;
}

export const HUB_DATA_SOURCES: Record<string, HubDataSource | null> = {
  cnn_dm: { repo: "abisee/cnn_dailymail", dir: "3.0.0", splitNames: { test: "test", validation: "validation" } },
  dsum: { repo: "knkarthick/dialogsum", dir: "", splitNames: { test: "test", validation: "validation" } },
  iwslt: { repo: "IWSLT/iwslt2017", dir: "", splitNames: { test: "test", validation: "validation" } },
  mt_bench: { repo: "HuggingFaceH4/mt_bench_prompts", dir: "", splitNames: { test: "train", validation: "train" }, fixedPath: "raw/question.jsonl" },
  gsm8k: { repo: "openai/gsm8k", dir: "main", splitNames: { test: "test", validation: "train" } },
  strategyqa: { repo: "ChilleD/StrategyQA", dir: "", splitNames: { test: "test", validation: "train" } },
  passkey: null,
  "bench-file": null,
};

export interface BenchmarkHubOptions {
  offline?: boolean;
  cacheDir?: string;
  hubUrl?: string;
  revision?: string;
  accessToken?: string;
}

const READABLE = [".jsonl", ".json", ".csv"];

/** Whether `path` (in the repository) is a data file for split `name` under `dir`. */
function matchesSplit(path: string, dir: string, name: string): boolean {
  if (dir !== "" && !path.startsWith(`${dir}/`)) return false;
  const base = basename(path).toLowerCase();
  return new RegExp(`(^|[^a-z])${name}([^a-z]|$)`).test(base.slice(0, base.length - extname(base).length)) ||
    path.toLowerCase().split("/").slice(0, -1).includes(name);
}

function pick(paths: string[], source: HubDataSource, split: Split): { file: string | null; others: string[] } {
  if (source.fixedPath) return { file: paths.includes(source.fixedPath) ? source.fixedPath : null, others: [] };
  const name = source.splitNames[split];
  const forSplit = paths.filter((p) => matchesSplit(p, source.dir, name));
  const readable = forSplit.filter((p) => READABLE.includes(extname(p).toLowerCase()));
  if (readable.length > 1) {
    // Prefer JSON Lines, then JSON, then CSV; several shards of one kind cannot be merged here.
    for (const ext of READABLE) {
      const of = readable.filter((p) => extname(p).toLowerCase() === ext);
      if (of.length === 1) return { file: of[0]!, others: [] };
      if (of.length > 1) {
        throw new PmpdError(`${source.repo}: the ${name} split is split into ${of.length} files (${of.join(", ")}); concatenate them and pass the result as a local file (--bench-file)`);
      }
    }
  }
  return { file: readable[0] ?? null, others: forSplit };
}

function cachedFiles(cacheDir: string, repo: string, revision: string): { snapshot: string; paths: string[] } | null {
  const folder = join(cacheDir, `datasets--${repo.replace(/\//g, "--")}`);
  const ref = join(folder, "refs", revision);
  const commit = existsSync(ref) ? readFileSync(ref, "utf8").trim() : /^[0-9a-f]{40}$/.test(revision) ? revision : null;
  if (commit === null) return null;
  const snapshot = join(folder, "snapshots", commit);
  if (!existsSync(snapshot)) return null;
  const paths: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else paths.push(relative(snapshot, p).split(sep).join("/"));
    }
  };
  walk(snapshot);
  return { snapshot, paths };
}

function passLocalFile(bench: string, split: Split): string {
  return `pass a local ${split} file of ${bench} with --bench-file (JSONL, JSON or CSV in the dataset's original schema)`;
}

/**
 * A local copy of `bench`'s `split` data from the hub (downloaded into the HF cache when
 * online), or null for passkey, which is generated. Errors are PmpdErrors that tell the
 * user to pass a local file.
 */
export async function resolveBenchmarkFile(bench: string, split: Split, options: BenchmarkHubOptions = {}): Promise<string | null> {
  const name = canonicalBenchName(bench);
  if (!(name in HUB_DATA_SOURCES)) {
    throw new PmpdError(`unknown benchmark "${bench}" (known: ${Object.keys(HUB_DATA_SOURCES).join(", ")})`);
  }
  const source = HUB_DATA_SOURCES[name];
  if (source === null) {
    if (name === "passkey") return null;
    throw new PmpdError(`${bench} has no hub dataset: pass your prompts file with --bench-file`);
  }
  const revision = options.revision ?? "main";
  const cacheDir = options.cacheDir ?? hubCacheDir();
  const offline = options.offline ?? isOfflineByEnv();
  const cached = cachedFiles(cacheDir, source.repo, revision);
  if (cached) {
    const { file } = pick(cached.paths, source, split);
    if (file !== null) return join(cached.snapshot, file);
  }
  if (offline) {
    throw new PmpdError(`${name}: dataset ${source.repo} is not in the hub cache ${cacheDir} and offline mode is on (--offline / HF_HUB_OFFLINE); ${passLocalFile(name, split)}`);
  }
  const hubUrl = (options.hubUrl ?? process.env.HF_ENDPOINT ?? "https://huggingface.co").replace(/\/+$/, "");
  const accessToken = options.accessToken ?? process.env.HF_TOKEN;
  const credentials = accessToken ? { accessToken } : {};
  const repo = { type: "dataset" as const, name: source.repo };
  const saved = console.debug;
  console.debug = (...args: unknown[]) => { if (process.env.PMPD_VERBOSE) console.error(...args); };
  try {
    const paths: string[] = [];
    try {
      for await (const entry of listFiles({ repo, revision, hubUrl, recursive: true, ...credentials })) {
        if (entry.type !== "file") continue;
        checkRepoFileName(source.repo, entry.path);
        paths.push(entry.path);
      }
    } catch (e) {
      if (e instanceof PmpdError) throw e;
      throw new PmpdError(`${name}: cannot list dataset ${source.repo} on ${hubUrl} (${(e as Error).message}); ${passLocalFile(name, split)}`);
    }
    const { file, others } = pick(paths, source, split);
    if (file === null) {
      const found = others.length > 0 ? `it has ${others.slice(0, 4).join(", ")}${others.length > 4 ? ", ..." : ""}` : `no file for the ${source.splitNames[split]} split was recognised`;
      throw new PmpdError(`${name}: dataset ${source.repo} has no JSONL, JSON or CSV file pmpd can read for the ${split} split (${found}); ${passLocalFile(name, split)}`);
    }
    let local: string;
    try {
      local = await downloadFileToCacheDir({ repo, path: file, revision, hubUrl, cacheDir, ...credentials });
    } catch (e) {
      throw new PmpdError(`${name}: download of ${file} from dataset ${source.repo} failed (${(e as Error).message}); ${passLocalFile(name, split)}`);
    }
    // Record revision -> commit so that offline runs find the snapshot.
    const parts = local.split(/[/\\]/);
    const at = parts.lastIndexOf("snapshots");
    if (at >= 0 && parts[at + 1] && !revision.includes("/") && !/^[0-9a-f]{40}$/.test(revision)) {
      const refs = join(cacheDir, `datasets--${source.repo.replace(/\//g, "--")}`, "refs");
      mkdirSync(refs, { recursive: true });
      const tmp = join(refs, `.${revision}.tmp-${process.pid}`);
      writeFileSync(tmp, parts[at + 1]!);
      renameSync(tmp, join(refs, revision));
    }
    return local;
  } finally {
    console.debug = saved;
  }
}
