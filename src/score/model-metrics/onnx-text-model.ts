/**
 * A user-supplied model-metric directory (see docs/MODEL_METRICS.md): `model.onnx`, a
 * Hugging Face `tokenizer.json` (+ `tokenizer_config.json`, optionally
 * `special_tokens_map.json`) and `pmpd_metric.json` saying which metric the model serves and
 * which of its tensors to read. This file loads and checks all of that and runs the model
 * one sequence at a time with onnxruntime-node's CPU backend; the metrics themselves live in
 * bertscore.ts and bleurt.ts.
 *
 * Every problem with the directory is a PmpdError that names the directory (or the file) and
 * what is wrong with it.
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { PmpdError } from "../../errors.js";
import { onnxRuntime, type Ort } from "../../native/onnxruntime.js";
import { jsonSyntaxProblem, readTextFile, READ_LIMITS } from "../../io/bounded-read.js";

export type MetricKind = "bertscore" | "bleurt";

/** What a model input carries; each role is fed under the ONNX input name it is mapped to. */
export type InputRole = "input_ids" | "attention_mask" | "token_type_ids";

export const MODEL_FILE = "model.onnx";
export const TOKENIZER_FILE = "tokenizer.json";
export const TOKENIZER_CONFIG_FILE = "tokenizer_config.json";
export const SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json";
export const METRIC_CONFIG_FILE = "pmpd_metric.json";

/** ONNX input names recognised without an explicit "inputs" entry (HF/optimum and tf2onnx-BLEURT spellings). */
const ROLE_ALIASES: Record<string, InputRole> = {
  input_ids: "input_ids",
  attention_mask: "attention_mask",
  input_mask: "attention_mask",
  token_type_ids: "token_type_ids",
  segment_ids: "token_type_ids",
};
const ROLES: readonly InputRole[] = ["input_ids", "attention_mask", "token_type_ids"];

const COMMON_KEYS = ["metric", "output", "inputs", "description", "model"];
const KEYS: Record<MetricKind, string[]> = {
  bertscore: [...COMMON_KEYS, "layer", "max_length", "add_prefix_space"],
  bleurt: [...COMMON_KEYS, "max_seq_length", "pad_to_max_length"],
};

/** pmpd_metric.json, checked (the output and inputs are resolved against the model later). */
export interface MetricConfig {
  metric: MetricKind;
  /** Name of the output tensor to read; null: the model's only output. */
  output: string | null;
  /** role -> ONNX input name, when given; null: recognise the model's inputs by name. */
  inputs: Partial<Record<InputRole, string>> | null;
  /** Informational: the checkpoint the ONNX file was exported from (e.g. "roberta-large"). */
  model: string | null;
  /** bertscore, informational: the layer whose hidden states the output holds (17 for roberta-large). */
  layer: number | null;
  /** bertscore: truncation length in tokens, special tokens included (default: tokenizer_config's model_max_length, else 512). */
  maxLength: number | null;
  /** bertscore: prepend a space before byte-level BPE (default: true exactly when the pre-tokenizer is ByteLevel). */
  addPrefixSpace: boolean | null;
  /** bleurt: the checkpoint's max_seq_length (default 128, BLEURT-base-128). */
  maxSeqLength: number;
  /** bleurt: pad every input to max_seq_length with id 0 / mask 0 / segment 0, as BLEURT does (default true). */
  padToMaxLength: boolean;
}

function readJson(file: string, what: string): Record<string, unknown> {
  const text = readTextFile(file, READ_LIMITS.tokenizer, what);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new PmpdError(`${file}: ${what} is ${jsonSyntaxProblem(text, e)}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new PmpdError(`${file}: ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

function positiveInt(file: string, key: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new PmpdError(`${file}: "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/** Parses and checks pmpd_metric.json of `dir`; `expected` is the metric the caller computes. */
export function readMetricConfig(dir: string, expected: MetricKind): MetricConfig {
  const file = join(dir, METRIC_CONFIG_FILE);
  if (!existsSync(file)) {
    throw new PmpdError(`${dir}: not a ${expected} model directory: no ${METRIC_CONFIG_FILE} (see docs/MODEL_METRICS.md)`);
  }
  const j = readJson(file, METRIC_CONFIG_FILE);
  const metric = j.metric;
  if (metric !== "bertscore" && metric !== "bleurt") {
    throw new PmpdError(`${file}: "metric" must be "bertscore" or "bleurt", got ${JSON.stringify(metric)}`);
  }
  if (metric !== expected) throw new PmpdError(`${dir}: this is a ${metric} model directory, not a ${expected} one (${METRIC_CONFIG_FILE})`);
  for (const k of Object.keys(j)) {
    if (!k.startsWith("_") && !KEYS[metric].includes(k)) {
      throw new PmpdError(`${file}: unknown key "${k}" for metric ${metric} (known: ${KEYS[metric].join(", ")})`);
    }
  }
  if (j.output !== undefined && (typeof j.output !== "string" || j.output === "")) {
    throw new PmpdError(`${file}: "output" must be the name of an output tensor of ${MODEL_FILE}`);
  }
  let inputs: MetricConfig["inputs"] = null;
  if (j.inputs !== undefined) {
    inputs = {};
    if (Array.isArray(j.inputs)) {
      for (const name of j.inputs) {
        const role = typeof name === "string" ? ROLE_ALIASES[name] : undefined;
        if (role === undefined) {
          throw new PmpdError(`${file}: "inputs" lists ${JSON.stringify(name)}, which is not one of ${Object.keys(ROLE_ALIASES).join(", ")}; `
            + `map other names with an object, e.g. {"input_ids": "ids", "attention_mask": "mask"}`);
        }
        if (inputs[role] !== undefined) throw new PmpdError(`${file}: "inputs" gives ${role} twice`);
        inputs[role] = name as string;
      }
    } else if (j.inputs !== null && typeof j.inputs === "object") {
      for (const [role, name] of Object.entries(j.inputs as Record<string, unknown>)) {
        if (!ROLES.includes(role as InputRole)) throw new PmpdError(`${file}: "inputs" key "${role}" is not one of ${ROLES.join(", ")}`);
        if (typeof name !== "string" || name === "") throw new PmpdError(`${file}: "inputs"."${role}" must be an input name of ${MODEL_FILE}`);
        inputs[role as InputRole] = name;
      }
    } else {
      throw new PmpdError(`${file}: "inputs" must be a list of input names or an object mapping input_ids/attention_mask/token_type_ids to input names`);
    }
    if (inputs.input_ids === undefined) throw new PmpdError(`${file}: "inputs" does not name the input_ids input`);
  }
  if (j.model !== undefined && typeof j.model !== "string") throw new PmpdError(`${file}: "model" must be a string`);
  if (j.add_prefix_space !== undefined && typeof j.add_prefix_space !== "boolean") throw new PmpdError(`${file}: "add_prefix_space" must be true or false`);
  if (j.pad_to_max_length !== undefined && typeof j.pad_to_max_length !== "boolean") throw new PmpdError(`${file}: "pad_to_max_length" must be true or false`);
  if (j.layer !== undefined && (typeof j.layer !== "number" || !Number.isInteger(j.layer) || j.layer < 0)) {
    throw new PmpdError(`${file}: "layer" must be a non-negative integer`);
  }
  const maxSeqLength = j.max_seq_length === undefined ? 128 : positiveInt(file, "max_seq_length", j.max_seq_length);
  if (metric === "bleurt" && maxSeqLength < 3) throw new PmpdError(`${file}: "max_seq_length" must be at least 3 ([CLS] and two [SEP])`);
  return {
    metric,
    output: (j.output as string | undefined) ?? null,
    inputs,
    model: (j.model as string | undefined) ?? null,
    layer: (j.layer as number | undefined) ?? null,
    maxLength: j.max_length === undefined ? null : positiveInt(file, "max_length", j.max_length),
    addPrefixSpace: (j.add_prefix_space as boolean | undefined) ?? null,
    maxSeqLength,
    padToMaxLength: (j.pad_to_max_length as boolean | undefined) ?? true,
  };
}

/** A token in tokenizer_config.json / special_tokens_map.json: a string or an AddedToken object. */
function tokenContent(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof (value as { content?: unknown }).content === "string") return (value as { content: string }).content;
  return null;
}

const TOKENIZER_MODELS = ["BPE", "WordPiece", "Unigram"];

/** Python's str.strip() with no argument (str.isspace characters, not JavaScript's trim set). */
const PY_SPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, "g");
export function pyStrip(s: string): string {
  return s.replace(PY_STRIP, "");
}

/**
 * The directory's tokenizer: tokenizer.json run by @huggingface/tokenizers, with the special
 * tokens ([CLS]/<s>, [SEP]/</s>, padding) looked up the way transformers does.
 */
export class MetricTokenizer {
  /** Whether the pre-tokenizer is byte-level (GPT-2/RoBERTa family). */
  readonly byteLevel: boolean;
  /** The model type of tokenizer.json ("BPE", "WordPiece", "Unigram"). */
  readonly modelType: string;
  /** tokenizer_config.json's model_max_length, when it is a real limit (HF writes 1e30 for "none"). */
  readonly modelMaxLength: number | null;
  readonly clsId: number | null;
  readonly sepId: number | null;
  readonly padId: number | null;

  private constructor(private readonly tokenizer: Tokenizer, readonly file: string, json: Record<string, unknown>, config: Record<string, unknown>, specialMap: Record<string, unknown>) {
    this.modelType = String((json.model as { type?: unknown }).type);
    this.byteLevel = isByteLevel(json.pre_tokenizer);
    const mml = config.model_max_length;
    this.modelMaxLength = typeof mml === "number" && Number.isInteger(mml) && mml > 0 && mml < 1e7 ? mml : null;
    const empty = this.rawEncode("", true);
    const lookup = (key: string): number | null => {
      const content = tokenContent(config[key]) ?? tokenContent(specialMap[key]);
      if (content === null) return null;
      const id = tokenizer.token_to_id(content);
      if (id === undefined) throw new PmpdError(`${file}: the ${key} ${JSON.stringify(content)} of the tokenizer config is not in the vocabulary`);
      return id;
    };
    // transformers' cls_token_id / sep_token_id; without them in the configs, what the
    // post-processor puts around an empty text ([CLS] [SEP], <s> </s>) is the same thing.
    this.clsId = lookup("cls_token") ?? (empty.length >= 2 ? empty[0]! : null);
    this.sepId = lookup("sep_token") ?? (empty.length >= 2 ? empty[empty.length - 1]! : null);
    this.padId = lookup("pad_token");
  }

  /** Loads `dir`/tokenizer.json (+ tokenizer_config.json, special_tokens_map.json when present). */
  static fromDirectory(dir: string): MetricTokenizer {
    const file = join(dir, TOKENIZER_FILE);
    if (!existsSync(file)) throw new PmpdError(`${dir}: no ${TOKENIZER_FILE} (save the Hugging Face fast tokenizer there; see docs/MODEL_METRICS.md)`);
    const json = readJson(file, TOKENIZER_FILE);
    const type = (json.model as { type?: unknown } | undefined)?.type;
    if (typeof type !== "string" || !TOKENIZER_MODELS.includes(type)) {
      throw new PmpdError(`${file}: unknown tokenizer model type ${JSON.stringify(type)} (supported: ${TOKENIZER_MODELS.join(", ")})`);
    }
    const configFile = join(dir, TOKENIZER_CONFIG_FILE);
    const config = existsSync(configFile) ? readJson(configFile, TOKENIZER_CONFIG_FILE) : {};
    const mapFile = join(dir, SPECIAL_TOKENS_MAP_FILE);
    const specialMap = existsSync(mapFile) ? readJson(mapFile, SPECIAL_TOKENS_MAP_FILE) : {};
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(json, config);
    } catch (e) {
      throw new PmpdError(`${file}: cannot build the tokenizer (${(e as Error).message})`);
    }
    return new MetricTokenizer(tokenizer, file, json, config, specialMap);
  }

  private rawEncode(text: string, addSpecialTokens: boolean): number[] {
    let ids: Array<number | undefined>;
    try {
      ids = this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids as Array<number | undefined>;
    } catch (e) {
      throw new PmpdError(`${this.file}: the tokenizer failed on ${JSON.stringify(text.slice(0, 80))} (${(e as Error).message})`);
    }
    for (const id of ids) {
      if (typeof id !== "number" || !Number.isInteger(id) || id < 0) {
        throw new PmpdError(`${this.file}: the tokenizer produced a token outside its vocabulary for ${JSON.stringify(text.slice(0, 80))} (no usable unk_token)`);
      }
    }
    return ids as number[];
  }

  /** Token ids of `text`, without special tokens. */
  tokens(text: string): number[] {
    return this.rawEncode(text, false);
  }

  /**
   * Token ids of `text` with the post-processor's special tokens, the content truncated so that
   * the whole sequence has at most `maxLength` tokens (transformers' `encode(text,
   * add_special_tokens=True, max_length=maxLength, truncation=True)`).
   */
  encodeWithSpecials(text: string, maxLength: number): number[] {
    const full = this.rawEncode(text, true);
    if (full.length <= maxLength) return full;
    const content = this.rawEncode(text, false);
    const nSpecial = full.length - content.length;
    if (nSpecial < 0 || maxLength <= nSpecial) {
      throw new PmpdError(`${this.file}: cannot truncate to ${maxLength} tokens: the tokenizer adds ${nSpecial} special tokens`);
    }
    // The content sits at some offset inside `full` (after [CLS] / <s>).
    for (let p = 0; p <= nSpecial; p++) {
      let same = true;
      for (let i = 0; i < content.length && same; i++) same = full[p + i] === content[i];
      if (same) return [...full.slice(0, p), ...content.slice(0, maxLength - nSpecial), ...full.slice(p + content.length)];
    }
    throw new PmpdError(`${this.file}: cannot truncate: the post-processor does not keep the text's tokens in one piece`);
  }
}

function isByteLevel(pre: unknown): boolean {
  if (pre === null || typeof pre !== "object") return false;
  const p = pre as { type?: unknown; pretokenizers?: unknown };
  if (p.type === "ByteLevel") return true;
  return p.type === "Sequence" && Array.isArray(p.pretokenizers) && p.pretokenizers.some(isByteLevel);
}

export interface SessionOptions {
  /** onnxruntime intra-op threads (default: min(4, available cores)). */
  threads?: number;
}

export interface ModelOutput {
  data: Float32Array | Float64Array;
  dims: readonly number[];
}

interface ResolvedInput { name: string; type: "int64" | "int32"; fixedLength: number | null }

/** An open model directory: config, tokenizer and onnxruntime session. */
export class MetricModel {
  private constructor(
    readonly dir: string,
    readonly config: MetricConfig,
    readonly tokenizer: MetricTokenizer,
    private readonly ort: typeof Ort,
    private readonly session: Ort.InferenceSession,
    /** The output tensor read. */
    readonly output: string,
    private readonly inputs: Partial<Record<InputRole, ResolvedInput>>,
    /** The sequence length the model's inputs are fixed to, or null when it is dynamic. */
    readonly fixedLength: number | null,
  ) {}

  /** Opens and checks `dir` for metric `kind`; release() it when done. */
  static async open(dir: string, kind: MetricKind, options: SessionOptions = {}): Promise<MetricModel> {
    if (!existsSync(dir)) throw new PmpdError(`${dir}: the ${kind} model directory does not exist`);
    const config = readMetricConfig(dir, kind);
    const modelFile = join(dir, MODEL_FILE);
    if (!existsSync(modelFile)) throw new PmpdError(`${dir}: no ${MODEL_FILE}`);
    const tokenizer = MetricTokenizer.fromDirectory(dir);
    const ort = await onnxRuntime();
    let session: Ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(modelFile, {
        executionProviders: ["cpu"],
        intraOpNumThreads: options.threads ?? Math.max(1, Math.min(4, availableParallelism())),
        interOpNumThreads: 1,
        logSeverityLevel: 3,
      });
    } catch (e) {
      throw new PmpdError(`${modelFile}: onnxruntime cannot load the model (${String((e as Error).message ?? e).split("\n")[0]})`);
    }
    try {
      const { output, inputs, fixedLength } = resolveModelIo(dir, config, session);
      return new MetricModel(dir, config, tokenizer, ort, session, output, inputs, fixedLength);
    } catch (e) {
      await session.release();
      throw e;
    }
  }

  /** Whether the model takes token type (segment) ids. */
  get hasTokenTypes(): boolean {
    return this.inputs.token_type_ids !== undefined;
  }

  /** Runs one sequence ([1, T] inputs) and returns the configured output as floats. */
  async run(seq: { inputIds: ArrayLike<number>; attentionMask: ArrayLike<number>; tokenTypeIds?: ArrayLike<number> }): Promise<ModelOutput> {
    const T = seq.inputIds.length;
    const feeds: Record<string, Ort.Tensor> = {};
    const feed = (role: InputRole, values: ArrayLike<number>) => {
      const input = this.inputs[role];
      if (input === undefined) return;
      const data = input.type === "int64" ? BigInt64Array.from(Array.from(values, (v) => BigInt(v))) : Int32Array.from(values);
      feeds[input.name] = new this.ort.Tensor(input.type, data, [1, T]);
    };
    feed("input_ids", seq.inputIds);
    feed("attention_mask", seq.attentionMask);
    feed("token_type_ids", seq.tokenTypeIds ?? new Array<number>(T).fill(0));
    let out: Ort.InferenceSession.OnnxValueMapType;
    try {
      out = await this.session.run(feeds, [this.output]);
    } catch (e) {
      throw new PmpdError(`${join(this.dir, MODEL_FILE)}: onnxruntime failed on a sequence of ${T} tokens (${String((e as Error).message ?? e).split("\n")[0]})`);
    }
    const t = out[this.output];
    if (t === undefined) throw new PmpdError(`${join(this.dir, MODEL_FILE)}: the model produced no "${this.output}" output`);
    return { data: floatData(this.dir, this.output, t), dims: t.dims };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function resolveModelIo(dir: string, config: MetricConfig, session: Ort.InferenceSession):
  { output: string; inputs: Partial<Record<InputRole, ResolvedInput>>; fixedLength: number | null } {
  const modelFile = join(dir, MODEL_FILE);
  const configFile = join(dir, METRIC_CONFIG_FILE);
  const outputs = session.outputNames;
  let output: string;
  if (config.output !== null) {
    if (!outputs.includes(config.output)) {
      throw new PmpdError(`${dir}: ${MODEL_FILE} has no output "${config.output}" (named in ${METRIC_CONFIG_FILE}); its outputs: ${outputs.join(", ")}`);
    }
    output = config.output;
  } else if (outputs.length === 1) {
    output = outputs[0]!;
  } else {
    throw new PmpdError(`${configFile}: say which output to read ("output"); ${MODEL_FILE} has ${outputs.length}: ${outputs.join(", ")}`);
  }
  const names = session.inputNames;
  let mapping: Partial<Record<InputRole, string>>;
  if (config.inputs !== null) {
    mapping = config.inputs;
    for (const [role, name] of Object.entries(mapping)) {
      if (!names.includes(name)) throw new PmpdError(`${dir}: ${MODEL_FILE} has no input "${name}" (the ${role} of ${METRIC_CONFIG_FILE}); its inputs: ${names.join(", ")}`);
    }
    const fed = new Set(Object.values(mapping));
    const unfed = names.filter((n) => !fed.has(n));
    if (unfed.length > 0) throw new PmpdError(`${dir}: ${MODEL_FILE} also needs input(s) ${unfed.join(", ")}, which "inputs" of ${METRIC_CONFIG_FILE} does not map`);
  } else {
    mapping = {};
    for (const name of names) {
      const role = ROLE_ALIASES[name];
      if (role === undefined) {
        throw new PmpdError(`${dir}: ${MODEL_FILE} has an input "${name}" pmpd does not recognise; map the inputs in ${METRIC_CONFIG_FILE}, `
          + `e.g. "inputs": {"input_ids": "...", "attention_mask": "...", "token_type_ids": "..."}`);
      }
      if (mapping[role] !== undefined) throw new PmpdError(`${dir}: ${MODEL_FILE} has two inputs for ${role} (${mapping[role]}, ${name}); map them in ${METRIC_CONFIG_FILE} "inputs"`);
      mapping[role] = name;
    }
    if (mapping.input_ids === undefined) throw new PmpdError(`${dir}: ${MODEL_FILE} has no input_ids input (its inputs: ${names.join(", ")}); map them in ${METRIC_CONFIG_FILE} "inputs"`);
  }
  const inputs: Partial<Record<InputRole, ResolvedInput>> = {};
  let fixedLength: number | null = null;
  for (const [role, name] of Object.entries(mapping) as Array<[InputRole, string]>) {
    const meta = session.inputMetadata.find((m) => m.name === name);
    if (meta === undefined || !meta.isTensor || (meta.type !== "int64" && meta.type !== "int32")) {
      throw new PmpdError(`${modelFile}: input "${name}" (${role}) must be an int64 or int32 tensor [1, T]`);
    }
    const shape = meta.shape;
    if (shape.length !== 2 || (typeof shape[0] === "number" && shape[0] !== 1)) {
      throw new PmpdError(`${modelFile}: input "${name}" (${role}) has shape [${shape.join(", ")}], expected [1 or batch, T]`);
    }
    const len = typeof shape[1] === "number" && shape[1] > 0 ? shape[1] : null;
    if (len !== null) {
      if (fixedLength !== null && fixedLength !== len) throw new PmpdError(`${modelFile}: inputs are fixed to different lengths (${fixedLength}, ${len})`);
      fixedLength = len;
    }
    inputs[role] = { name, type: meta.type, fixedLength: len };
  }
  return { output, inputs, fixedLength };
}

/** IEEE half -> double. */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

function floatData(dir: string, name: string, t: Ort.Tensor): Float32Array | Float64Array {
  if (t.type === "float32") return t.data as Float32Array;
  if (t.type === "float64") return t.data as Float64Array;
  if (t.type === "float16") {
    const raw = t.data as unknown as ArrayLike<number>;
    const out = new Float32Array(raw.length);
    const bits = raw instanceof Uint16Array;
    for (let i = 0; i < raw.length; i++) out[i] = bits ? halfToFloat(raw[i]!) : raw[i]!;
    return out;
  }
  throw new PmpdError(`${join(dir, MODEL_FILE)}: output "${name}" is ${t.type}, expected a float tensor`);
}
