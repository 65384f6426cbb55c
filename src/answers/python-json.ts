/**
 * JSON text as Python's `json.dumps` writes it with default settings, so that answer files
 * are byte-compatible with the reference's: ", " and ": " separators, every non-ASCII
 * character (and DEL) escaped as \uXXXX, floats in Python's `repr` form (1.0, 1e-05,
 * 1e+16), NaN/Infinity allowed. Numbers are written as integers when they are integral,
 * unless wrapped in `PyFloat`, which marks a Python float (wall times, timestamps).
 * A Map is written as an object in insertion order (keys converted to strings), which plain
 * JS objects cannot guarantee for integer-like keys such as bit-widths.
 */

/** A number that Python would hold as a float (written as 1.0, not 1). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** Python's repr() of a float. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "Infinity";
  if (x === -Infinity) return "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(x.toExponential());
  if (!m) throw new Error(`cannot format ${x}`);
  const sign = m[1]!;
  const digits = m[2]! + (m[3] ?? "");
  const e = Number(m[4]);
  if (e < -4 || e >= 16) {
    const mantissa = digits.length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
    const exp = Math.abs(e) < 10 ? `0${Math.abs(e)}` : String(Math.abs(e));
    return `${sign}${mantissa}e${e < 0 ? "-" : "+"}${exp}`;
  }
  if (e < 0) return `${sign}0.${"0".repeat(-e - 1)}${digits}`;
  if (digits.length <= e + 1) return `${sign}${digits}${"0".repeat(e + 1 - digits.length)}.0`;
  return `${sign}${digits.slice(0, e + 1)}.${digits.slice(e + 1)}`;
}

/** A JSON string literal with Python's ensure_ascii escaping. */
export function pyJsonString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function pyNumber(x: number): string {
  if (Number.isInteger(x) && Math.abs(x) < 1e21) return Object.is(x, -0) ? "0" : String(x);
  return pyFloatRepr(x);
}

export function pyJsonDumps(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (value instanceof PyFloat) return pyFloatRepr(value.value);
  switch (typeof value) {
    case "boolean": return value ? "true" : "false";
    case "number": return pyNumber(value);
    case "bigint": return value.toString();
    case "string": return pyJsonString(value);
    default: break;
  }
  if (Array.isArray(value)) return `[${value.map(pyJsonDumps).join(", ")}]`;
  if (value instanceof Map) {
    return `{${[...value.entries()].map(([k, v]) => `${pyJsonString(String(k))}: ${pyJsonDumps(v)}`).join(", ")}}`;
  }
  if (typeof value === "object") {
    const parts: string[] = [];
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined) continue;
      parts.push(`${pyJsonString(k)}: ${pyJsonDumps(v)}`);
    }
    return `{${parts.join(", ")}}`;
  }
  throw new TypeError(`cannot write a ${typeof value} as JSON`);
}
