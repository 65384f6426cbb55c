/**
 * onnxruntime-node, imported on first use: only the learned scheduler and the model-based
 * metrics run ONNX graphs, and loading its native binding at start-up would cost every pmpd
 * command (even --help) for nothing.
 */
import type * as Ort from "onnxruntime-node";

export type { Ort };

let loading: Promise<typeof Ort> | null = null;

export function onnxRuntime(): Promise<typeof Ort> {
  return (loading ??= import("onnxruntime-node"));
}
