/**
 * The pmpd command line: builds the commander program from the subcommands that exist,
 * runs it, and turns errors into exit codes (0 success, 1 user error, 2 usage error).
 */
import { Command, CommanderError } from "commander";
import { describeOsError, isOsError, oneLineMessage, PmpdError } from "../src/errors.js";
import { PMPD_VERSION } from "../src/version.js";
import { registerCommands } from "./registry.js";

export function buildProgram(): Command {
  const program = new Command("pmpd")
    .description("Progressive mixed-precision decoding (PMPD) research toolkit")
    .version(PMPD_VERSION)
    .option("--verbose", "print stack traces and debug output")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  registerCommands(program);
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const verbose = argv.includes("--verbose");
  if (verbose) process.env.PMPD_VERBOSE = "1";
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help") return 0;
      return 2; // commander already printed the problem
    }
    if (e instanceof PmpdError) {
      process.stderr.write(`pmpd: ${oneLineMessage(e.message)}\n`);
      if (verbose && e.stack) process.stderr.write(`${e.stack}\n`);
      return e.exitCode;
    }
    // A file-system error no command words itself (a full disk, a read-only folder, ...) is
    // still the user's to fix, not a bug: it names the file and the cause.
    if (isOsError(e)) {
      process.stderr.write(`pmpd: ${oneLineMessage(describeOsError(e))}\n`);
      if (verbose && e.stack) process.stderr.write(`${e.stack}\n`);
      return 1;
    }
    process.stderr.write(`pmpd: internal error: ${oneLineMessage((e as Error).message ?? String(e))}\n`);
    if (verbose && (e as Error).stack) process.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  }
}
