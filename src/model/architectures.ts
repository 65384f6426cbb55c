/**
 * The decoder families pmpd runs, as data for the one forward pass (src/model/decoder.ts):
 * what a family's config.json fields mean, what its tensors are called, which norm and
 * activation it uses and how its residual stream is laid out. Nothing here computes; the
 * forward pass, the loader, the backward pass and the quantizers read a `DecoderLayout`
 * and never ask which family they run.
 *
 * Semantics follow Hugging Face transformers' modeling files (eager attention):
 *  - llama, mistral, qwen2: RMSNorm, SwiGLU, pre-norm residual blocks.
 *  - phi (Phi-1.5, Phi-2): one LayerNorm (with bias) feeds attention and MLP in parallel,
 *    x + attn(ln(x)) + mlp(ln(x)); q/k/v/dense and fc1/fc2 with biases, gelu_new MLP, partial
 *    rotary; optional qk_layernorm (LayerNorm over head_dim, one for all heads); final
 *    LayerNorm and an lm_head with bias.
 *  - stablelm (StableLM-2, StableLM-Zephyr-3B; also the older stablelm_epoch configs): LayerNorm
 *    with bias, SwiGLU, partial rotary, optional q/k/v biases, optional per-head qk LayerNorm
 *    (no bias), optional parallel residual.
 *  - phi3: fused qkv_proj and gate_up_proj (gate first), RMSNorm, longrope/su rope scaling.
 *  - gemma: RMSNorm scaling by (1 + w), GeGLU (gelu_pytorch_tanh), embeddings times
 *    √hidden, tied lm_head.
 *  - gemma2: gemma plus norms after attention and around the MLP, scores scaled by
 *    query_pre_attn_scalar^-1/2 and soft-capped, soft-capped final logits, a sliding window
 *    on every other layer.
 */
import { PmpdError } from "../errors.js";
import { flag, fraction, optionalPositiveNumber, positiveInt, positiveNumber, text, type RawConfig } from "../io/config-fields.js";
import {
  isMlpRole, layerPrefix, PROJECTION_NAMES, projectionSpecs, readsAttentionInput, type LinearRole, type LinearSpec, type ProjectionShape,
} from "./projections.js";

export type Family = "llama" | "mistral" | "qwen2" | "phi" | "stablelm" | "phi3" | "gemma" | "gemma2";

export type NormKind = "rms" | "layer";

/** Where a norm's tensors are: `<path>.weight` (and `<path>.bias` when it has one). */
export interface NormSpec {
  path: string;
  bias: boolean;
}

/** qk_layernorm: a LayerNorm over head_dim applied to every head of q and of k after the projections. */
export interface QkNormSpec {
  q: NormSpec;
  k: NormSpec;
  /** One norm per head, stored as `<path>.norms.<h>.weight` (stablelm), or one for all heads (phi). */
  perHead: boolean;
}

export type Activation = "silu" | "gelu_tanh" | "gelu_erf";

export interface DecoderLayout {
  family: Family;
  norm: NormKind;
  normEps: number;
  /** gemma: RMSNorm scales by (1 + w); the loader keeps 1 + w, so the kernels see a plain weight. */
  normAddsOne: boolean;
  input: NormSpec;
  /** Before the MLP (llama's post_attention_layernorm, gemma2's pre_feedforward_layernorm); null with a parallel residual. */
  mlpNorm: NormSpec | null;
  /** gemma2: on the attention output and on the MLP output, before their residual adds. */
  attnOutNorm: NormSpec | null;
  mlpOutNorm: NormSpec | null;
  qkNorm: QkNormSpec | null;
  /** The model's final norm, a full tensor prefix. */
  finalNorm: NormSpec;
  /** Attention and MLP both read the input norm's output: x += attn(h) + mlp(h). */
  parallelResidual: boolean;
  /** The MLP multiplies act(gate) by up (SwiGLU, GeGLU); otherwise down(act(up)) (phi's fc1/fc2). */
  gatedMlp: boolean;
  activation: Activation;
  /** Leading dimensions of each head that RoPE rotates (partial_rotary_factor · head_dim). */
  rotaryDim: number;
  /** Multiplies q·k: 1/√head_dim, or gemma2's query_pre_attn_scalar^-1/2. */
  attentionScale: number;
  attentionSoftcap: number | null;
  finalSoftcap: number | null;
  /** Embeddings are multiplied by this (gemma: √hidden, rounded to float32), or null. */
  embedScale: number | null;
  /** The sliding window of each layer (null: full attention). */
  layerWindows: (number | null)[];
  /** lm_head has a bias (phi). */
  lmHeadBias: boolean;
  linears: LinearSpec[];
}

/** The shapes config.ts has already read (shared by every family). */
export interface DecoderShape extends ProjectionShape {
  numLayers: number;
}

/** `architectures[0]` of config.json -> family. */
export const ARCHITECTURES: Readonly<Record<string, Family>> = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "mistral",
  Qwen2ForCausalLM: "qwen2",
  PhiForCausalLM: "phi",
  StableLmForCausalLM: "stablelm",
  StableLMEpochForCausalLM: "stablelm",
  Phi3ForCausalLM: "phi3",
  GemmaForCausalLM: "gemma",
  Gemma2ForCausalLM: "gemma2",
};

/** `model_type` of config.json -> family, for configs without `architectures`. */
export const MODEL_TYPES: Readonly<Record<string, Family>> = {
  llama: "llama", mistral: "mistral", qwen2: "qwen2", phi: "phi", stablelm: "stablelm", stablelm_epoch: "stablelm",
  phi3: "phi3", gemma: "gemma", gemma2: "gemma2",
};

/** model_types of checkpoints written for remote code before transformers had the family, whose tensors are named otherwise. */
const REMOTE_CODE_TYPES: Readonly<Record<string, string>> = {
  "phi-msft": "Phi checkpoints from before transformers 4.37 (remote code); use the converted ones the hub now serves",
  "mixformer-sequential": "Phi checkpoints from before transformers 4.37 (remote code); use the converted ones the hub now serves",
};

/** The family of a config: from `architectures[0]`, else from `model_type`; one line naming the file otherwise. */
export function familyOf(file: string, raw: RawConfig): Family {
  const remote = typeof raw.model_type === "string" ? REMOTE_CODE_TYPES[raw.model_type] : undefined;
  if (remote) throw new PmpdError(`${file}: model_type "${raw.model_type}" is not supported: ${remote}`);
  const archs = raw.architectures;
  if (Array.isArray(archs) && archs.length > 0) {
    const name = String(archs[0]);
    const family = ARCHITECTURES[name];
    if (!family) throw new PmpdError(`${file}: unsupported architecture "${name}" (supported: ${Object.keys(ARCHITECTURES).join(", ")})`);
    return family;
  }
  const type = raw.model_type;
  const family = typeof type === "string" ? MODEL_TYPES[type] : undefined;
  if (!family) {
    throw new PmpdError(`${file}: unsupported model_type ${JSON.stringify(type)} and no known "architectures" (supported: ${Object.keys(MODEL_TYPES).join(", ")})`);
  }
  return family;
}

const ACTIVATIONS: Readonly<Record<string, Activation>> = {
  silu: "silu", swish: "silu", gelu_new: "gelu_tanh", gelu_pytorch_tanh: "gelu_tanh", gelu: "gelu_erf",
};

function activationOf(file: string, raw: RawConfig, key: string, fallback: string): Activation {
  const name = text(file, raw, key, fallback);
  const act = ACTIVATIONS[name];
  if (!act) throw new PmpdError(`${file}: unsupported ${key} "${name}" (supported: ${Object.keys(ACTIVATIONS).join(", ")})`);
  return act;
}

/** phi's fc1/fc2 MLP has no gate; pmpd runs GELUs there (the kernels have no plain SiLU). */
function plainMlpActivation(file: string, act: Activation): Activation {
  if (act === "silu") throw new PmpdError(`${file}: hidden_act silu without a gate is not supported for phi (supported: gelu, gelu_new, gelu_pytorch_tanh)`);
  return act;
}

function rotaryDimOf(file: string, key: string, factor: number, headDim: number): number {
  const dim = Math.floor(headDim * factor);
  if (dim < 2 || dim % 2 !== 0) {
    throw new PmpdError(`${file}: ${key} ${factor} of head dimension ${headDim} gives ${dim} rotary dimensions, which must be even and at least 2`);
  }
  return dim;
}

const norm = (path: string, bias: boolean): NormSpec => ({ path, bias });

/** LLaMA's norms: RMSNorm before attention and before the MLP, and a final model.norm. */
function rmsPreNorms(file: string, raw: RawConfig, epsFallback: number) {
  return {
    norm: "rms" as const,
    normEps: positiveNumber(file, raw, "rms_norm_eps", epsFallback),
    input: norm("input_layernorm", false),
    mlpNorm: norm("post_attention_layernorm", false),
    finalNorm: norm("model.norm", false),
  };
}

/** The window of every layer: the same for all (mistral, qwen2's upper layers, phi3) or alternating (gemma2). */
function layerWindows(file: string, family: Family, raw: RawConfig, numLayers: number): (number | null)[] {
  const none = new Array<number | null>(numLayers).fill(null);
  const window = raw.sliding_window;
  const W = typeof window === "number" && window > 0 ? window : null;
  switch (family) {
    case "mistral":
    case "phi3":
      return none.map(() => W);
    case "qwen2": {
      if (raw.use_sliding_window !== true || W === null) return none;
      const from = typeof raw.max_window_layers === "number" ? raw.max_window_layers : numLayers;
      return none.map((_, l) => (l >= from ? W : null));
    }
    case "gemma2": {
      const w = positiveInt(file, raw, "sliding_window", 4096);
      const types = raw.layer_types;
      if (Array.isArray(types)) {
        if (types.length !== numLayers) throw new PmpdError(`${file}: "layer_types" lists ${types.length} layers, num_hidden_layers is ${numLayers}`);
        return types.map((t) => (t === "sliding_attention" ? w : null));
      }
      return none.map((_, l) => (l % 2 === 0 ? w : null)); // transformers' default: even layers slide
    }
    default:
      return none;
  }
}

/** Normalizes a config of `family` (whose shapes are already read) into its layout. */
export function describeArchitecture(file: string, family: Family, raw: RawConfig, s: DecoderShape): DecoderLayout {
  const D = s.headDim;
  const base = {
    family,
    normAddsOne: false,
    attnOutNorm: null,
    mlpOutNorm: null,
    qkNorm: null,
    parallelResidual: false,
    gatedMlp: true,
    rotaryDim: D,
    attentionScale: 1 / Math.sqrt(D),
    attentionSoftcap: null,
    finalSoftcap: null,
    embedScale: null,
    layerWindows: layerWindows(file, family, raw, s.numLayers),
    lmHeadBias: false,
  };
  switch (family) {
    case "llama":
    case "mistral":
    case "qwen2": {
      // qwen2: biased q/k/v; llama: attention_bias (q/k/v/o) and mlp_bias; mistral: none.
      const attnBias = flag(file, raw, "attention_bias", false), mlpBias = flag(file, raw, "mlp_bias", false);
      const biased = (r: LinearRole) => family === "qwen2" ? readsAttentionInput(r)
        : family === "llama" && (isMlpRole(r) ? mlpBias : attnBias);
      return {
        ...base,
        ...rmsPreNorms(file, raw, 1e-6),
        activation: activationOf(file, raw, "hidden_act", "silu"),
        linears: projectionSpecs(PROJECTION_NAMES.llama, s, biased),
      };
    }
    case "phi": {
      const qk = flag(file, raw, "qk_layernorm", false);
      return {
        ...base,
        norm: "layer",
        normEps: positiveNumber(file, raw, "layer_norm_eps", 1e-5),
        input: norm("input_layernorm", true),
        mlpNorm: null,
        finalNorm: norm("model.final_layernorm", true),
        qkNorm: qk ? { q: norm("self_attn.q_layernorm", true), k: norm("self_attn.k_layernorm", true), perHead: false } : null,
        parallelResidual: true,
        gatedMlp: false,
        activation: plainMlpActivation(file, activationOf(file, raw, "hidden_act", "gelu_new")),
        rotaryDim: rotaryDimOf(file, "partial_rotary_factor", fraction(file, raw, "partial_rotary_factor", 0.5), D),
        linears: projectionSpecs(PROJECTION_NAMES.phi, s, () => true),
        lmHeadBias: true,
      };
    }
    case "stablelm": {
      // stablelm_epoch configs (before transformers had StableLM) spell two fields differently.
      const epsKey = raw.layer_norm_eps === undefined && raw.norm_eps !== undefined ? "norm_eps" : "layer_norm_eps";
      const rotKey = raw.partial_rotary_factor === undefined && raw.rope_pct !== undefined ? "rope_pct" : "partial_rotary_factor";
      const parallel = flag(file, raw, "use_parallel_residual", false), qkvBias = flag(file, raw, "use_qkv_bias", false);
      const qk = flag(file, raw, "qk_layernorm", false);
      return {
        ...base,
        norm: "layer",
        normEps: positiveNumber(file, raw, epsKey, 1e-5),
        input: norm("input_layernorm", true),
        mlpNorm: parallel ? null : norm("post_attention_layernorm", true),
        finalNorm: norm("model.norm", true),
        qkNorm: qk ? { q: norm("self_attn.q_layernorm", false), k: norm("self_attn.k_layernorm", false), perHead: true } : null,
        parallelResidual: parallel,
        activation: activationOf(file, raw, "hidden_act", "silu"),
        rotaryDim: rotaryDimOf(file, rotKey, fraction(file, raw, rotKey, 0.25), D),
        linears: projectionSpecs(PROJECTION_NAMES.llama, s, (r) => qkvBias && readsAttentionInput(r)),
      };
    }
    case "phi3":
      return {
        ...base,
        ...rmsPreNorms(file, raw, 1e-5),
        activation: activationOf(file, raw, "hidden_act", "silu"),
        rotaryDim: rotaryDimOf(file, "partial_rotary_factor", fraction(file, raw, "partial_rotary_factor", 1), D),
        linears: projectionSpecs(PROJECTION_NAMES.phi3, s, () => false),
      };
    case "gemma":
    case "gemma2": {
      const g2 = family === "gemma2";
      // transformers reads hidden_activation and ignores hidden_act for gemma (older configs say "gelu").
      const attnBias = flag(file, raw, "attention_bias", false);
      const common = {
        ...base,
        ...rmsPreNorms(file, raw, 1e-6),
        normAddsOne: true,
        activation: activationOf(file, raw, "hidden_activation", "gelu_pytorch_tanh"),
        embedScale: Math.fround(Math.sqrt(s.hiddenSize)),
        linears: projectionSpecs(PROJECTION_NAMES.llama, s, (r) => attnBias && !isMlpRole(r)),
      };
      if (!g2) return common;
      return {
        ...common,
        mlpNorm: norm("pre_feedforward_layernorm", false),
        attnOutNorm: norm("post_attention_layernorm", false),
        mlpOutNorm: norm("post_feedforward_layernorm", false),
        attentionScale: 1 / Math.sqrt(positiveNumber(file, raw, "query_pre_attn_scalar", 256)),
        attentionSoftcap: optionalPositiveNumber(file, raw, "attn_logit_softcapping"),
        finalSoftcap: optionalPositiveNumber(file, raw, "final_logit_softcapping"),
      };
    }
  }
}

/** Whether lm_head is the embedding matrix when config.json does not say (transformers' per-family default). */
export function tiesEmbeddingsByDefault(family: Family): boolean {
  return family === "gemma" || family === "gemma2";
}

/** The norms a q or k norm is stored as: one for all heads, or one per head at `<path>.norms.<h>` (stablelm). */
export function headNormSpecs(spec: NormSpec, perHead: boolean, heads: number): NormSpec[] {
  return perHead ? Array.from({ length: heads }, (_, h) => ({ ...spec, path: `${spec.path}.norms.${h}` })) : [spec];
}

/** One tensor of a float checkpoint: its name, shape and what kind of parameter it is. */
export interface CheckpointTensor {
  name: string;
  shape: number[];
  kind: "embedding" | "norm" | "bias" | "weight";
}

/** What a config needs of itself to list its checkpoint's tensors. */
interface CheckpointShape {
  layout: DecoderLayout;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  tieWordEmbeddings: boolean;
}

/**
 * Every tensor a float checkpoint of this config holds, named as its family names them
 * (norm weights as stored: gemma's w, not 1 + w). The loader reads exactly these.
 */
export function checkpointTensors(c: CheckpointShape): CheckpointTensor[] {
  const a = c.layout, H = c.hiddenSize, D = c.headDim, out: CheckpointTensor[] = [];
  const addNorm = (spec: NormSpec | null, size: number) => {
    if (!spec) return;
    out.push({ name: `${spec.path}.weight`, shape: [size], kind: "norm" });
    if (spec.bias) out.push({ name: `${spec.path}.bias`, shape: [size], kind: "bias" });
  };
  const at = (l: number, spec: NormSpec | null) => spec && { ...spec, path: `${layerPrefix(l)}.${spec.path}` };
  out.push({ name: "model.embed_tokens.weight", shape: [c.vocabSize, H], kind: "embedding" });
  for (let l = 0; l < c.numLayers; l++) {
    for (const s of a.linears) {
      const p = `${layerPrefix(l)}.${s.path}`;
      out.push({ name: `${p}.weight`, shape: [s.outFeatures, s.inFeatures], kind: "weight" });
      if (s.bias) out.push({ name: `${p}.bias`, shape: [s.outFeatures], kind: "bias" });
    }
    for (const spec of [a.input, a.mlpNorm, a.attnOutNorm, a.mlpOutNorm]) addNorm(at(l, spec), H);
    if (a.qkNorm) {
      for (const [spec, heads] of [[a.qkNorm.q, c.numHeads], [a.qkNorm.k, c.numKvHeads]] as const) {
        for (const one of headNormSpecs(at(l, spec)!, a.qkNorm.perHead, heads)) addNorm(one, D);
      }
    }
  }
  addNorm(a.finalNorm, H);
  if (!c.tieWordEmbeddings) {
    out.push({ name: "lm_head.weight", shape: [c.vocabSize, H], kind: "weight" });
    if (a.lmHeadBias) out.push({ name: "lm_head.bias", shape: [c.vocabSize], kind: "bias" });
  }
  return out;
}
