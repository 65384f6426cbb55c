/**
 * Chat templates (Jinja, as transformers' `apply_chat_template` runs them), parsed and
 * rendered by @huggingface/jinja within limits. A template is code from a model repository:
 * one that loops for ever, builds a gigabyte string or asks `range()` for a billion numbers
 * must fail with one line naming its file, not hang or exhaust memory. The interpreter is
 * extended to check a deadline and the length of every string it produces, and `range` is
 * replaced by one that refuses huge ranges before allocating them.
 */
import { Environment as JinjaEnvironment, Interpreter as JinjaInterpreter, Template } from "@huggingface/jinja";
import { cut, PmpdError } from "../errors.js";

export interface ChatTemplateLimits {
  /** Longest template source accepted (characters). */
  maxSourceChars: number;
  /** Longest string rendering may produce (characters): beyond the context of the models pmpd runs. */
  maxOutputChars: number;
  /** Time one rendering may take (ms). */
  maxMillis: number;
  /** Most numbers one `range()` call may produce. */
  maxRangeLength: number;
}

export const CHAT_TEMPLATE_LIMITS: ChatTemplateLimits = {
  maxSourceChars: 1_000_000,
  maxOutputChars: 1_000_000,
  maxMillis: 2000,
  maxRangeLength: 100_000,
};

/** Thrown inside the interpreter when a limit is reached. */
class TemplateLimitError extends Error {}

// The package's declarations of these two classes do not resolve under NodeNext (extensionless
// re-exports), so their shape is stated here.
interface Environment { set(name: string, value: unknown): unknown }
interface InterpreterInstance { run(program: unknown): unknown; evaluate(statement: unknown, environment: Environment): unknown }
const Environment = JinjaEnvironment as unknown as new () => Environment;
const Interpreter = JinjaInterpreter as unknown as new (env: Environment) => InterpreterInstance;

/**
 * An interpreter that checks the deadline at every evaluation (a loop with an empty body
 * evaluates nothing per iteration, so only the range limit bounds the time between two
 * checks) and the length of every string value.
 */
class BoundedInterpreter extends Interpreter {
  constructor(env: Environment, private readonly deadline: number, private readonly limits: ChatTemplateLimits) {
    super(env);
  }

  override evaluate(statement: unknown, environment: Environment): unknown {
    if (performance.now() > this.deadline) {
      throw new TemplateLimitError(`rendering takes longer than ${this.limits.maxMillis} ms (an endless or huge loop?)`);
    }
    const value = super.evaluate(statement, environment);
    const v = (value as { value?: unknown }).value;
    if (typeof v === "string" && v.length > this.limits.maxOutputChars) {
      throw new TemplateLimitError(`rendering produces more than ${this.limits.maxOutputChars} characters`);
    }
    return value;
  }
}

/** Python's range(), refusing more than `max` numbers before allocating them. */
function boundedRange(max: number) {
  return (...args: unknown[]): number[] => {
    if (args.length < 1 || args.length > 3 || !args.every((a) => Number.isSafeInteger(a))) {
      throw new Error("range() takes 1 to 3 integer arguments");
    }
    const [start, stop, step] = args.length === 1 ? [0, args[0] as number, 1] : [args[0] as number, args[1] as number, (args[2] as number | undefined) ?? 1];
    if (step === 0) throw new Error("range() step must not be zero");
    const length = Math.max(0, Math.ceil((stop - start) / step));
    if (length > max) throw new TemplateLimitError(`range() of ${length} numbers exceeds the limit of ${max}`);
    return Array.from({ length }, (_, i) => start + i * step);
  };
}

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/** strftime of the current local time with the C locale's English names (templates print the date). */
function strftimeNow(format: unknown): string {
  if (typeof format !== "string") throw new Error("strftime_now() takes a format string");
  const d = new Date();
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  const fields: Record<string, string> = {
    Y: String(d.getFullYear()), y: pad(d.getFullYear() % 100), m: pad(d.getMonth() + 1), d: pad(d.getDate()),
    B: MONTHS[d.getMonth()]!, b: MONTHS[d.getMonth()]!.slice(0, 3), A: DAYS[d.getDay()]!, a: DAYS[d.getDay()]!.slice(0, 3),
    H: pad(d.getHours()), I: pad(((d.getHours() + 11) % 12) + 1), M: pad(d.getMinutes()), S: pad(d.getSeconds()),
    p: d.getHours() < 12 ? "AM" : "PM", "%": "%",
  };
  return format.replace(/%(.)/g, (token, c: string) => fields[c] ?? token);
}

export class ChatTemplate {
  private constructor(private readonly template: Template, readonly source: string, readonly file: string, private readonly limits: ChatTemplateLimits) {}

  /** Parses `source`; `file` (where the template lives) names it in errors. */
  static parse(source: string, file: string, limits: ChatTemplateLimits = CHAT_TEMPLATE_LIMITS): ChatTemplate {
    if (source.length > limits.maxSourceChars) {
      throw new PmpdError(`${file}: chat_template of ${source.length} characters exceeds the limit of ${limits.maxSourceChars}`);
    }
    try {
      return new ChatTemplate(new Template(source), source, file, limits);
    } catch (e) {
      throw new PmpdError(`${file}: chat_template does not parse (${cut((e as Error).message ?? String(e))})`);
    }
  }

  /** Renders the template with `variables`, within the time and length limits. */
  render(variables: Record<string, unknown>): string {
    const env = new Environment();
    const globals: Record<string, unknown> = {
      false: false, true: true, none: null, False: false, True: true, None: null,
      raise_exception: (message: unknown) => { throw new Error(`the template raised: ${String(message)}`); },
      range: boundedRange(this.limits.maxRangeLength),
      strftime_now: strftimeNow,
    };
    for (const [k, v] of Object.entries({ ...globals, ...variables })) env.set(k, v);
    try {
      const out = new BoundedInterpreter(env, performance.now() + this.limits.maxMillis, this.limits).run(this.template.parsed);
      const text = (out as { value?: unknown }).value;
      if (typeof text !== "string") throw new Error("rendering produced no text");
      return text;
    } catch (e) {
      const limit = e instanceof TemplateLimitError ? "stopped: " : "failed to render: ";
      throw new PmpdError(`${this.file}: chat_template ${limit}${cut((e as Error).message ?? String(e))}`);
    }
  }
}
