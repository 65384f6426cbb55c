/**
 * The transformer linear layers ("projections") of a decoder layer, named once for every
 * family: what each does (its role), which input it reads, its shape, the block its tensors
 * live under, and what each family calls it. A layer holds its linear layers keyed by role
 * (`LayerLinears`); a model's config lists them as `LinearSpec`s (`config.layout.linears`,
 * made here from the family's `PROJECTION_NAMES` row by src/model/architectures.ts), and
 * everything that walks a layer's projections — loader, random models, quantizers,
 * calibration, backward pass, GPU offload — reads that list.
 */
import type { LinearLayer } from "../formats/linear.js";

/** What a linear layer does in the layer; `qkv` and `gateUp` are fused projections. */
export type LinearRole = "q" | "k" | "v" | "qkv" | "o" | "gate" | "up" | "gateUp" | "down";

/** Every role, in the order a layer runs them (and its specs list them). */
export const LINEAR_ROLES: readonly LinearRole[] = ["q", "k", "v", "qkv", "o", "gate", "up", "gateUp", "down"];

/** The four distinct inputs of a decoder layer's linear layers (q/k/v share one, gate/up another). */
export type LinearInput = "attn_in" | "o_in" | "mlp_in" | "down_in";

const ROLE_INPUT: Readonly<Record<LinearRole, LinearInput>> = {
  q: "attn_in", k: "attn_in", v: "attn_in", qkv: "attn_in", o: "o_in",
  gate: "mlp_in", up: "mlp_in", gateUp: "mlp_in", down: "down_in",
};

/** The module a role's tensors live under inside a decoder layer. */
const ROLE_BLOCK: Readonly<Record<LinearRole, "self_attn" | "mlp">> = {
  q: "self_attn", k: "self_attn", v: "self_attn", qkv: "self_attn", o: "self_attn",
  gate: "mlp", up: "mlp", gateUp: "mlp", down: "mlp",
};

/** True for the roles that read the attention block's input (q, k, v or the fused qkv). */
export function readsAttentionInput(role: LinearRole): boolean {
  return ROLE_INPUT[role] === "attn_in";
}

/** True for the MLP's roles. */
export function isMlpRole(role: LinearRole): boolean {
  return ROLE_BLOCK[role] === "mlp";
}

/**
 * The Hugging Face module name of a transformer linear layer ("q_proj", "qkv_proj",
 * "dense", "fc1", ...): unique within a layer, it keys Fisher maps, calibration statistics
 * and gradients, and names the layer in messages.
 */
export type LinearName = string;

/** What a family calls the projections it has, by role. */
export type ProjectionNames = Readonly<Partial<Record<LinearRole, LinearName>>>;

/**
 * The projection sets of the families (src/model/architectures.ts picks one per family):
 * the Hugging Face module names, whose roles say which projections exist.
 */
export const PROJECTION_NAMES = {
  /** llama, mistral, qwen2, stablelm, gemma, gemma2: separate q/k/v, SwiGLU/GeGLU MLP. */
  llama: { q: "q_proj", k: "k_proj", v: "v_proj", o: "o_proj", gate: "gate_proj", up: "up_proj", down: "down_proj" },
  /** phi: attention output "dense", an MLP without a gate (fc1, fc2). */
  phi: { q: "q_proj", k: "k_proj", v: "v_proj", o: "dense", up: "fc1", down: "fc2" },
  /** phi3: fused qkv_proj and gate_up_proj (gate first). */
  phi3: { qkv: "qkv_proj", o: "o_proj", gateUp: "gate_up_proj", down: "down_proj" },
} as const satisfies Record<string, ProjectionNames>;

/** One linear layer of a decoder layer, as a model's config lists it. */
export interface LinearSpec {
  name: LinearName;
  role: LinearRole;
  /** Tensor name prefix inside a decoder layer, e.g. "self_attn.q_proj". */
  path: string;
  input: LinearInput;
  outFeatures: number;
  inFeatures: number;
  /** False when an earlier linear of the layer reads the same input (k/v after q, up after gate). */
  firstOfInput: boolean;
  /** The family's checkpoints store `<path>.bias` (the loader reads a bias wherever one is stored). */
  bias: boolean;
}

/** The sizes a layer's projection shapes follow from. */
export interface ProjectionShape {
  hiddenSize: number;
  intermediateSize: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
}

/** The shape [out, in] of the projection of `role`. */
function roleShape(s: ProjectionShape, role: LinearRole): [number, number] {
  const H = s.hiddenSize, F = s.intermediateSize, qDim = s.numHeads * s.headDim, kvDim = s.numKvHeads * s.headDim;
  switch (role) {
    case "q": return [qDim, H];
    case "k": case "v": return [kvDim, H];
    case "qkv": return [qDim + 2 * kvDim, H];
    case "o": return [H, qDim];
    case "gate": case "up": return [F, H];
    case "gateUp": return [2 * F, H];
    case "down": return [H, F];
  }
}

/** The specs of a layer's projections named by `names`, in LINEAR_ROLES order; `biased` says which store a bias. */
export function projectionSpecs(names: ProjectionNames, shape: ProjectionShape, biased: (role: LinearRole) => boolean): LinearSpec[] {
  const seen = new Set<LinearInput>();
  return LINEAR_ROLES.flatMap((role): LinearSpec[] => {
    const name = names[role];
    if (name === undefined) return [];
    const input = ROLE_INPUT[role], [outFeatures, inFeatures] = roleShape(shape, role);
    const firstOfInput = !seen.has(input);
    seen.add(input);
    return [{ name, role, path: `${ROLE_BLOCK[role]}.${name}`, input, outFeatures, inFeatures, firstOfInput, bias: biased(role) }];
  });
}

/** Anything that lists a layer's projections (a model's `DecoderLayout`). */
export interface ProjectionLayout {
  readonly family: string;
  readonly linears: readonly LinearSpec[];
}

/** The spec of the linear layer `name` of a layout; a programming error if there is none. */
export function linearSpec(layout: ProjectionLayout, name: LinearName): LinearSpec {
  const spec = layout.linears.find((s) => s.name === name);
  if (!spec) throw new Error(`no linear layer "${name}" in a ${layout.family} layer (it has ${layout.linears.map((s) => s.name).join(", ")})`);
  return spec;
}

export function layerPrefix(layer: number): string {
  return `model.layers.${layer}`;
}

/** The tensor name prefix of linear layer `name` of decoder layer `layer`, e.g. "model.layers.3.mlp.fc1". */
export function linearPrefix(layout: ProjectionLayout, layer: number, name: LinearName): string {
  return `${layerPrefix(layer)}.${linearSpec(layout, name).path}`;
}

/** The transformer linear layers of a decoder layer, by role (which ones exist is the layout's `linears`). */
export type LayerLinears = Partial<Record<LinearRole, LinearLayer>>;

/** A layer's linear layers made by `make`, one per spec of the layout. */
export function makeLinears(layout: ProjectionLayout, make: (spec: LinearSpec) => LinearLayer): LayerLinears {
  const out: LayerLinears = {};
  for (const spec of layout.linears) out[spec.role] = make(spec);
  return out;
}

/** The linear layer of `spec` in `linears`; a programming error if the layer lacks it. */
export function linearOf(linears: LayerLinears, spec: LinearSpec): LinearLayer {
  const lin = linears[spec.role];
  if (!lin) throw new Error(`a decoder layer has no linear layer "${spec.name}"`);
  return lin;
}

/** A layer's linear layers in the layout's order. */
export function linearsOf(layout: ProjectionLayout, linears: LayerLinears): LinearLayer[] {
  return layout.linears.map((spec) => linearOf(linears, spec));
}

/**
 * The key of a linear layer's input: "<layer>.<input>" with input one of attn_in, o_in,
 * mlp_in, down_in, so layers that share an input (q/k/v, gate/up) share its statistics.
 */
export function inputKey(layout: ProjectionLayout, layer: number, name: LinearName): string {
  return `${layer}.${linearSpec(layout, name).input}`;
}
