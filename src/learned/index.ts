/**
 * The learned scheduler's model (KVCacheClassifier), its training and hyper-parameter
 * search, the training-set file format, and ONNX export/inference.
 */
export {
  KVCacheClassifier, PARAM_NAMES, LOSS_MODES, LAYER_NORM_EPS, DEFAULT_CLASSES, CLASSIFIER_FORMAT,
  paramShapes, lossFromLogits, softmax, classifierFileName,
  type ParamName, type Params, type LossMode, type KvInput, type ClassifierConfig, type ForwardTrace, type LossResult,
} from "./classifier.js";
export { Adam, type AdamOptions } from "./adam.js";
export {
  trainClassifier, evaluateClassifier, oversampleIndices, balanceClasses, classCounts,
  type LabeledSample, type TrainHyperParams, type TrainOptions, type EpochReport, type SplitInfo, type TrainResult,
} from "./train.js";
export {
  DATASET_FORMAT, DATASET_FORMAT_VERSION, datasetPaths, KvDatasetWriter, writeKvDataset, readKvDataset,
  type DatasetManifest, type DatasetInfo, type DatasetStatus, type DatasetExpectation, type KvDataset,
} from "./dataset-format.js";
export {
  parseSearchSpace, loadSearchSpace, resolveSearchSpace, builtinSearchSpacePath, toTrainHyperParams,
  BUILTIN_SEARCH_SPACES, HYPERPARAMETER_NAMES, DEFAULT_MAX_EVALS,
  type ParamSpec, type ParamSpace, type SearchSpace,
} from "./search-space.js";
export { HyperSearch, minimize, TPE_DEFAULTS, SEARCH_ALGOS, type SearchAlgo, type TpeSettings, type Trial, type MinimizeOptions } from "./tpe.js";
export { hypertuneClassifier, type HypertuneOptions, type HypertuneTrial, type HypertuneResult } from "./hypertune.js";
export { exportClassifierOnnx, classifierOnnxBytes, ONNX_IR_VERSION, ONNX_OPSET, type OnnxExportOptions } from "./onnx-export.js";
export { OnnxClassifierSession, runClassifierOnnx } from "./onnx-run.js";
