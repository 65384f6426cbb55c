/** `pmpd generate`: a prompt in, the model's continuation out (streamed, or as JSON). */
import type { Command } from "commander";
import { readFileSync } from "node:fs";
import { PmpdError } from "../src/errors.js";
import { parsePrecisionLabel } from "../src/model/precision.js";
import { generate } from "../src/engine/generate.js";
import { PMPD_VERSION } from "../src/version.js";
import { addModelOptions, loadModelFromOptions, parseInteger, parseNumber, printJson, type ModelCliOptions } from "./options.js";

interface GenerateCliOptions extends ModelCliOptions {
  model?: string;
  promptFile?: string;
  chat?: boolean;
  maxNewTokens?: string;
  temperature: string;
  topK: string;
  topP: string;
  seed: string;
  stop: string[];
  precision?: string;
  json?: boolean;
}

export function registerGenerate(program: Command): void {
  const cmd = program
    .command("generate")
    .description("generate a continuation of a prompt")
    .argument("[prompt...]", "prompt text (or use --prompt-file)")
    .option("-m, --model <dir|org/name>", "model directory or hub id (default: the bundled tiny-llama)")
    .option("--prompt-file <file>", "read the prompt from a file")
    .option("--chat", "wrap the prompt as a user message with the model's chat template")
    .option("-n, --max-new-tokens <n>", "tokens to generate (default: generation_config.json, else 128)")
    .option("--temperature <t>", "sampling temperature; 0 = greedy", "0")
    .option("--top-k <k>", "sample from the k most likely tokens; 0 = all", "0")
    .option("--top-p <p>", "nucleus sampling mass", "1")
    .option("--seed <n>", "sampling seed", "0")
    .option("--stop <text>", "stop when this text appears (repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--precision <bits>", "weight precision for prefill and decode: a bit-width, or a MixLLM label such as 4.48 (quantized models)")
    .option("--json", "print one JSON object instead of streaming text");
  addModelOptions(cmd).action(async (words: string[], o: GenerateCliOptions) => {
    let prompt = words.join(" ");
    if (o.promptFile !== undefined) {
      try { prompt = readFileSync(o.promptFile, "utf8"); } catch { throw new PmpdError(`${o.promptFile}: cannot read the prompt file`); }
    }
    if (prompt === "") throw new PmpdError("no prompt given (pass text or --prompt-file)");
    const temperature = parseNumber("--temperature", o.temperature, 0, 100);
    const topK = parseInteger("--top-k", o.topK, 0);
    const topP = parseNumber("--top-p", o.topP, 0, 1);
    const seed = parseInteger("--seed", o.seed, 0, 2 ** 32 - 1);
    const requested = o.precision !== undefined ? parsePrecisionLabel("--precision", o.precision) : "highest";
    const pm = await loadModelFromOptions(o.model, o, [requested]);
    const maxNewTokens = o.maxNewTokens !== undefined ? parseInteger("--max-new-tokens", o.maxNewTokens, 0) : pm.generation.maxNewTokens ?? 128;
    const precision = pm.precisions[0]!;
    let ids: number[];
    if (o.chat) {
      const rendered = pm.tokenizer.applyChatTemplate([{ role: "user", content: prompt }]);
      if (rendered === null) throw new PmpdError(`${pm.dir}: the model has no chat_template (drop --chat)`);
      ids = pm.tokenizer.encode(rendered, false);
    } else {
      ids = pm.tokenizer.encode(prompt);
    }
    const stream = !o.json;
    const result = generate(pm, ids, {
      maxNewTokens,
      sampling: temperature > 0 ? { temperature, topK, topP } : undefined,
      seed,
      stopStrings: o.stop,
      prefillPrecision: precision,
      onToken: stream ? (_id, delta) => { process.stdout.write(delta); } : undefined,
    });
    const decodeMs = result.stepMs.reduce((a, b) => a + b, 0);
    const stats = {
      prompt_tokens: result.promptTokens,
      new_tokens: result.tokens.length,
      stop_reason: result.stopReason,
      prefill_ms: result.prefillMs,
      decode_tokens_per_s: result.stepMs.length > 0 ? (result.stepMs.length * 1000) / decodeMs : null,
    };
    if (stream) {
      process.stdout.write("\n");
      process.stderr.write(`[${stats.new_tokens} tokens, ${stats.stop_reason}; prefill ${stats.prefill_ms.toFixed(1)} ms` +
        (stats.decode_tokens_per_s ? `, decode ${stats.decode_tokens_per_s.toFixed(1)} tok/s]` : "]") + "\n");
    } else {
      printJson({
        text: result.text,
        token_ids: result.tokens,
        ...stats,
        provenance: { model: pm.dir, precision, temperature, top_k: topK, top_p: topP, seed, pmpd_version: PMPD_VERSION },
      });
    }
  });
}
