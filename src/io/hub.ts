/**
 * Resolving a model name to a local directory in the Hugging Face layout.
 *
 * A path that exists is used as it is. Anything else of the form `org/name` is a hub
 * repository: its model files are downloaded with @huggingface/hub into the standard HF
 * cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`), laid out
 * as `models--org--name/{blobs,snapshots/<commit>,refs/<revision>}` so that Python tools
 * share it. With `offline` (or HF_HUB_OFFLINE=1) only the cache is consulted.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";
import { downloadFileToCacheDir, listFiles } from "@huggingface/hub";
import { PmpdError } from "../errors.js";

export interface HubOptions {
  /** Base URL of the hub; default $HF_ENDPOINT or https://huggingface.co. */
  hubUrl?: string;
  cacheDir?: string;
  offline?: boolean;
  revision?: string;
  accessToken?: string;
}

const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The files pmpd needs from a model repository; weights are safetensors only, never pickle. */
function isModelFile(path: string): boolean {
  return /^(config|generation_config|tokenizer|tokenizer_config|special_tokens_map|quantize_config)\.json$/.test(path) ||
    path === "model.safetensors.index.json" || /^[^/]+\.safetensors$/.test(path) || path === "pmpd.json";
}

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HF_HOME) return join(env.HF_HOME, "hub");
  return join(homedir(), ".cache", "huggingface", "hub");
}

export function isOfflineByEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env.HF_HUB_OFFLINE ?? "").toLowerCase();
  return v === "1" || v === "true" || v === "yes" || v === "on";
}

/** Rejects repository file names that could escape the cache folder. */
export function checkRepoFileName(repo: string, path: string): void {
  if (path === "" || isAbsolute(path) || path.startsWith("/") || path.startsWith("\\") ||
      /(^|[/\\])\.\.([/\\]|$)/.test(path) || path.includes("\0") || /^[A-Za-z]:/.test(path)) {
    throw new PmpdError(`${repo}: refusing unsafe file name "${path}" from the hub (absolute or containing "..")`);
  }
}

function repoFolder(cacheDir: string, repo: string): string {
  return join(cacheDir, `models--${repo.replace(/\//g, "--")}`);
}

/** The cached snapshot of `repo` at `revision`, or null when there is none. */
function cachedSnapshot(cacheDir: string, repo: string, revision: string): string | null {
  const folder = repoFolder(cacheDir, repo);
  const refFile = join(folder, "refs", revision);
  const commit = existsSync(refFile) ? readFileSync(refFile, "utf8").trim() : /^[0-9a-f]{40}$/.test(revision) ? revision : null;
  if (commit === null) return null;
  const snapshot = join(folder, "snapshots", commit);
  return existsSync(join(snapshot, "config.json")) ? snapshot : null;
}

/**
 * @huggingface/hub reports downloads with console.debug, which goes to stdout; pmpd keeps
 * stdout for results (`--json`), so those lines are sent to stderr while it runs.
 */
async function withHubLogsOnStderr<T>(work: () => Promise<T>): Promise<T> {
  const saved = console.debug;
  console.debug = (...args: unknown[]) => { if (process.env.PMPD_VERBOSE) console.error(...args); };
  try {
    return await work();
  } finally {
    console.debug = saved;
  }
}

async function downloadSnapshot(repo: string, revision: string, cacheDir: string, hubUrl: string, accessToken?: string): Promise<string> {
  const credentials = accessToken ? { accessToken } : {};
  const files: string[] = [];
  try {
    for await (const entry of listFiles({ repo, revision, hubUrl, recursive: true, ...credentials })) {
      if (entry.type !== "file") continue;
      checkRepoFileName(repo, entry.path);
      if (isModelFile(entry.path)) files.push(entry.path);
    }
  } catch (e) {
    if (e instanceof PmpdError) throw e;
    throw new PmpdError(`${repo}: cannot list the repository on ${hubUrl} (${(e as Error).message})`);
  }
  if (!files.includes("config.json")) throw new PmpdError(`${repo}: the repository has no config.json`);
  if (!files.some((f) => f.endsWith(".safetensors"))) {
    throw new PmpdError(`${repo}: the repository has no .safetensors weights (pmpd never loads pickle files)`);
  }
  let snapshot = "";
  for (const path of files) {
    try {
      const local = await downloadFileToCacheDir({ repo, path, revision, hubUrl, cacheDir, ...credentials });
      if (path === "config.json") snapshot = local.slice(0, local.length - "config.json".length - 1);
    } catch (e) {
      throw new PmpdError(`${repo}: download of ${path} from ${hubUrl} failed (${(e as Error).message})`);
    }
  }
  // Record the revision -> commit mapping, so that offline runs find this snapshot.
  const commit = snapshot.split(/[/\\]/).pop()!;
  const refs = join(repoFolder(cacheDir, repo), "refs");
  mkdirSync(refs, { recursive: true });
  const tmp = join(refs, `.${revision}.tmp-${process.pid}`);
  writeFileSync(tmp, commit);
  renameSync(tmp, join(refs, revision));
  return snapshot;
}

/** A local directory holding the model named `nameOrPath`, downloading it if needed. */
export async function resolveModelDirectory(nameOrPath: string, options: HubOptions = {}): Promise<string> {
  if (existsSync(nameOrPath)) {
    if (!statSync(nameOrPath).isDirectory()) throw new PmpdError(`${nameOrPath}: not a model directory`);
    return nameOrPath;
  }
  // A name that can only be a path (a file suffix, ./, ../, /, ~) is never looked up on the hub.
  if (!REPO_ID.test(nameOrPath) || /\.(json|safetensors|bin|gguf)$/i.test(nameOrPath) || /^(\.{1,2}|~)?\//.test(nameOrPath)) {
    throw new PmpdError(REPO_ID.test(nameOrPath)
      ? `${nameOrPath}: no such file or directory (a local path, so the hub is not asked)`
      : `${nameOrPath}: no such directory, and not a hub model id of the form org/name`);
  }
  const revision = options.revision ?? "main";
  const cacheDir = options.cacheDir ?? hubCacheDir();
  const cached = cachedSnapshot(cacheDir, nameOrPath, revision);
  const offline = options.offline ?? isOfflineByEnv();
  if (offline) {
    if (cached) return cached;
    throw new PmpdError(`${nameOrPath}: not in the hub cache ${cacheDir} and offline mode is on (--offline / HF_HUB_OFFLINE)`);
  }
  const hubUrl = (options.hubUrl ?? process.env.HF_ENDPOINT ?? "https://huggingface.co").replace(/\/+$/, "");
  const accessToken = options.accessToken ?? process.env.HF_TOKEN;
  return withHubLogsOnStderr(() => downloadSnapshot(nameOrPath, revision, cacheDir, hubUrl, accessToken));
}
