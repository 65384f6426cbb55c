/**
 * Choosing the static scheduler's switch step from the validation runs, as the paper frames
 * it: the smallest average bit-width whose quality is within `tolerance` of the uniform
 * high-precision run. Quality is the benchmark's headline metric against the dataset's
 * references when it has them, else ROUGE-L against the high-precision run's own answers.
 */
import { readAnswerFile } from "../answers/index.js";
import { idKey } from "../answers/schema.js";
import { averageBits, rougeAggregate } from "../score/index.js";
import { primaryMetric, scoreAnswerFiles } from "./score-answers.js";

export interface SearchCandidate {
  step: number;
  file: string;
}

export interface SearchChoice {
  metric: string;
  highQuality: number;
  tolerance: number;
  candidates: Array<{ step: number; avgBits: number; quality: number; withinTolerance: boolean }>;
  /** null when no step meets the target. */
  chosenStep: number | null;
}

export function chooseStaticStep(bench: string, highFile: string, candidates: SearchCandidate[], tolerance: number): SearchChoice {
  const metric = primaryMetric(bench);
  let quality: (file: string) => number;
  let metricName: string;
  if (metric !== null) {
    metricName = metric;
    quality = (file) => scoreAnswerFiles([file])[0]!.metrics[metric]!;
  } else {
    metricName = "rougeL vs high";
    const high = new Map(readAnswerFile(highFile).map((l) => [idKey(l.question_id), l.choices[0]!.turns.join("\n")]));
    quality = (file) => rougeAggregate(readAnswerFile(file)
      .filter((l) => high.has(idKey(l.question_id)))
      .map((l) => [l.choices[0]!.turns.join("\n"), high.get(idKey(l.question_id))!] as [string, string])).rougeL;
  }
  const highQuality = quality(highFile);
  const rows = candidates.map((c) => {
    const q = quality(c.file);
    return { step: c.step, avgBits: averageBits(readAnswerFile(c.file)), quality: q, withinTolerance: q >= highQuality - tolerance };
  });
  const ok = rows.filter((r) => r.withinTolerance).sort((a, b) => a.avgBits - b.avgBits || a.step - b.step);
  return { metric: metricName, highQuality, tolerance, candidates: rows, chosenStep: ok.length > 0 ? ok[0]!.step : null };
}
