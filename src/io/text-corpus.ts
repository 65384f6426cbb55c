/**
 * Text corpora as lists of documents: a .jsonl file in the C4 format (one `{"text": ...}`
 * object per line), or a plain text file whose documents are separated by blank lines.
 */
import { readFileSync } from "node:fs";
import { PmpdError } from "../errors.js";

export function readTextDocuments(file: string): string[] {
  let content: string;
  try {
    content = readFileSync(file, "utf8");
  } catch (e) {
    throw new PmpdError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let docs: string[];
  if (file.endsWith(".jsonl") || file.endsWith(".json")) {
    docs = [];
    const lines = content.split("\n");
    for (const [i, line] of lines.entries()) {
      if (line.trim() === "") continue;
      let obj: unknown;
      try { obj = JSON.parse(line); } catch { throw new PmpdError(`${file}:${i + 1}: not valid JSON`); }
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
