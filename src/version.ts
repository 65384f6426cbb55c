/** pmpd's version, read from package.json so that provenance records never drift from it. */
import { readFileSync } from "node:fs";
import { packageRoot } from "./paths.js";

export const PMPD_VERSION: string = (JSON.parse(readFileSync(`${packageRoot()}/package.json`, "utf8")) as { version: string }).version;
