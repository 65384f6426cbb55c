/** Locations inside the installed pmpd package, whether running from src/ or dist/. */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | null = null;

/** The folder holding pmpd's package.json. */
export function packageRoot(): string {
  if (root !== null) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("pmpd: cannot find the package root (package.json)");
    dir = parent;
  }
  root = dir;
  return dir;
}

/** The small model that ships with pmpd (trained by scripts/model/). */
export function bundledModelDir(): string {
  return join(packageRoot(), "models", "tiny-llama");
}

/** Held-out English text never seen in training (the default for perplexity). */
export function heldOutTextFile(): string {
  return join(packageRoot(), "datasets", "text", "heldout.txt");
}

/** Default calibration text for quantization, in C4 JSONL format. */
export function calibrationTextFile(): string {
  return join(packageRoot(), "datasets", "text", "calib.jsonl");
}
