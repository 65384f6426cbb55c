/**
 * A small RFC 4180 CSV reader: comma-separated fields, records ended by CRLF or LF, fields
 * optionally enclosed in double quotes, inside which commas, line breaks and doubled quotes
 * ("") are literal. A leading UTF-8 byte-order mark is ignored, and so is a final line
 * break. Being lenient where the RFC is silent: a quote inside an unquoted field is kept as
 * a character. Being strict where a silent guess would corrupt data: text after a closing
 * quote, an unterminated quoted field, and (in `csvRecords`) a record whose field count
 * differs from the header's are errors naming the file and line.
 */
import { PmpdError } from "../errors.js";

export interface CsvRow {
  /** 1-based line on which the record starts. */
  line: number;
  fields: string[];
}

export function parseCsv(text: string, file = "<csv>"): CsvRow[] {
  const rows: CsvRow[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const n = text.length;
  let line = 1;
  if (i >= n) return rows;
  let fields: string[] = [];
  let rowLine = line;
  for (;;) {
    // One field starts at i.
    let value: string;
    if (text[i] === '"') {
      const startLine = line;
      let out = "";
      let j = i + 1;
      for (;;) {
        const q = text.indexOf('"', j);
        if (q < 0) throw new PmpdError(`${file}:${startLine}: unterminated quoted field`);
        const chunk = text.slice(j, q);
        out += chunk;
        line += countNewlines(chunk);
        if (text[q + 1] === '"') { out += '"'; j = q + 2; continue; }
        i = q + 1;
        break;
      }
      value = out;
      const c = text[i];
      if (i < n && c !== "," && c !== "\n" && c !== "\r") {
        throw new PmpdError(`${file}:${line}: unexpected text after a closing quote (a quote inside a quoted field must be doubled)`);
      }
    } else {
      let j = i;
      while (j < n) {
        const c = text[j];
        if (c === "," || c === "\n" || c === "\r") break;
        j++;
      }
      value = text.slice(i, j);
      i = j;
    }
    fields.push(value);
    if (i >= n) { rows.push({ line: rowLine, fields }); break; }
    const c = text[i];
    if (c === ",") { i++; if (i >= n) { fields.push(""); rows.push({ line: rowLine, fields }); break; } continue; }
    // End of record: CRLF, LF or a lone CR.
    i += c === "\r" && text[i + 1] === "\n" ? 2 : 1;
    line++;
    rows.push({ line: rowLine, fields });
    if (i >= n) break;
    fields = [];
    rowLine = line;
  }
  return rows;
}

function countNewlines(s: string): number {
  let k = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 10) k++;
    else if (c === 13 && s.charCodeAt(i + 1) !== 10) k++;
  }
  return k;
}

export interface CsvRecord {
  line: number;
  record: Record<string, string>;
}

/** Records keyed by the header row's names; blank lines are skipped. */
export function csvRecords(text: string, file = "<csv>"): CsvRecord[] {
  const rows = parseCsv(text, file).filter((r) => !(r.fields.length === 1 && r.fields[0] === ""));
  if (rows.length === 0) return [];
  const header = rows[0]!.fields;
  const seen = new Set<string>();
  for (const name of header) {
    if (seen.has(name)) throw new PmpdError(`${file}:${rows[0]!.line}: the header names column "${name}" twice`);
    seen.add(name);
  }
  return rows.slice(1).map((r) => {
    if (r.fields.length !== header.length) {
      throw new PmpdError(`${file}:${r.line}: ${r.fields.length} field(s) where the header has ${header.length}`);
    }
    const record: Record<string, string> = {};
    header.forEach((name, k) => { record[name] = r.fields[k]!; });
    return { line: r.line, record };
  });
}
