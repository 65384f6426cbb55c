/**
 * Statistics over parsed PMPD answer-file records (one JSON object per line, one per question).
 */

export interface AnswerChoice {
  index: number;
  /** Generated text per turn. */
  turns: string[];
  idxs: number[];
  /** Tokens generated per turn. */
  new_tokens: number[];
  /** Seconds spent generating per turn. */
  wall_time: number[];
  /** Per turn: bit width -> number of decoding steps run at that precision. */
  precision_log: Array<Record<string, number>>;
}

export interface AnswerRecord {
  question_id: number | string;
  answer_id: string;
  model_id: string;
  choices: AnswerChoice[];
  tstamp: number;
}

function mean(values: readonly number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/**
 * Average bit width. For each record (question), the step-weighted mean of its precision logs
 * summed over all turns (and choices): sum(bits * steps) / sum(steps); questions whose logs are
 * empty are skipped; the result is the plain mean over the remaining questions (NaN if none).
 */
export function averageBits(records: readonly AnswerRecord[]): number {
  const perQuestion: number[] = [];
  for (const rec of records) {
    let weighted = 0;
    let steps = 0;
    for (const choice of rec.choices ?? []) {
      for (const turnLog of choice.precision_log ?? []) {
        for (const [bits, count] of Object.entries(turnLog ?? {})) {
          weighted += Number(bits) * count;
          steps += count;
        }
      }
    }
    if (steps > 0) perQuestion.push(weighted / steps);
  }
  return mean(perQuestion);
}

/** Mean of `new_tokens` over every turn of every choice of every question (NaN if there are none). */
export function averageNewTokens(records: readonly AnswerRecord[]): number {
  const all: number[] = [];
  for (const rec of records) {
    for (const choice of rec.choices ?? []) {
      for (const t of choice.new_tokens ?? []) all.push(t);
    }
  }
  return mean(all);
}

/** Throughput: total new tokens / total wall time in seconds (NaN when no time was recorded). */
export function tokensPerSecond(records: readonly AnswerRecord[]): number {
  let tokens = 0;
  let seconds = 0;
  for (const rec of records) {
    for (const choice of rec.choices ?? []) {
      for (const t of choice.new_tokens ?? []) tokens += t;
      for (const w of choice.wall_time ?? []) seconds += w;
    }
  }
  return seconds > 0 ? tokens / seconds : Number.NaN;
}
