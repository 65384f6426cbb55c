/* The kernel tables of every instruction-set path, one row per kind of kernel.
 *
 * Each kind of kernel (float, quantized bit-plane, MixLLM) has one table type per
 * translation unit and ISA; api.c picks the active ISA (pmpd_set_dispatch). A kind's
 * entry points look their table up here by that ISA, so adding a weight format means one
 * member of pmpd_kernel_tables and one row in kernel_tables.c. */
#ifndef PMPD_KERNEL_TABLES_H
#define PMPD_KERNEL_TABLES_H

#include "internal.h"
#include "mixllm_internal.h"
#include "quant_internal.h"

typedef enum { PMPD_ISA_SCALAR, PMPD_ISA_AVX2, PMPD_ISA_AVX512, PMPD_ISA_COUNT } pmpd_isa;

typedef struct {
    const pmpd_ops *f[PMPD_ISA_COUNT];
    const pmpd_qops *quant[PMPD_ISA_COUNT];
    const mix_ops *mixllm[PMPD_ISA_COUNT];
} pmpd_kernel_tables;

PMPD_HIDDEN extern const pmpd_kernel_tables pmpd_tables;

/* The ISA of the active dispatch path (pmpd_dispatch_name). */
PMPD_HIDDEN pmpd_isa pmpd_isa_active(void);

#endif /* PMPD_KERNEL_TABLES_H */
