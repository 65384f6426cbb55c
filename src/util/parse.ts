/**
 * Numbers given as text (command-line flags): a bad value is a PmpdError that names the
 * flag and what it must be, one line.
 */
import { PmpdError } from "../errors.js";

export function parseInteger(name: string, value: string | undefined, min = -Infinity, max = Infinity): number {
  const v = Number(value);
  if (value === undefined || value.trim() === "" || !Number.isInteger(v)) {
    throw new PmpdError(`${name} must be an integer, got "${value}"`);
  }
  if (v < min || v > max) {
    throw new PmpdError(`${name} must be ${max === Infinity ? `>= ${min}` : `between ${min} and ${max}`}, got ${v}`);
  }
  return v;
}

export function parseNumber(name: string, value: string | undefined, min = -Infinity, max = Infinity): number {
  const v = Number(value);
  if (value === undefined || value.trim() === "" || !Number.isFinite(v)) throw new PmpdError(`${name} must be a number, got "${value}"`);
  if (v < min || v > max) throw new PmpdError(`${name} must be between ${min} and ${max}, got ${v}`);
  return v;
}
