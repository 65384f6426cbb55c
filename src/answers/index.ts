/** Answer files (spec §6.4): schema, Python-compatible JSON, the locked resumable writer and the reader. */
export { AnswerWriter, readAnswerFile, type AnswerWriterOptions } from "./writer.js";
export { writeFileAtomic } from "../io/output-path.js";
export {
  ANSWER_ID_ALPHABET, answerLineProblem, compareQuestionIds, makeProvenance, newAnswerId, provenanceDifferences, serializeAnswerLine,
  type AnswerChoice, type AnswerLine, type NewAnswer, type PrecisionLogOut, type Provenance, type QuestionId,
} from "./schema.js";
export { PyFloat, pyFloatRepr, pyJsonDumps, pyJsonString } from "./python-json.js";
export { acquireLock, processAlive, type FileLock } from "./lock.js";
