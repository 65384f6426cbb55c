/** `pmpd perplexity`: perplexity of a text file or JSONL corpus under a model. */
import type { Command } from "commander";
import { PmpdError } from "../src/errors.js";
import { parsePrecisionLabel } from "../src/model/precision.js";
import { perplexity } from "../src/engine/perplexity.js";
import { readTextDocuments } from "../src/io/text-corpus.js";
import { PMPD_VERSION } from "../src/version.js";
import { heldOutTextFile } from "../src/paths.js";
import { addModelOptions, loadModelFromOptions, parseInteger, printJson, type ModelCliOptions } from "./options.js";
import { createProgress } from "./progress.js";

interface PerplexityCliOptions extends ModelCliOptions {
  model?: string;
  ctx?: string;
  stride?: string;
  precision?: string;
  precisionLow?: string;
  switchAt?: string;
  maxDocuments?: string;
  json?: boolean;
}

export function registerPerplexity(program: Command): void {
  const cmd = program
    .command("perplexity")
    .description("perplexity of a text (.txt: documents separated by blank lines; .jsonl: {\"text\": ...} per line)")
    .argument("[file]", "text or JSONL file (default: the bundled held-out text)")
    .option("-m, --model <dir|org/name>", "model directory or hub id (default: the bundled tiny-llama)")
    .option("--ctx <n>", "window length in tokens (default: the model's context length)")
    .option("--stride <n>", "window step (default: --ctx, i.e. disjoint windows)")
    .option("--precision <bits>", "weight precision: a bit-width, or a MixLLM model's label such as 4.48 (quantized models)")
    .option("--precision-low <bits>", "with --switch-at: the precision of later positions (a PMPD schedule under teacher forcing)")
    .option("--switch-at <n>", "positions below n in each window run at --precision, the rest at --precision-low")
    .option("--max-documents <n>", "score only the first n documents")
    .option("--json", "print JSON");
  addModelOptions(cmd).action(async (file: string | undefined, o: PerplexityCliOptions) => {
    const path = file ?? heldOutTextFile();
    let docs = readTextDocuments(path);
    if (o.maxDocuments !== undefined) docs = docs.slice(0, parseInteger("--max-documents", o.maxDocuments, 1));
    const requested = o.precision !== undefined ? parsePrecisionLabel("--precision", o.precision) : "highest";
    if ((o.precisionLow === undefined) !== (o.switchAt === undefined)) throw new PmpdError("--precision-low and --switch-at go together");
    const lowPrecision = o.precisionLow !== undefined ? parsePrecisionLabel("--precision-low", o.precisionLow) : undefined;
    const pm = await loadModelFromOptions(o.model, o, lowPrecision === undefined ? [requested] : [requested, lowPrecision]);
    const precision = requested === "highest" ? Math.max(...pm.precisions) : requested;
    const ctx = o.ctx !== undefined ? parseInteger("--ctx", o.ctx, 2, pm.model.contextLength) : pm.model.contextLength;
    const stride = o.stride !== undefined ? parseInteger("--stride", o.stride, 1, ctx) : ctx;
    const switchAt = o.switchAt !== undefined ? parseInteger("--switch-at", o.switchAt, 0, ctx) : undefined;
    const ids = docs.map((d) => pm.tokenizer.encode(d));
    const progress = createProgress({ quiet: false });
    progress.start("perplexity", ids.length);
    let done = 0;
    const result = perplexity(pm, ids, { ctx, stride, precision, lowPrecision, switchAt, onDocument: () => progress.update(++done) });
    progress.finish();
    const out = {
      file: path, model: pm.dir, precision, ...(switchAt !== undefined ? { precision_low: lowPrecision, switch_at: switchAt } : {}),
      ctx, stride, documents: ids.length, perplexity: result.perplexity, nll: result.nll, scored_tokens: result.scoredTokens,
      average_bits: result.averageBits, pmpd_version: PMPD_VERSION,
    };
    const schedule = switchAt === undefined ? `${precision}-bit`
      : `${precision}-bit below position ${switchAt}, then ${lowPrecision}-bit: ${result.averageBits.toFixed(3)} bits on average`;
    if (o.json) printJson(out);
    else process.stdout.write(`perplexity ${result.perplexity.toFixed(4)} over ${result.scoredTokens} tokens (${ids.length} documents, ctx ${ctx}, stride ${stride}, ${schedule})\n`);
  });
}
