/**
 * Types shared by the benchmark loaders: a question, how prompts are rendered, and the
 * interface every benchmark module implements.
 */

/** A question id: a number (an index, a prompt id) or a string (StrategyQA's `qid`). */
export type QuestionId = number | string;

export interface Question {
  questionId: QuestionId;
  /** The user texts, one per turn (two for mt_bench, else one). */
  turns: string[];
  /** The text the scorer compares against, where the benchmark has one. */
  reference?: string;
  /** passkey only: the digits hidden in the prompt. */
  passKey?: string;
  /** Everything else the source record carried (category, topic, facts, ...). */
  extra?: Record<string, unknown>;
}

export interface ChatMessage {
  role: "user" | "assistant";
  content: string;
}

/** Which template prompts use: the reference's claude template, the model's chat template, or none. */
export type PromptTemplate = "reference" | "model" | "none";

/** Renders a conversation in one template, ending with the generation prompt (see prompt.ts). */
export interface ChatFormatter {
  readonly template: PromptTemplate;
  render(messages: ChatMessage[]): string;
}

export type Split = "test" | "validation";

export interface LoadOptions {
  /** A local data file in the benchmark's original schema; default: the bundled fixture. */
  file?: string;
  split: Split;
  /** Keep questions [questionBegin, questionEnd) of the loaded list (Python slice semantics). */
  questionBegin?: number;
  questionEnd?: number;
  /** Seeds generated benchmarks (passkey). */
  seed: number;
  /** passkey: number of prompts (reference 100). */
  passkeyCount?: number;
  /** passkey: digits in the pass key (reference 200). */
  passkeyDigits?: number;
  /** passkey: garbage blocks around the key (reference 8 = 200/25). */
  garbageBlocks?: number;
  /**
   * iwslt: counts the tokens of an English reference. When given, only pairs whose
   * English side has MORE than `minReferenceTokens` tokens are kept, as the reference does
   * with the lmsys/vicuna-7b-v1.5 tokenizer (BOS included). Without it nothing is filtered.
   */
  countTokens?: (text: string) => number;
  /** iwslt: the filter's threshold (reference 60). */
  minReferenceTokens?: number;
  /** iwslt: told how many pairs the filter kept, of how many. */
  onFilter?: (kept: number, total: number) => void;
}

export interface Benchmark {
  /** Canonical pmpd name (lower case): cnn_dm, dsum, iwslt, ... */
  readonly name: string;
  /**
   * The name the reference scripts use in file and folder names (`IWSLT` for iwslt); the
   * reference scorer detects the benchmark by this substring of the answer file's path.
   */
  readonly referenceName: string;
  /** max_new_tokens when neither the user nor a preset sets it. */
  readonly defaultMaxNewTokens: number;
  /** True when the questions are generated (passkey) and no data file is read. */
  readonly synthetic: boolean;
  load(options: LoadOptions): Question[];
  /**
   * The exact prompt text for turn `turnIndex` of `question`; `previousAnswers` holds the
   * answers of turns 0..turnIndex-1 (for mt_bench, cleaned as the reference does: special
   * tokens removed, stripped).
   */
  buildPrompt(question: Question, turnIndex: number, previousAnswers: readonly string[], chat: ChatFormatter): string;
  /** Extra keys of the answer line (spec 6.4): `pass_key` (passkey), `reference` (iwslt). */
  answerFields(question: Question): { pass_key?: string; reference?: string };
}
