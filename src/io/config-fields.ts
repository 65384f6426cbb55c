/**
 * Readers for the fields of a Hugging Face `config.json`: each checks its field's type and
 * names the file and the field when it is wrong, so a bad config fails with one line.
 * A field that is absent or `null` takes the fallback (transformers treats both as unset).
 */
import { PmpdError } from "../errors.js";

export type RawConfig = Record<string, unknown>;

export function positiveInt(file: string, raw: RawConfig, key: string, fallback?: number): number {
  const v = raw[key] ?? fallback;
  if (v === undefined || v === null) throw new PmpdError(`${file}: missing field "${key}"`);
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new PmpdError(`${file}: field "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function positiveNumber(file: string, raw: RawConfig, key: string, fallback: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) {
    throw new PmpdError(`${file}: field "${key}" must be a positive number, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** A positive number, or null when the field is absent or null (e.g. an optional soft-cap). */
export function optionalPositiveNumber(file: string, raw: RawConfig, key: string): number | null {
  return raw[key] === undefined || raw[key] === null ? null : positiveNumber(file, raw, key, NaN);
}

/** A number in (0, 1] (a fraction such as partial_rotary_factor). */
export function fraction(file: string, raw: RawConfig, key: string, fallback: number): number {
  const v = positiveNumber(file, raw, key, fallback);
  if (v > 1) throw new PmpdError(`${file}: field "${key}" must be at most 1, got ${v}`);
  return v;
}

export function flag(file: string, raw: RawConfig, key: string, fallback: boolean): boolean {
  const v = raw[key] ?? fallback;
  if (typeof v !== "boolean") throw new PmpdError(`${file}: field "${key}" must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

export function text(file: string, raw: RawConfig, key: string, fallback: string): string {
  const v = raw[key] ?? fallback;
  if (typeof v !== "string") throw new PmpdError(`${file}: field "${key}" must be a string, got ${JSON.stringify(v)}`);
  return v;
}
