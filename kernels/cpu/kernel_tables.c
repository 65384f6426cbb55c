/* The kernel tables of every path (kernel_tables.h). A build without the x86 paths
 * (non-x86, or make PORTABLE=1) leaves their entries NULL; api.c never selects them. */
#include "kernel_tables.h"

#if defined(PMPD_X86_PATHS)
#define ISA_ROW(prefix)                                                                                                \
    {[PMPD_ISA_SCALAR] = &prefix##_scalar, [PMPD_ISA_AVX2] = &prefix##_avx2, [PMPD_ISA_AVX512] = &prefix##_avx512}
#else
#define ISA_ROW(prefix) {[PMPD_ISA_SCALAR] = &prefix##_scalar}
#endif

PMPD_HIDDEN const pmpd_kernel_tables pmpd_tables = {
    .f = ISA_ROW(pmpd_ops),
    .quant = ISA_ROW(pmpd_qops),
    .mixllm = ISA_ROW(pmpd_mix),
};

PMPD_HIDDEN pmpd_isa pmpd_isa_active(void) {
    const char *name = pmpd_dispatch_name();
    for (int i = 0; i < PMPD_ISA_COUNT; i++)
        if (pmpd_tables.f[i] && strcmp(pmpd_tables.f[i]->name, name) == 0) return (pmpd_isa)i;
    return PMPD_ISA_SCALAR;
}
