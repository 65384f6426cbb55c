#!/usr/bin/env node
// The pmpd command: a thin launcher for the compiled CLI in dist/.
import { main } from "../dist/commands/cli.js";

process.exitCode = await main(process.argv);
