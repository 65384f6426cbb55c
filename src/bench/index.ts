/** The benchmarks: loaders, prompt rules, fixtures, hub resolution and eval presets. */
export type { Benchmark, ChatFormatter, ChatMessage, LoadOptions, PromptTemplate, Question, QuestionId, Split } from "./types.js";
export { benchmarkNames, getBenchmark } from "./registry.js";
export { canonicalBenchName, defaultFixtureFile, fixturesDir } from "./fixtures.js";
export {
  NO_TEMPLATE, PROMPT_TEMPLATES, REFERENCE_TEMPLATE, ROLE_PLAY_PREFIX, claudePrompt, conversation, parsePromptTemplate, plainPrompt,
  promptFormatter, renderChat,
} from "./prompt.js";
export { csvRecords, parseCsv, type CsvRecord, type CsvRow } from "./csv.js";
export { readRecords, type SourceRecord } from "./records.js";
export { HUB_DATA_SOURCES, resolveBenchmarkFile, type BenchmarkHubOptions, type HubDataSource } from "./hub.js";
export { PRESET_KEYS, loadPreset, validatePreset, type Preset } from "./presets.js";
export { cnnDmUserText } from "./cnn-dm.js";
export { dsumUserText } from "./dsum.js";
export { IWSLT_MIN_REFERENCE_TOKENS, iwsltUserText } from "./iwslt.js";
export { cleanMtBenchAnswer, mtBenchPromptId } from "./mt-bench.js";
export { gsm8kFinalAnswer } from "./gsm8k.js";
export { PASSKEY_GARBAGE, PASSKEY_INSTRUCTION, PASSKEY_QUESTION, generatePasskeyQuestions, passkeyText, type PasskeyOptions } from "./passkey.js";
