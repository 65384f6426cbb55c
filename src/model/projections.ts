/**
 * The seven linear projections of a LLaMA-family decoder layer, named once: their Hugging
 * Face names (`q_proj` ...), the `LayerWeights` field that holds each (`qProj` ...), and the
 * block its tensors live under (`model.layers.<l>.self_attn.q_proj`).
 */
import type { LinearLayer } from "../formats/linear.js";
import type { ModelConfig } from "../io/config.js";

export const LINEAR_NAMES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;

/** A transformer linear layer of a decoder layer, by its Hugging Face name. */
export type LinearName = (typeof LINEAR_NAMES)[number];

/** The `LayerWeights` field of each projection. */
export const LINEAR_FIELDS = {
  q_proj: "qProj", k_proj: "kProj", v_proj: "vProj", o_proj: "oProj",
  gate_proj: "gateProj", up_proj: "upProj", down_proj: "downProj",
} as const satisfies Record<LinearName, string>;

export type LinearField = (typeof LINEAR_FIELDS)[LinearName];

/** The projections of one decoder layer, as `LayerWeights` holds them. */
export type DecoderLinears = { [F in LinearField]: LinearLayer };

const BLOCK: Record<LinearName, "self_attn" | "mlp"> = {
  q_proj: "self_attn", k_proj: "self_attn", v_proj: "self_attn", o_proj: "self_attn",
  gate_proj: "mlp", up_proj: "mlp", down_proj: "mlp",
};

/** The tensor-name prefix of a projection, e.g. "model.layers.3.mlp.down_proj". */
export function linearPrefix(layer: number, name: LinearName): string {
  return `model.layers.${layer}.${BLOCK[name]}.${name}`;
}

/** The seven projections of a decoder layer, in LINEAR_NAMES order. */
export function linearsOf(layer: DecoderLinears): LinearLayer[] {
  return LINEAR_NAMES.map((name) => layer[LINEAR_FIELDS[name]]);
}

/** The shape [out, in] of a projection under `config`. */
export function linearShape(c: ModelConfig, name: LinearName): [number, number] {
  const H = c.hiddenSize, F = c.intermediateSize, qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim;
  const shapes: Record<LinearName, [number, number]> = {
    q_proj: [qDim, H], k_proj: [kvDim, H], v_proj: [kvDim, H], o_proj: [H, qDim],
    gate_proj: [F, H], up_proj: [F, H], down_proj: [H, F],
  };
  return shapes[name];
}

/** The seven projections of a decoder layer made by `make`, in LINEAR_NAMES order, as `LayerWeights` fields. */
export function makeLinears(make: (name: LinearName) => LinearLayer): DecoderLinears {
  const out = {} as DecoderLinears;
  for (const name of LINEAR_NAMES) out[LINEAR_FIELDS[name]] = make(name);
  return out;
}

/** The four distinct inputs of a decoder layer's projections (q/k/v share one, gate/up another). */
export type LinearInput = "attn_in" | "o_in" | "mlp_in" | "down_in";

const INPUT: Record<LinearName, LinearInput> = {
  q_proj: "attn_in", k_proj: "attn_in", v_proj: "attn_in", o_proj: "o_in",
  gate_proj: "mlp_in", up_proj: "mlp_in", down_proj: "down_in",
};

export function inputOf(name: LinearName): LinearInput {
  return INPUT[name];
}

/** True for the first projection (in LINEAR_NAMES order) of each input: statistics of an input are taken once. */
export function firstOfInput(name: LinearName): boolean {
  return LINEAR_NAMES.find((n) => INPUT[n] === INPUT[name]) === name;
}
