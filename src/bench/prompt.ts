/**
 * Prompt rendering.
 *
 * The reference harness formats every chat-style benchmark with FastChat's template for
 * "claude-2", which is the `claude` template: roles "Human"/"Assistant", separator "\n\n",
 * an empty system message and the "colon, single separator" style. A conversation renders
 * as the system message ("") + "\n\n", then per message `role + ": " + text + "\n\n"`, and
 * for the final, still empty assistant message just `role + ":"`. FastChat tests the text
 * for truthiness, so an EMPTY earlier answer also renders as bare "Assistant:" with no
 * separator; that is reproduced here.
 *
 * cnn_dm, dsum and iwslt put an instruction in front of the rendered template. With the
 * model's own chat template (ChatFormatter.render returns a string) that instruction is
 * put at the start of the first user message instead, since text before a chat template's
 * own markup (BOS, role tokens) would not be part of any message.
 */
import type { ChatFormatter, ChatMessage } from "./types.js";

/** The instruction the reference puts before the template for cnn_dm, dsum and iwslt. */
export const ROLE_PLAY_PREFIX = "Play the role of assistant and answer the question from human. ";

/** A formatter for models without a chat template: the claude template is always used. */
export const NO_CHAT_TEMPLATE: ChatFormatter = { render: () => null };

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
 * Renders `messages` with the model's chat template when it has one, else with the claude
 * template; `prefix` is the reference's instruction (see the file comment for placement).
 */
export function renderChat(messages: ChatMessage[], chat: ChatFormatter, prefix = ""): string {
  const forModel = prefix === "" ? messages
    : messages.map((m, i) => (i === 0 ? { role: m.role, content: prefix + m.content } : m));
  const rendered = chat.render(forModel);
  if (rendered !== null) return rendered;
  return prefix + claudePrompt(messages);
}
