/**
 * Errors that pmpd reports to the user as one line and an exit code.
 *
 * A `PmpdError` is a problem with the user's input (a file, a flag value, a model):
 * the CLI prints its message alone and exits 1 (a malformed command line exits 2, as
 * commander reports it). Anything else is a bug and is printed with its stack.
 *
 * Operating-system errors a user can cause (a full disk, a read-only folder, a file where
 * a folder is expected) are user errors too: `fileSystemError` words them with the file,
 * and the CLI translates any that escape (see `describeOsError`).
 */
export class PmpdError extends Error {
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PmpdError";
  }
}

/** What each error code a user can cause means, in the words of the message. */
const OS_CAUSES: Record<string, string> = {
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  EFBIG: "file too large for the file system",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  EEXIST: "already exists",
  ENOTDIR: "a part of the path is not a directory",
  EISDIR: "is a directory",
  ENOENT: "no such file or directory",
  ENOTEMPTY: "directory not empty",
  ENAMETOOLONG: "file name too long",
  ELOOP: "too many levels of symbolic links",
  EMFILE: "too many open files",
  ENFILE: "too many open files in the system",
  EBUSY: "resource busy",
  EXDEV: "cannot be moved to another file system",
  EIO: "input/output error",
  ENXIO: "no such device",
  ENODEV: "no such device",
  ETXTBSY: "file busy",
  EINVAL: "invalid argument",
};

/** True for an error raised by a file-system call (it has an errno code pmpd can explain). */
export function isOsError(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === "string" &&
    (e as NodeJS.ErrnoException).code! in OS_CAUSES && typeof (e as NodeJS.ErrnoException).syscall === "string";
}

/** "no space left on the device (ENOSPC)", or the error's own message for anything else. */
export function osErrorCause(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof code === "string" && code in OS_CAUSES) return `${OS_CAUSES[code]} (${code})`;
  return e instanceof Error ? e.message : String(e);
}

/**
 * A PmpdError for a failed file operation on `file`: "FILE: cannot write: no space left on
 * the device (ENOSPC)". Errors that are already PmpdErrors pass through unchanged.
 */
export function fileSystemError(file: string, e: unknown, doing: string): PmpdError {
  if (e instanceof PmpdError) return e;
  return new PmpdError(`${file}: cannot ${doing}: ${osErrorCause(e)}`, { cause: e });
}

/** The one-line message for an OS error that reached the top level without a file named by pmpd. */
export function describeOsError(e: NodeJS.ErrnoException): string {
  const file = e.path !== undefined ? `${e.path}${(e as { dest?: string }).dest !== undefined ? ` -> ${(e as { dest?: string }).dest}` : ""}: ` : "";
  return `${file}${e.syscall} failed: ${osErrorCause(e)}`;
}

/**
 * Text made safe for a terminal: control characters (C0, DEL, C1), bidirectional overrides
 * and line separators are written as escapes, so that content echoed from a file can
 * neither move the cursor, recolour the terminal nor break the one-line rule.
 */
export function terminalSafe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    if (c === "\n") return "\\n";
    if (c === "\r") return "\\r";
    if (c === "\t") return "\\t";
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/**
 * A value from a file, quoted for a message: JSON for non-strings, cut to `max` characters
 * (with "…"), control characters escaped. Messages must never carry a file's content whole.
 */
export function quote(value: unknown, max = 60): string {
  let text: string;
  if (typeof value === "string") return `"${cut(value, max).replace(/"/g, '\\"')}"`;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Array.isArray(value) ? "[…]" : typeof value === "object" ? "{…}" : String(value);
  }
  return terminalSafe(text.length > max ? `${text.slice(0, max)}…` : text);
}

/** Text from a file or a library for a message: cut to `max` characters (with "…"), control characters escaped. */
export function cut(text: string, max = 200): string {
  return terminalSafe(text.length > max ? `${text.slice(0, max)}…` : text);
}

/** The longest message the CLI prints; a longer one is cut (it came from a file's content). */
export const MAX_MESSAGE_CHARS = 1000;

/** A message as the CLI prints it: one line, terminal-safe, at most MAX_MESSAGE_CHARS long. */
export function oneLineMessage(message: string): string {
  const cut = message.length > MAX_MESSAGE_CHARS ? `${message.slice(0, MAX_MESSAGE_CHARS)}… (message cut)` : message;
  return terminalSafe(cut);
}
