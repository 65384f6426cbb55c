/**
 * Metric library behind `pmpd score`.
 *
 *  - ROUGE (rouge-score semantics, use_stemmer=True): {@link rougeScores}, {@link rougeMean}
 *  - BLEU: {@link bleuCorpus} (HF evaluate "bleu", 0..1) and {@link sacreBleuCorpus} (sacreBLEU defaults, 0..100)
 *  - tokenisers/stemmer: {@link tokenize13a}, {@link rougeTokenize}, {@link porterStemNltk}
 *  - accuracy: {@link gsm8kExtractNumber}, {@link gsm8kCorrect}, {@link passkeyCorrect}
 *  - answer-file statistics: {@link averageBits}, {@link averageNewTokens}, {@link tokensPerSecond}
 */
export { porterStemNltk, CachedPorterStemmer } from "./porter-nltk.js";
export {
  rougeScores,
  rougeLScore,
  rougeN,
  rougeAggregate,
  rougeMean,
  rougeTokenize,
  rougeLsumSentences,
  ROUGE_TYPES,
} from "./rouge.js";
export type { RougeScore, RougeScores, RougeType, RougePair } from "./rouge.js";
export { tokenize13a, tokenize13aString, pySplitWhitespace, pyRstrip } from "./tokenize-13a.js";
export { bleuCorpus, sacreBleuCorpus, SACREBLEU_VERSION, pyFixed } from "./bleu.js";
export type { BleuReferences, BleuResult, SacreBleuResult } from "./bleu.js";
export { gsm8kExtractNumber, gsm8kReference, gsm8kCorrect, passkeyCorrect, accuracy } from "./accuracy.js";
export { averageBits, averageNewTokens, tokensPerSecond } from "./stats.js";
export type { AnswerRecord, AnswerChoice } from "./stats.js";
