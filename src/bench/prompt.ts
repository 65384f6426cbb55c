/**
 * Prompt rendering, with a choice of template (`--prompt-template`):
 *
 *  - "reference" (the default): the reference harness formats every chat-style benchmark
 *    with FastChat's template for "claude-2", which is the `claude` template: roles
 *    "Human"/"Assistant", separator "\n\n", an empty system message and the "colon, single
 *    separator" style. A conversation renders as the system message ("") + "\n\n", then per
 *    message `role + ": " + text + "\n\n"`, and for the final, still empty assistant message
 *    just `role + ":"`. FastChat tests the text for truthiness, so an EMPTY earlier answer
 *    also renders as bare "Assistant:" with no separator; that is reproduced here. The
 *    reference uses it whatever the model, chat template or not.
 *  - "model": the model's own chat template. cnn_dm, dsum and iwslt put an instruction in
 *    front of the rendered template; here it goes at the start of the first user message,
 *    since text before a chat template's own markup (BOS, role tokens) would not be part of
 *    any message.
 *  - "none": the user texts alone (earlier turns and answers joined by blank lines), without
 *    the instruction, which speaks of a human and an assistant the prompt no longer has.
 */
import { PmpdError } from "../errors.js";
import type { ChatFormatter, ChatMessage, PromptTemplate } from "./types.js";

export const PROMPT_TEMPLATES: readonly PromptTemplate[] = ["reference", "model", "none"];

/** Parses `--prompt-template`. */
export function parsePromptTemplate(text: string): PromptTemplate {
  if (!(PROMPT_TEMPLATES as readonly string[]).includes(text)) {
    throw new PmpdError(`--prompt-template must be one of ${PROMPT_TEMPLATES.join(", ")}, got "${text}"`);
  }
  return text as PromptTemplate;
}

/** The instruction the reference puts before the template for cnn_dm, dsum and iwslt. */
export const ROLE_PLAY_PREFIX = "Play the role of assistant and answer the question from human. ";

/** FastChat's `claude` template with the generation prompt ("Assistant:") appended. */
export function claudePrompt(messages: readonly ChatMessage[]): string {
  const sep = "\n\n";
  let out = "" + sep;
  for (const m of messages) {
    const role = m.role === "user" ? "Human" : "Assistant";
    out += m.content ? `${role}: ${m.content}${sep}` : `${role}:`;
  }
  return `${out}Assistant:`;
}

/** The messages' texts with no template: joined by blank lines. */
export function plainPrompt(messages: readonly ChatMessage[]): string {
  return messages.map((m) => m.content).join("\n\n");
}

/** The reference's prompts: the claude template, whatever the model. */
export const REFERENCE_TEMPLATE: ChatFormatter = { template: "reference", render: claudePrompt };

/** No template: the user texts as they are. */
export const NO_TEMPLATE: ChatFormatter = { template: "none", render: plainPrompt };

/**
 * The formatter for `template`; "model" renders with `modelTemplate`, which returns null when
 * the model has no chat template: that is a PmpdError naming `where` (the model), raised here
 * so a run fails before it writes anything.
 */
export function promptFormatter(template: PromptTemplate, modelTemplate: (messages: ChatMessage[]) => string | null, where: string): ChatFormatter {
  switch (template) {
    case "reference": return REFERENCE_TEMPLATE;
    case "none": return NO_TEMPLATE;
    case "model": {
      const noTemplate = () => new PmpdError(`${where}: the model has no chat_template (use --prompt-template reference or none)`);
      if (modelTemplate([{ role: "user", content: "x" }]) === null) throw noTemplate();
      return {
        template,
        render: (messages) => {
          const rendered = modelTemplate(messages);
          if (rendered === null) throw noTemplate();
          return rendered;
        },
      };
    }
  }
}

/** The conversation of turn `turnIndex`: earlier turns with their answers, then the new user text. */
export function conversation(turns: readonly string[], turnIndex: number, previousAnswers: readonly string[]): ChatMessage[] {
  if (!Number.isInteger(turnIndex) || turnIndex < 0 || turnIndex >= turns.length) {
    throw new RangeError(`turn ${turnIndex} does not exist (the question has ${turns.length} turn(s))`);
  }
  if (previousAnswers.length < turnIndex) {
    throw new RangeError(`turn ${turnIndex} needs the answers of the ${turnIndex} earlier turn(s), got ${previousAnswers.length}`);
  }
  const messages: ChatMessage[] = [];
  for (let j = 0; j < turnIndex; j++) {
    messages.push({ role: "user", content: turns[j]! }, { role: "assistant", content: previousAnswers[j]! });
  }
  messages.push({ role: "user", content: turns[turnIndex]! });
  return messages;
}

/**
 * Renders `messages` with the formatter's template; `prefix` is the reference's instruction
 * (see the file comment for where each template puts it).
 */
export function renderChat(messages: ChatMessage[], chat: ChatFormatter, prefix = ""): string {
  switch (chat.template) {
    case "reference": return prefix + chat.render(messages);
    case "none": return chat.render(messages);
    case "model": return chat.render(prefix === "" ? messages
      : messages.map((m, i) => (i === 0 ? { role: m.role, content: prefix + m.content } : m)));
  }
}
