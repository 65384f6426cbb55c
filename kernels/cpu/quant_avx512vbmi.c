/* AVX-512 quantized kernels with VBMI byte permutes and GFNI (compiled with -mavx512vbmi -mgfni;
 * selected at run time only on CPUs that have it). */
#define PMPD_QUANT_VBMI 1
#include "quant_avx512.c"
