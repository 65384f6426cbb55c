/**
 * Model-based quality metrics computed from user-supplied ONNX models (docs/MODEL_METRICS.md):
 * BERTScore and BLEURT. pmpd ships no model: without a model directory these metrics are
 * simply not computed (absent from the output, never 0).
 */
export { bertScore, BertScorer, type BertScorePair, type BertScoreResult, type ModelMetricOptions } from "./bertscore.js";
export { bleurtScore, bleurtScores, BleurtScorer, type BleurtInput } from "./bleurt.js";
export {
  MetricModel, MetricTokenizer, readMetricConfig, pyStrip,
  METRIC_CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE, TOKENIZER_CONFIG_FILE,
  type InputRole, type MetricConfig, type MetricKind, type SessionOptions,
} from "./onnx-text-model.js";
