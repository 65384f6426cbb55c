/**
 * Text corpora as lists of documents: a .jsonl file in the C4 format (one `{"text": ...}`
 * object per line), or a plain text file whose documents are separated by blank lines.
 */
import { PmpdError } from "../errors.js";
import { parseJsonText, readTextFile, READ_LIMITS } from "./bounded-read.js";

export function readTextDocuments(file: string): string[] {
  const content = readTextFile(file, READ_LIMITS.data, "text corpus");
  let docs: string[];
  if (file.endsWith(".jsonl") || file.endsWith(".json")) {
    docs = [];
    const lines = content.split("\n");
    for (const [i, line] of lines.entries()) {
      if (line.trim() === "") continue;
      const obj = parseJsonText(`${file}:${i + 1}`, line);
      const text = (obj as { text?: unknown } | null)?.text;
      if (typeof text !== "string") throw new PmpdError(`${file}:${i + 1}: no "text" string field`);
      if (text.trim() !== "") docs.push(text);
    }
  } else {
    docs = content.split(/\n\s*\n/).map((d) => d.trim()).filter((d) => d !== "");
  }
  if (docs.length === 0) throw new PmpdError(`${file}: no usable text`);
  return docs;
}
