/*
 * Quantized (bit-plane) kernel bodies for the vector paths. Included once by
 * each quant_<isa>.c after it has defined, for one block of 64 weights:
 *
 *   QF                 float accumulator vector      QF_ZERO() QF_ADD QF_FMA QF_SET1 QF_HSUM
 *   QI                 int32 vector (one block's integer dot product, lanes summed later)
 *   QC                 the rebuilt codes of one block (and whatever the lookups need)
 *   QTAB / QFTAB       one row's int8 table (q8) / float table (exact)
 *   qc_load(pp, off, B, nbytes)            codes of weights 8*off .. from planes pp[0..B-1]
 *                                          (nbytes < 8: tail block, never reads past it)
 *   qtab_load(&T, row, B) / qftab_load(&T, row, B)
 *   q8_any_block(&T, &c, xq, c128, B)     int32 lanes summing to sum_k lut_q[code]*xq[k]
 *   q8_uni_block(&c, xq, z, S, B)          int32 lanes summing to sum_k code*xq[k] - z*S
 *   qf_acc(acc, v, s)                      acc + float(v) * s   (lane-wise)
 *   ex_any_block(&T, &c, x, nvalid, &a0, &a1, B)   a += lut[code] * x  (first nvalid k)
 *   ex_uni_block(&c, z, x, nvalid, &a0, &a1)       a += (code - z) * x
 *   deq_any_block(&T, &c, out, nvalid, B), deq_uni_block(&c, z, sc, out, nvalid)
 *   quant_act(...)                          (pmpd_qops.quant_act)
 *   QOPS_SYM, QISA_NAME
 * (quant_internal.h has what every path shares: QAI, QPREFETCH, q_rowptrs, q_uniform_row.)
 *
 * Rows are processed one at a time: the b plane rows of consecutive weight rows
 * are contiguous, so a thread reads b sequential streams (one per plane), which
 * the hardware prefetchers follow; a software prefetch QPF bytes ahead in each
 * stream helps them. All integer sums are exact, so every path produces the
 * same per-block int32 totals; only the float combination order differs.
 */

/* once per 64 bytes of each stream: b advances by 1 or 2 blocks per step */
QAI void q_prefetch(const uint8_t *const *pp, int B, int b) {
    if (((unsigned)b & 7u) < 2u)
        for (int p = 0; p < B; p++) QPREFETCH(pp[p] + (long)b * 8 + QPF);
}

/* the last byte of each plane row (ahead): rows whose length is not a multiple of 64
 * bytes would otherwise leave a line to a demand miss */
QAI void q_prefetch_end(const uint8_t *const *pp, int B, int rowb) {
    for (int p = 0; p < B; p++) QPREFETCH(pp[p] + (long)rowb - 1 + QPF);
}

/* a GEMV's weight row n: pp = its plane rows, their ends prefetched */
QAI void q_gemv_rowptrs(const pmpd_qw *w, int n, int B, const uint8_t **pp) {
    q_rowptrs(w, n, B, pp);
    q_prefetch_end(pp, B, w->rowb);
}

/* ======================================================================
 * Any-precision, int8 activations (decode GEMV)
 * ====================================================================== */
QAI void aq8_rows(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1, const int B) {
    const int nfull = w->K / QBLK, tailb = (w->K % QBLK) / 8;
    const size_t tb = (size_t)1 << B;
    for (int n = n0; n < n1; n++) {
        const uint8_t *pp[8];
        q_gemv_rowptrs(w, n, B, pp);
        for (size_t o = 0; o < tb; o += 64) QPREFETCH(w->lut_q + (size_t)(n + 4) * tb + o);
        QTAB t;
        qtab_load(&t, w->lut_q + (size_t)n * tb, B);
        QF acc0 = QF_ZERO(), acc1 = QF_ZERO();
        int b = 0;
        for (; b + 2 <= nfull; b += 2) {
            q_prefetch(pp, B, b);
            const QC c0 = qc_load(pp, (long)b * 8, B, 8);
            acc0 = qf_acc(acc0, q8_any_block(&t, &c0, a->xq + (size_t)b * QBLK, a->xc128[b], B), a->xs[b]);
            const QC c1 = qc_load(pp, (long)b * 8 + 8, B, 8);
            acc1 = qf_acc(acc1, q8_any_block(&t, &c1, a->xq + (size_t)(b + 1) * QBLK, a->xc128[b + 1], B),
                          a->xs[b + 1]);
        }
        if (b < nfull) {
            const QC c0 = qc_load(pp, (long)b * 8, B, 8);
            acc0 = qf_acc(acc0, q8_any_block(&t, &c0, a->xq + (size_t)b * QBLK, a->xc128[b], B), a->xs[b]);
            b++;
        }
        if (tailb) {
            const QC c1 = qc_load(pp, (long)b * 8, B, tailb);
            acc1 = qf_acc(acc1, q8_any_block(&t, &c1, a->xq + (size_t)b * QBLK, a->xc128[b], B), a->xs[b]);
        }
        y[n] = QF_HSUM(QF_ADD(acc0, acc1)) * w->lut_scale[n];
    }
}

/* ======================================================================
 * Any-precision, float activations (exact GEMV)
 * ====================================================================== */
QAI void aex_rows(const pmpd_qw *w, const float *x, float *y, int n0, int n1, const int B) {
    const int nfull = w->K / QBLK, tailb = (w->K % QBLK) / 8;
    const size_t tb = (size_t)1 << B;
    for (int n = n0; n < n1; n++) {
        const uint8_t *pp[8];
        q_gemv_rowptrs(w, n, B, pp);
        QFTAB t;
        qftab_load(&t, w->lut + (size_t)n * tb, B);
        QF a0 = QF_ZERO(), a1 = QF_ZERO();
        int b = 0;
        for (; b < nfull; b++) {
            q_prefetch(pp, B, b);
            const QC c = qc_load(pp, (long)b * 8, B, 8);
            ex_any_block(&t, &c, x + (size_t)b * QBLK, QBLK, &a0, &a1, B);
        }
        if (tailb) {
            const QC c = qc_load(pp, (long)b * 8, B, tailb);
            ex_any_block(&t, &c, x + (size_t)b * QBLK, tailb * 8, &a0, &a1, B);
        }
        y[n] = QF_HSUM(QF_ADD(a0, a1));
    }
}

/* ======================================================================
 * Uniform GEMVs; groups made of whole 64-blocks (or one group)
 * ====================================================================== */
/* One group, blocks [b, end) (whole ones up to whole_end, then the tail block), int8
 * activations: sum over its blocks of (sum code*xq - z*sum xq) * activation scale. */
QAI QF uq8_group(const uint8_t *const *pp, const pmpd_qact *a, int z, int b, int whole_end, int end, int tailb,
                 const int B) {
    QF ag0 = QF_ZERO(), ag1 = QF_ZERO();
    for (; b + 2 <= whole_end; b += 2) {
        q_prefetch(pp, B, b);
        const QC c0 = qc_load(pp, (long)b * 8, B, 8);
        ag0 = qf_acc(ag0, q8_uni_block(&c0, a->xq + (size_t)b * QBLK, z, a->xsum[b], B), a->xs[b]);
        const QC c1 = qc_load(pp, (long)b * 8 + 8, B, 8);
        ag1 = qf_acc(ag1, q8_uni_block(&c1, a->xq + (size_t)(b + 1) * QBLK, z, a->xsum[b + 1], B), a->xs[b + 1]);
    }
    if (b < whole_end) {
        q_prefetch(pp, B, b);
        const QC c0 = qc_load(pp, (long)b * 8, B, 8);
        ag0 = qf_acc(ag0, q8_uni_block(&c0, a->xq + (size_t)b * QBLK, z, a->xsum[b], B), a->xs[b]);
        b++;
    }
    if (b < end) { /* tail block */
        const QC c1 = qc_load(pp, (long)b * 8, B, tailb);
        ag1 = qf_acc(ag1, q8_uni_block(&c1, a->xq + (size_t)b * QBLK, z, a->xsum[b], B), a->xs[b]);
    }
    return QF_ADD(ag0, ag1);
}

/* The same group, float activations: sum over its weights of (code - z) * x. */
QAI QF uex_group(const uint8_t *const *pp, const float *x, int z, int b, int whole_end, int end, int tailb,
                 const int B) {
    QF a0 = QF_ZERO(), a1 = QF_ZERO();
    for (; b < whole_end; b++) {
        q_prefetch(pp, B, b);
        const QC c = qc_load(pp, (long)b * 8, B, 8);
        ex_uni_block(&c, z, x + (size_t)b * QBLK, QBLK, &a0, &a1);
    }
    if (b < end) {
        const QC c = qc_load(pp, (long)b * 8, B, tailb);
        ex_uni_block(&c, z, x + (size_t)b * QBLK, tailb * 8, &a0, &a1);
    }
    return QF_ADD(a0, a1);
}

/* y[n] = sum over groups of group scale * group sum, int8 (q8) or float activations */
QAI void uniform_gemv_rows(const pmpd_qw *w, const pmpd_qact *a, const float *x, float *y, int n0, int n1,
                           const int q8, const int B) {
    const int nfull = w->K / QBLK, tailb = (w->K % QBLK) / 8, nblk = w->nblk, G = w->ngroups;
    const int gb = q_blocks_per_group(w);
    for (int n = n0; n < n1; n++) {
        q_urow u;
        q_uniform_row(w, n, B, &u);
        q_prefetch_end(u.pp, B, w->rowb);
        if (q8) {
            QPREFETCH(u.sc + 4 * G);
            QPREFETCH(u.zr + 4 * G);
        }
        QF acc = QF_ZERO();
        for (int gi = 0, b = 0; gi < G; gi++) {
            int whole_end;
            const int end = q_group_end(b, gb, nblk, nfull, &whole_end);
            const QF g = q8 ? uq8_group(u.pp, a, u.zr[gi], b, whole_end, end, tailb, B)
                            : uex_group(u.pp, x, u.zr[gi], b, whole_end, end, tailb, B);
            acc = QF_FMA(g, QF_SET1(u.sc[gi]), acc);
            b = end;
        }
        y[n] = QF_HSUM(acc);
    }
}

QAI void uq8_rows(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1, const int B) {
    uniform_gemv_rows(w, a, NULL, y, n0, n1, 1, B);
}

QAI void uex_rows(const pmpd_qw *w, const float *x, float *y, int n0, int n1, const int B) {
    uniform_gemv_rows(w, NULL, x, y, n0, n1, 0, B);
}

/* ======================================================================
 * Dequantization of a tile of rows to float32 (prefill GEMM)
 * ====================================================================== */
QAI void adeq_rows(const pmpd_qw *w, int use_q8, float *out, int n0, int rows, const int B) {
    const int nfull = w->K / QBLK, tailb = (w->K % QBLK) / 8;
    const size_t tb = (size_t)1 << B;
    float tq[256];
    for (int r = 0; r < rows; r++) {
        const int n = n0 + r;
        const uint8_t *pp[8];
        q_rowptrs(w, n, B, pp);
        QFTAB t;
        if (use_q8) {
            const int8_t *q = w->lut_q + (size_t)n * tb;
            for (size_t e = 0; e < tb; e++) tq[e] = (float)q[e];
            qftab_load(&t, tq, B);
        } else {
            qftab_load(&t, w->lut + (size_t)n * tb, B);
        }
        float *o = out + (size_t)r * (size_t)w->K;
        int b = 0;
        for (; b < nfull; b++) {
            const QC c = qc_load(pp, (long)b * 8, B, 8);
            deq_any_block(&t, &c, o + (size_t)b * QBLK, QBLK, B);
        }
        if (tailb) {
            const QC c = qc_load(pp, (long)b * 8, B, tailb);
            deq_any_block(&t, &c, o + (size_t)b * QBLK, tailb * 8, B);
        }
    }
}

QAI void udeq_rows(const pmpd_qw *w, float *out, int n0, int rows, const int B) {
    const int nfull = w->K / QBLK, tailb = (w->K % QBLK) / 8, nblk = w->nblk, G = w->ngroups;
    const int gb = q_blocks_per_group(w);
    for (int r = 0; r < rows; r++) {
        q_urow u;
        q_uniform_row(w, n0 + r, B, &u);
        const uint8_t *const *pp = u.pp;
        float *o = out + (size_t)r * (size_t)w->K;
        int b = 0;
        for (int gi = 0; gi < G; gi++) {
            int fend;
            const int bend = q_group_end(b, gb, nblk, nfull, &fend);
            const int z = u.zr[gi];
            const float s = u.sc[gi];
            for (; b < fend; b++) {
                const QC c = qc_load(pp, (long)b * 8, B, 8);
                deq_uni_block(&c, z, s, o + (size_t)b * QBLK, QBLK);
            }
            if (b < bend) {
                const QC c = qc_load(pp, (long)b * 8, B, tailb);
                deq_uni_block(&c, z, s, o + (size_t)b * QBLK, tailb * 8);
                b++;
            }
        }
    }
}

/* ======================================================================
 * Entry points: one instantiation per bit width
 * ====================================================================== */
/* FN(args..., B) with B the constant BITS: one instantiation of FN per bit width */
#define Q_BY_BITS(BITS, FN, ...)                                                                                       \
    do {                                                                                                               \
        switch (BITS) {                                                                                                \
        case 1: FN(__VA_ARGS__, 1); break;                                                                             \
        case 2: FN(__VA_ARGS__, 2); break;                                                                             \
        case 3: FN(__VA_ARGS__, 3); break;                                                                             \
        case 4: FN(__VA_ARGS__, 4); break;                                                                             \
        case 5: FN(__VA_ARGS__, 5); break;                                                                             \
        case 6: FN(__VA_ARGS__, 6); break;                                                                             \
        case 7: FN(__VA_ARGS__, 7); break;                                                                             \
        case 8: FN(__VA_ARGS__, 8); break;                                                                             \
        default: break;                                                                                                \
        }                                                                                                              \
    } while (0)

#ifdef QHAVE_NET /* the ISA has a faster q8 GEMV formulation */
#define AQ8_ROWS aq8net_rows
#define UQ8_ROWS uq8net_rows
#else
#define AQ8_ROWS aq8_rows
#define UQ8_ROWS uq8_rows
#endif

/* The uniform kernels below take whole 64-blocks as one group's; other group sizes go to
 * the plain-C kernels. */
static void anyprec_q8(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1) {
    Q_BY_BITS(w->bits, AQ8_ROWS, w, a, y, n0, n1);
}

static void anyprec_f32(const pmpd_qw *w, const float *x, float *y, int n0, int n1) {
    Q_BY_BITS(w->bits, aex_rows, w, x, y, n0, n1);
}

static void uniform_q8(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1) {
    if (!pmpd_q_groups_blockaligned(w)) {
        pmpd_q_uniform_q8_generic(w, a, y, n0, n1);
        return;
    }
    Q_BY_BITS(w->bits, UQ8_ROWS, w, a, y, n0, n1);
}

static void uniform_f32(const pmpd_qw *w, const float *x, float *y, int n0, int n1) {
    if (!pmpd_q_groups_blockaligned(w)) {
        pmpd_q_uniform_f32_generic(w, x, y, n0, n1);
        return;
    }
    Q_BY_BITS(w->bits, uex_rows, w, x, y, n0, n1);
}

static void dequant_anyprec(const pmpd_qw *w, int use_q8, float *out, int n0, int rows) {
    Q_BY_BITS(w->bits, adeq_rows, w, use_q8, out, n0, rows);
}

static void dequant_uniform(const pmpd_qw *w, float *out, int n0, int rows) {
    if (!pmpd_q_groups_blockaligned(w)) {
        pmpd_q_dequant_uniform_generic(w, out, n0, rows);
        return;
    }
    Q_BY_BITS(w->bits, udeq_rows, w, out, n0, rows);
}

PMPD_HIDDEN const pmpd_qops QOPS_SYM = {
    .name = QISA_NAME,
    .anyprec_q8 = anyprec_q8,
    .anyprec_f32 = anyprec_f32,
    .uniform_q8 = uniform_q8,
    .uniform_f32 = uniform_f32,
    .dequant_anyprec = dequant_anyprec,
    .dequant_uniform = dequant_uniform,
    .quant_act = quant_act,
#ifdef QHAVE_NET
    .act_ext_bytes = act_ext_bytes,
    .act_ext_build = act_ext_build,
#endif
};
