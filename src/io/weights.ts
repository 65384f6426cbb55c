/**
 * The weights of a model directory: one `model.safetensors`, or shards listed by
 * `model.safetensors.index.json` (`{"weight_map": {tensor name: shard file}}`), or the file
 * a checkpoint layout names (AutoGPTQ's `gptq_model-4bit-128g.safetensors`). Tensors are
 * looked up by their Hugging Face names and read on demand, one at a time.
 */
import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { PmpdError, quote } from "../errors.js";
import { readJsonFile } from "./config.js";
import { plainTensorMemory, SafetensorsFile, type Tensor, type TensorAllocator, type TensorEntry } from "./safetensors.js";

export class WeightStore {
  private readonly fileOf = new Map<string, SafetensorsFile>();
  private readonly used = new Set<string>();

  private constructor(readonly dir: string, readonly files: SafetensorsFile[], private readonly allocate: TensorAllocator) {
    for (const f of files) for (const name of f.entries.keys()) this.fileOf.set(name, f);
  }

  /**
   * `allocate` places every tensor read (default: plain ArrayBuffers); `layoutFile` is the
   * weight file the checkpoint's layout names, read when there is no model.safetensors or index.
   */
  static open(dir: string, allocate: TensorAllocator = plainTensorMemory, layoutFile: string | null = null): WeightStore {
    const single = join(dir, "model.safetensors");
    const index = join(dir, "model.safetensors.index.json");
    if (existsSync(single)) return new WeightStore(dir, [SafetensorsFile.open(single)], allocate);
    if (existsSync(index)) {
      const json = readJsonFile(index);
      const map = json.weight_map;
      if (!map || typeof map !== "object") throw new PmpdError(`${index}: missing "weight_map"`);
      const shards = new Map<string, SafetensorsFile>();
      const files: SafetensorsFile[] = [];
      try {
        for (const [tensor, shard] of Object.entries(map as Record<string, unknown>)) {
          if (typeof shard !== "string" || basename(shard) !== shard) {
            throw new PmpdError(`${index}: tensor ${quote(tensor, 80)} maps to an invalid shard name ${quote(shard)}`);
          }
          if (!shards.has(shard)) {
            const f = SafetensorsFile.open(join(dir, shard));
            shards.set(shard, f);
            files.push(f);
          }
          if (!shards.get(shard)!.has(tensor)) throw new PmpdError(`${join(dir, shard)}: index lists ${quote(tensor, 80)} but the shard lacks it`);
        }
      } catch (e) {
        for (const f of files) f.close();
        throw e;
      }
      return new WeightStore(dir, files, allocate);
    }
    if (layoutFile !== null) return new WeightStore(dir, [SafetensorsFile.open(layoutFile)], allocate);
    if (existsSync(join(dir, "pytorch_model.bin"))) {
      throw new PmpdError(`${dir}: only pytorch_model.bin (pickle) found; pmpd reads safetensors only — convert it to model.safetensors`);
    }
    throw new PmpdError(`${dir}: no model.safetensors or model.safetensors.index.json`);
  }

  has(name: string): boolean {
    return this.fileOf.has(name);
  }

  names(): string[] {
    return [...this.fileOf.keys()];
  }

  entry(name: string): TensorEntry & { file: string } {
    const f = this.fileOf.get(name);
    if (!f) throw new PmpdError(`${this.dir}: the weights have no tensor "${name}"`);
    return { ...f.entry(name), file: f.path };
  }

  read(name: string): Tensor & { file: string } {
    const f = this.fileOf.get(name);
    if (!f) throw new PmpdError(`${this.dir}: the weights have no tensor "${name}"`);
    this.used.add(name);
    return { ...f.read(name, this.allocate), file: f.path };
  }

  /** Marks a tensor a loader leaves unread on purpose (a precision the run does not use), so `checkAllUsed` accepts it. */
  skip(name: string): void {
    this.entry(name);
    this.used.add(name);
  }

  /**
   * Refuses weights that hold tensors nothing read: a config.json that describes fewer
   * layers (or a smaller model) than the weights would otherwise run a truncated model
   * silently. `ignorable` names tensors a loader may leave unread on purpose.
   */
  checkAllUsed(ignorable: (name: string) => boolean = () => false): void {
    const unused = this.names().filter((n) => !this.used.has(n) && !ignorable(n)).sort();
    if (unused.length === 0) return;
    const where = this.files.length === 1 ? this.files[0]!.path : join(this.dir, "model.safetensors.index.json");
    const shown = unused.slice(0, 3).map((n) => quote(n, 80)).join(", ");
    throw new PmpdError(`${where}: ${unused.length} tensor${unused.length === 1 ? " is" : "s are"} not used by the model its config.json describes ` +
      `(${shown}${unused.length > 3 ? ", …" : ""}); does config.json (e.g. num_hidden_layers) match the weights?`);
  }

  /** Reads a tensor and checks its shape, naming the file and tensor when it is wrong. */
  readShaped(name: string, shape: number[]): Tensor & { file: string } {
    const e = this.entry(name);
    if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
      throw new PmpdError(`${e.file}: tensor "${name}" has shape [${e.shape}] but the config implies [${shape}]`);
    }
    return this.read(name);
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}
