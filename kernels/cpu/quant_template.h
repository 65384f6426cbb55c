/*
 * Quantized (bit-plane) kernel bodies for the vector paths. Included once by
 * each quant_<isa>.c after it has defined, for one block of 64 weights:
 *
 *   QF                 float accumulator vector      QF_ZERO() QF_ADD QF_FMA QF_SET1 QF_HSUM
 *   QI                 int32 vector (one block's integer dot product, lanes summed later)
 *   QC                 the rebuilt codes of one block (and whatever the lookups need)
 *   QTAB / QFTAB       one row's int8 table (q8) / float table (exact)
 *   QPREFETCH(p)       software prefetch
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
 *
 * Rows are processed one at a time: the b plane rows of consecutive weight rows
 * are contiguous, so a thread reads b sequential streams (one per plane), which
 * the hardware prefetchers follow; a software prefetch QPF bytes ahead in each
 * stream helps them. All integer sums are exact, so every path produces the
 * same per-block int32 totals; only the float combination order differs.
 */

#ifndef QAI
#define QAI static inline __attribute__((always_inline))
#endif

QAI void q_rowptrs(const pmpd_qw *w, int n, int B, const uint8_t **pp) {
    const uint8_t *base = w->planes + (size_t)n * (size_t)w->rowb;
    for (int p = 0; p < B; p++) pp[p] = base + (size_t)p * w->pstride;
}

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

/* ======================================================================
 * Any-precision, int8 activations (decode GEMV)
 * ====================================================================== */
QAI void aq8_rows(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1, const int B) {
    const int nfull = w->K / QBLK, tailb = (w->K % QBLK) / 8;
    const size_t tb = (size_t)1 << B;
    for (int n = n0; n < n1; n++) {
        const uint8_t *pp[8];
        q_rowptrs(w, n, B, pp);
        q_prefetch_end(pp, B, w->rowb);
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
 * Uniform, int8 activations; groups made of whole 64-blocks (or one group)
 * ====================================================================== */
QAI void uq8_rows(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1, const int B) {
    const int nfull = w->K / QBLK, tailb = (w->K % QBLK) / 8, nblk = w->nblk, G = w->ngroups;
    const int gb = w->group >= w->K ? nblk : w->group / QBLK; /* blocks per group */
    for (int n = n0; n < n1; n++) {
        const uint8_t *pp[8];
        q_rowptrs(w, n, B, pp);
        q_prefetch_end(pp, B, w->rowb);
        const float *sc = w->scales + (size_t)n * G;
        const uint8_t *zr = w->zeros + (size_t)n * G;
        QPREFETCH(sc + 4 * G);
        QPREFETCH(zr + 4 * G);
        QF acc = QF_ZERO();
        int b = 0;
        for (int gi = 0; gi < G; gi++) {
            const int bend = b + gb < nblk ? b + gb : nblk;
            const int fend = bend < nfull ? bend : nfull;
            const int z = zr[gi];
            QF ag0 = QF_ZERO(), ag1 = QF_ZERO();
            for (; b + 2 <= fend; b += 2) {
                q_prefetch(pp, B, b);
                const QC c0 = qc_load(pp, (long)b * 8, B, 8);
                ag0 = qf_acc(ag0, q8_uni_block(&c0, a->xq + (size_t)b * QBLK, z, a->xsum[b], B), a->xs[b]);
                const QC c1 = qc_load(pp, (long)b * 8 + 8, B, 8);
                ag1 = qf_acc(ag1, q8_uni_block(&c1, a->xq + (size_t)(b + 1) * QBLK, z, a->xsum[b + 1], B),
                             a->xs[b + 1]);
            }
            if (b < fend) {
                q_prefetch(pp, B, b);
                const QC c0 = qc_load(pp, (long)b * 8, B, 8);
                ag0 = qf_acc(ag0, q8_uni_block(&c0, a->xq + (size_t)b * QBLK, z, a->xsum[b], B), a->xs[b]);
                b++;
            }
            if (b < bend) { /* tail block */
                const QC c1 = qc_load(pp, (long)b * 8, B, tailb);
                ag1 = qf_acc(ag1, q8_uni_block(&c1, a->xq + (size_t)b * QBLK, z, a->xsum[b], B), a->xs[b]);
                b++;
            }
            acc = QF_FMA(QF_ADD(ag0, ag1), QF_SET1(sc[gi]), acc);
        }
        y[n] = QF_HSUM(acc);
    }
}

/* ======================================================================
 * Exact (float activations) GEMV
 * ====================================================================== */
QAI void aex_rows(const pmpd_qw *w, const float *x, float *y, int n0, int n1, const int B) {
    const int nfull = w->K / QBLK, tailb = (w->K % QBLK) / 8;
    const size_t tb = (size_t)1 << B;
    for (int n = n0; n < n1; n++) {
        const uint8_t *pp[8];
        q_rowptrs(w, n, B, pp);
        q_prefetch_end(pp, B, w->rowb);
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

QAI void uex_rows(const pmpd_qw *w, const float *x, float *y, int n0, int n1, const int B) {
    const int nfull = w->K / QBLK, tailb = (w->K % QBLK) / 8, nblk = w->nblk, G = w->ngroups;
    const int gb = w->group >= w->K ? nblk : w->group / QBLK;
    for (int n = n0; n < n1; n++) {
        const uint8_t *pp[8];
        q_rowptrs(w, n, B, pp);
        q_prefetch_end(pp, B, w->rowb);
        const float *sc = w->scales + (size_t)n * G;
        const uint8_t *zr = w->zeros + (size_t)n * G;
        QF acc = QF_ZERO();
        int b = 0;
        for (int gi = 0; gi < G; gi++) {
            const int bend = b + gb < nblk ? b + gb : nblk;
            const int fend = bend < nfull ? bend : nfull;
            const int z = zr[gi];
            QF a0 = QF_ZERO(), a1 = QF_ZERO();
            for (; b < fend; b++) {
                q_prefetch(pp, B, b);
                const QC c = qc_load(pp, (long)b * 8, B, 8);
                ex_uni_block(&c, z, x + (size_t)b * QBLK, QBLK, &a0, &a1);
            }
            if (b < bend) {
                const QC c = qc_load(pp, (long)b * 8, B, tailb);
                ex_uni_block(&c, z, x + (size_t)b * QBLK, tailb * 8, &a0, &a1);
                b++;
            }
            acc = QF_FMA(QF_ADD(a0, a1), QF_SET1(sc[gi]), acc);
        }
        y[n] = QF_HSUM(acc);
    }
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
    const int gb = w->group >= w->K ? nblk : w->group / QBLK;
    for (int r = 0; r < rows; r++) {
        const int n = n0 + r;
        const uint8_t *pp[8];
        q_rowptrs(w, n, B, pp);
        const float *sc = w->scales + (size_t)n * G;
        const uint8_t *zr = w->zeros + (size_t)n * G;
        float *o = out + (size_t)r * (size_t)w->K;
        int b = 0;
        for (int gi = 0; gi < G; gi++) {
            const int bend = b + gb < nblk ? b + gb : nblk;
            const int fend = bend < nfull ? bend : nfull;
            const int z = zr[gi];
            const float s = sc[gi];
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
#define Q_SWITCH_B(BITS, CALL)                                                                                         \
    switch (BITS) {                                                                                                    \
    case 1: CALL(1); break;                                                                                            \
    case 2: CALL(2); break;                                                                                            \
    case 3: CALL(3); break;                                                                                            \
    case 4: CALL(4); break;                                                                                            \
    case 5: CALL(5); break;                                                                                            \
    case 6: CALL(6); break;                                                                                            \
    case 7: CALL(7); break;                                                                                            \
    case 8: CALL(8); break;                                                                                            \
    default: break;                                                                                                    \
    }

#ifdef QHAVE_NET /* the ISA has a faster q8 GEMV formulation */
#define AQ8_ROWS aq8net_rows
#define UQ8_ROWS uq8net_rows
#else
#define AQ8_ROWS aq8_rows
#define UQ8_ROWS uq8_rows
#endif

static void anyprec_q8(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1) {
#define CALL_(B_) AQ8_ROWS(w, a, y, n0, n1, B_)
    Q_SWITCH_B(w->bits, CALL_)
#undef CALL_
}

static void anyprec_f32(const pmpd_qw *w, const float *x, float *y, int n0, int n1) {
#define CALL_(B_) aex_rows(w, x, y, n0, n1, B_)
    Q_SWITCH_B(w->bits, CALL_)
#undef CALL_
}

static void uniform_q8(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1) {
    if (!pmpd_q_groups_blockaligned(w)) {
        pmpd_q_uniform_q8_generic(w, a, y, n0, n1);
        return;
    }
#define CALL_(B_) UQ8_ROWS(w, a, y, n0, n1, B_)
    Q_SWITCH_B(w->bits, CALL_)
#undef CALL_
}

static void uniform_f32(const pmpd_qw *w, const float *x, float *y, int n0, int n1) {
    if (!pmpd_q_groups_blockaligned(w)) {
        pmpd_q_uniform_f32_generic(w, x, y, n0, n1);
        return;
    }
#define CALL_(B_) uex_rows(w, x, y, n0, n1, B_)
    Q_SWITCH_B(w->bits, CALL_)
#undef CALL_
}

static void dequant_anyprec(const pmpd_qw *w, int use_q8, float *out, int n0, int rows) {
#define CALL_(B_) adeq_rows(w, use_q8, out, n0, rows, B_)
    Q_SWITCH_B(w->bits, CALL_)
#undef CALL_
}

static void dequant_uniform(const pmpd_qw *w, float *out, int n0, int rows) {
    if (!pmpd_q_groups_blockaligned(w)) {
        pmpd_q_dequant_uniform_generic(w, out, n0, rows);
        return;
    }
#define CALL_(B_) udeq_rows(w, out, n0, rows, B_)
    Q_SWITCH_B(w->bits, CALL_)
#undef CALL_
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
