/** The pure quantization algorithms (no I/O, no kernels). */
export * from "./anyprec.js";
export * from "./anyprec-parallel.js";
export * from "./bitplanes.js";
export * from "./gptq.js";
export * from "./kmeans1d.js";
export * from "./linalg.js";
export * from "./rtn.js";
export * from "./uniform.js";
