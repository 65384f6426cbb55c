/**
 * A model's tokenizer: `tokenizer.json` run by @huggingface/tokenizers (a faithful JS port
 * of the Rust `tokenizers` crate: byte-level BPE, BPE with byte fallback, Unigram and
 * WordPiece), plus `tokenizer_config.json` for the special tokens and the chat template,
 * which @huggingface/jinja renders exactly as transformers' `apply_chat_template` does.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { cut, PmpdError, quote } from "../errors.js";
import { readJsonObject, readTextFile, READ_LIMITS } from "./bounded-read.js";
import { ChatTemplate } from "./chat-template.js";
import { readJsonFile } from "./config.js";

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

const MODEL_TYPES = new Set(["BPE", "WordPiece", "Unigram"]);

/** A token may be given in tokenizer_config.json as a string or as an AddedToken object. */
function tokenContent(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof (value as { content?: unknown }).content === "string") {
    return (value as { content: string }).content;
  }
  return null;
}

/**
 * Checks what the tokenizer library trusts: the model type, and token ids that are
 * integers within reach of the vocabulary's size (the library sizes tables by the largest
 * id, so one id of 2^31 in a hostile file would allocate for minutes).
 */
function checkTokenIds(file: string, json: Record<string, unknown>): void {
  const model = json.model as { type?: unknown; vocab?: unknown } | undefined;
  const type = model?.type;
  if (typeof type !== "string" || !MODEL_TYPES.has(type)) {
    throw new PmpdError(`${file}: unknown tokenizer model type ${quote(type)} (supported: ${[...MODEL_TYPES].join(", ")})`);
  }
  const vocab = model!.vocab;
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added)) throw new PmpdError(`${file}: "added_tokens" must be a list`);
  const entries = vocab !== null && typeof vocab === "object" ? (Array.isArray(vocab) ? vocab.length : Object.keys(vocab).length) : 0;
  const limit = 4 * (entries + added.length) + 1024;
  const checkId = (what: string, id: unknown) => {
    if (!Number.isSafeInteger(id) || (id as number) < 0 || (id as number) >= limit) {
      throw new PmpdError(`${file}: ${what} has id ${quote(id)}, not a token id of this ${entries}-entry vocabulary`);
    }
  };
  if (vocab !== null && typeof vocab === "object" && !Array.isArray(vocab)) {
    for (const [token, id] of Object.entries(vocab)) checkId(`token ${quote(token, 30)}`, id);
  }
  for (const t of added) checkId("an added token", (t as { id?: unknown } | null)?.id);
}

/**
 * Where the chat template lives: `chat_template.jinja` (as transformers saves it since 4.43),
 * else `chat_template` in tokenizer_config.json — a string, or a list of named templates of
 * which "default" is used. Errors name the file the template came from.
 */
function chatTemplateSource(dir: string, configFile: string, config: Record<string, unknown>): { source: string; file: string } | null {
  const jinjaFile = join(dir, "chat_template.jinja");
  if (existsSync(jinjaFile)) return { source: readTextFile(jinjaFile, READ_LIMITS.config, "chat template"), file: jinjaFile };
  const chat = config.chat_template;
  if (chat === undefined || chat === null) return null;
  if (typeof chat === "string") return { source: chat, file: configFile };
  if (Array.isArray(chat)) {
    const named = chat.find((t) => t !== null && typeof t === "object" && (t as { name?: unknown }).name === "default") as { template?: unknown } | undefined;
    if (named === undefined) return null;
    if (typeof named.template === "string") return { source: named.template, file: configFile };
  }
  throw new PmpdError(`${configFile}: "chat_template" must be a string or a list of {name, template} objects`);
}

export class ModelTokenizer {
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly chatTemplate: string | null;
  readonly vocabSize: number;
  private readonly addBos: boolean;
  private readonly template: ChatTemplate | null;
  private readonly specialIds: Set<number>;

  private constructor(
    private readonly tokenizer: Tokenizer,
    config: Record<string, unknown>,
    readonly tokenizerFile: string,
    chat: { source: string; file: string } | null,
  ) {
    this.bosToken = tokenContent(config.bos_token);
    this.eosToken = tokenContent(config.eos_token);
    this.bosTokenId = this.bosToken === null ? null : tokenizer.token_to_id(this.bosToken) ?? null;
    this.eosTokenId = this.eosToken === null ? null : tokenizer.token_to_id(this.eosToken) ?? null;
    this.addBos = config.add_bos_token === true;
    this.vocabSize = tokenizer.get_vocab(true).size;
    this.specialIds = new Set([...tokenizer.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) => id));
    this.template = chat === null ? null : ChatTemplate.parse(chat.source, chat.file);
    this.chatTemplate = this.template?.source ?? null;
  }

  /** Loads `tokenizer.json` and `tokenizer_config.json` (optional) from a model directory. */
  static fromDirectory(dir: string): ModelTokenizer {
    const file = join(dir, "tokenizer.json");
    if (!existsSync(file)) throw new PmpdError(`${dir}: no tokenizer.json`);
    const json = readJsonObject(file, READ_LIMITS.tokenizer, "tokenizer.json");
    checkTokenIds(file, json);
    const configFile = join(dir, "tokenizer_config.json");
    const config = existsSync(configFile) ? readJsonFile(configFile) : {};
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(json, config);
    } catch (e) {
      throw new PmpdError(`${file}: cannot build the tokenizer (${cut(String((e as Error)?.message ?? e))})`);
    }
    return new ModelTokenizer(tokenizer, config, file, chatTemplateSource(dir, configFile, config));
  }

  /**
   * Token ids of `text`. With `addSpecialTokens`, the tokenizer's post-processor runs (it
   * adds BOS for most HF LLaMA tokenizers), and BOS is prepended when tokenizer_config asks
   * for it (`add_bos_token`) and the post-processor did not.
   */
  encode(text: string, addSpecialTokens = true): number[] {
    const ids = this.guard(() => this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids);
    if (addSpecialTokens && this.addBos && this.bosTokenId !== null && ids[0] !== this.bosTokenId) {
      ids.unshift(this.bosTokenId);
    }
    return ids;
  }

  decode(ids: number[], skipSpecialTokens = true): string {
    if (ids.length === 0) return "";
    return this.guard(() => this.tokenizer.decode(ids, { skip_special_tokens: skipSpecialTokens, clean_up_tokenization_spaces: false }));
  }

  /** Runs the tokenizer library; its failures come from the tokenizer's file, so they name it. */
  private guard<T>(work: () => T): T {
    try {
      return work();
    } catch (e) {
      throw new PmpdError(`${this.tokenizerFile}: the tokenizer failed (${cut(String((e as Error)?.message ?? e))})`);
    }
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** The model's chat template applied to `messages`; null when the model has none. */
  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt = true): string | null {
    if (this.template === null) return null;
    return this.template.render({
      messages,
      add_generation_prompt: addGenerationPrompt,
      bos_token: this.bosToken ?? "",
      eos_token: this.eosToken ?? "",
    });
  }
}
