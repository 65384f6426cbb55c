/** Registers every weight format; import this once before loading a model. */
import "./float.js";
import "./anyprec.js";
import "./uniform.js";
import "./autogptq.js";
import "./mixllm.js";
