/* AVX2 quantized kernels with GFNI bit transposes and AVX-VNNI dot products (compiled with
 * -mgfni -mavxvnni; selected at run time only on CPUs that have both). */
#define PMPD_QUANT_GFNI 1
#include "quant_avx2.c"
