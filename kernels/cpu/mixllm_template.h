/*
 * MixLLM row kernels, written once over a small per-ISA abstraction and included by
 * each mixllm_<isa>.c after it has defined, for one 128-weight group:
 *
 *   MI                     int32 accumulator vector (lanes summed by the float step)
 *   MF                     float accumulator vector
 *   MIX_HI_BIAS            the high-row int sum mi_hi adds is  Σ w·x + MIX_HI_BIAS·Σ x
 *   mi_start(c)            an MI whose lanes sum to c
 *   mi_hi(acc, w, xq)      acc + lanes summing to Σ_{k<128} w[k]·xq[k] (+ bias, see above);
 *                          w int8 [128] (any alignment), xq int8 [128] (64-byte aligned)
 *   mi_lo(acc, w, xd)      acc + lanes summing to Σ_{j<64} lo(w[j])·xd[j] + hi(w[j])·xd[64+j];
 *                          w uint8 [64] (4-bit codes, two per byte), xd deinterleaved int8 [128]
 *   mf_zero() mf_add(a, b) mf_hsum(v)
 *   mf_acc(acc, v, s)      acc + float(v)·s  (lane-wise)
 *   mf_fma(acc, v, s)      acc + v·s         (lane-wise)
 *   mf_hi_dot(w, x)        lanes summing to Σ_{k<128} float(w[k])·x[k]        (exact path)
 *   mf_lo_dot(w, z, xd)    lanes summing to Σ (code − z)·xd over the group      (exact path)
 *   MIX_OPS_SYM, MIX_ISA_NAME
 * (MAI and MIX_PREFETCH come from mixllm_internal.h.)
 *
 * A weight row is processed for up to 4 activation rows at once (MR), so a GEMM re-reads
 * each weight row from L1 only. Integer group sums are exact on every path; the float
 * combination (one multiply-add per group with s_x,g · s_w,g) differs between paths only by
 * rounding order.
 */

#include <math.h>
#include <string.h>

/* ---- activation quantization (plain C; auto-vectorised per ISA, same results everywhere) ---- */

static void quant_act(const float *x, int K, int8_t *xq, int8_t *xd, float *xs, int32_t *xsum) {
    const int G = K / MIX_G;
    for (int g = 0; g < G; g++) {
        const float *xg = x + (size_t)g * MIX_G;
        int8_t *q = xq + (size_t)g * MIX_G, *d = xd + (size_t)g * MIX_G;
        /* max |x| on the bit patterns (ordered like the values for |x|; inf and NaN above
         * FLT_MAX): an integer max reduction, which vectorises */
        uint32_t mb = 0;
        for (int i = 0; i < MIX_G; i++) {
            uint32_t u;
            memcpy(&u, &xg[i], 4);
            u &= 0x7FFFFFFFu;
            mb = u > mb ? u : mb;
        }
        const int bad = mb > 0x7F7FFFFFu; /* inf or NaN */
        float amax;
        memcpy(&amax, &mb, 4);
        const float scale = amax / 127.0f;
        if (bad || scale == 0.0f) {
            for (int i = 0; i < MIX_G; i++) q[i] = 0, d[i] = 0;
            xs[g] = bad ? NAN : 0.0f;
            xsum[g] = 0;
            continue;
        }
        int32_t qi[MIX_G]; /* separate loops over an int32 copy: each one vectorises */
        for (int i = 0; i < MIX_G; i++) {
            /* |v| <= ~127 (scale = amax/127 rounded; < 255 even for a subnormal scale); round
             * half to even, exact for |v| < 2^22 in the default rounding mode; clamping the
             * integer gives the same codes as clamping v to +-127 first */
            const float v = xg[i] / scale;
            const int32_t r = (int32_t)((v + 12582912.0f) - 12582912.0f);
            qi[i] = r > 127 ? 127 : r < -127 ? -127 : r;
        }
        int32_t s = 0;
        for (int i = 0; i < MIX_G; i++) {
            q[i] = (int8_t)qi[i];
            s += qi[i];
        }
        for (int j = 0; j < MIX_G / 2; j++) {
            d[j] = (int8_t)qi[2 * j];
            d[MIX_G / 2 + j] = (int8_t)qi[2 * j + 1];
        }
        xs[g] = scale;
        xsum[g] = s;
    }
}

/* ---- row kernels ----------------------------------------------------------------------- */

#define MIX_MR 4

/* Row kernels for a stored row of either block, hi a constant: hi = 1, high row i (int8
 * codes, MIX_G bytes per group); hi = 0, low row i (4-bit codes, MIX_G / 2 bytes per group,
 * zero points). Activation rows m0 .. m0+MR-1; y[m, index[i]] is written. */

MAI const uint8_t *mix_codes(const mix_w *w, int i, const int hi) {
    return hi ? (const uint8_t *)w->wh + (size_t)i * (size_t)w->K : w->wl + (size_t)i * (size_t)(w->K / 2);
}

/* one group's int32 lanes, from acc: high rows against xq (natural order), low rows against xd */
MAI MI mix_group_q8(MI acc, const uint8_t *wg, const int8_t *x, const int hi) {
    return hi ? mi_hi(acc, (const int8_t *)wg, x) : mi_lo(acc, wg, x);
}

/* int8 activations: two groups per step, one accumulator each */
MAI void q8_row(const mix_w *w, const mix_act *a, float *y, int i, int m0, const int MR, const int hi) {
    const int K = w->K, G = w->G, gbytes = hi ? MIX_G : MIX_G / 2;
    const uint8_t *wr = mix_codes(w, i, hi);
    const float *sr = (hi ? w->sh : w->sl) + (size_t)i * (size_t)G;
    const uint8_t *zr = hi ? NULL : w->zl + (size_t)i * (size_t)G;
    MF acc0[MIX_MR], acc1[MIX_MR];
    for (int r = 0; r < MR; r++) acc0[r] = mf_zero(), acc1[r] = mf_zero();
    const int8_t *xa = (hi ? a->xq : a->xd) + (size_t)m0 * K;
    const float *xs = a->xs + (size_t)m0 * G;
    const int32_t *xsum = a->xsum + (size_t)m0 * G;
    int g = 0;
    for (; g + 2 <= G; g += 2) {
        const uint8_t *wg = wr + (size_t)g * gbytes;
        for (int l = 0; l < 2 * gbytes; l += 64) MIX_PREFETCH(wg + MIX_PF + l);
        /* the lanes start at -bias * sum(x) (high rows) or -zero * sum(x) (low rows) */
        const int c0 = hi ? -MIX_HI_BIAS : -zr[g], c1 = hi ? -MIX_HI_BIAS : -zr[g + 1];
        for (int r = 0; r < MR; r++) {
            const size_t xo = (size_t)r * K + (size_t)g * MIX_G, so = (size_t)r * G + g;
            const MI v0 = mix_group_q8(mi_start(c0 * xsum[so]), wg, xa + xo, hi);
            acc0[r] = mf_acc(acc0[r], v0, xs[so] * sr[g]);
            const MI v1 = mix_group_q8(mi_start(c1 * xsum[so + 1]), wg + gbytes, xa + xo + MIX_G, hi);
            acc1[r] = mf_acc(acc1[r], v1, xs[so + 1] * sr[g + 1]);
        }
    }
    if (g < G) {
        const uint8_t *wg = wr + (size_t)g * gbytes;
        const int c0 = hi ? -MIX_HI_BIAS : -zr[g];
        for (int r = 0; r < MR; r++) {
            const size_t xo = (size_t)r * K + (size_t)g * MIX_G, so = (size_t)r * G + g;
            const MI v0 = mix_group_q8(mi_start(c0 * xsum[so]), wg, xa + xo, hi);
            acc0[r] = mf_acc(acc0[r], v0, xs[so] * sr[g]);
        }
    }
    const size_t col = (size_t)(hi ? w->ih : w->il)[i];
    for (int r = 0; r < MR; r++) y[(size_t)(m0 + r) * (size_t)w->N + col] = mf_hsum(mf_add(acc0[r], acc1[r]));
}

/* float activations: sum over groups of s_w,g * (sum q * x (high) or sum (q - z) * x (low, against xfd)) */
MAI void ex_row(const mix_w *w, const mix_act *a, float *y, int i, int m0, const int MR, const int hi) {
    const int K = w->K, G = w->G, gbytes = hi ? MIX_G : MIX_G / 2;
    const uint8_t *wr = mix_codes(w, i, hi);
    const float *sr = (hi ? w->sh : w->sl) + (size_t)i * (size_t)G;
    const uint8_t *zr = hi ? NULL : w->zl + (size_t)i * (size_t)G;
    MF acc[MIX_MR];
    for (int r = 0; r < MR; r++) acc[r] = mf_zero();
    const float *xf = (hi ? a->xf : a->xfd) + (size_t)m0 * K;
    for (int g = 0; g < G; g++) {
        const uint8_t *wg = wr + (size_t)g * gbytes;
        for (int l = 0; l < gbytes; l += 64) MIX_PREFETCH(wg + MIX_PF + l);
        for (int r = 0; r < MR; r++) {
            const float *xg = xf + (size_t)r * K + (size_t)g * MIX_G;
            acc[r] = mf_fma(acc[r], hi ? mf_hi_dot((const int8_t *)wg, xg) : mf_lo_dot(wg, zr[g], xg), sr[g]);
        }
    }
    const size_t col = (size_t)(hi ? w->ih : w->il)[i];
    for (int r = 0; r < MR; r++) y[(size_t)(m0 + r) * (size_t)w->N + col] = mf_hsum(acc[r]);
}

/* rows [i0, i1) for all M activation rows, MR at a time */
#define MIX_ROWS(FN, ROWFN, HI)                                                                                        \
    static void FN(const mix_w *w, const mix_act *a, float *y, int i0, int i1) {                                       \
        const int M = a->M;                                                                                            \
        for (int i = i0; i < i1; i++) {                                                                                \
            int m0 = 0;                                                                                                \
            for (; m0 + MIX_MR <= M; m0 += MIX_MR) ROWFN(w, a, y, i, m0, MIX_MR, HI);                                  \
            switch (M - m0) {                                                                                          \
            case 3: ROWFN(w, a, y, i, m0, 3, HI); break;                                                               \
            case 2: ROWFN(w, a, y, i, m0, 2, HI); break;                                                               \
            case 1: ROWFN(w, a, y, i, m0, 1, HI); break;                                                               \
            default: break;                                                                                            \
            }                                                                                                          \
        }                                                                                                              \
    }

MIX_ROWS(high_q8, q8_row, 1)
MIX_ROWS(low_q8, q8_row, 0)
MIX_ROWS(high_f32, ex_row, 1)
MIX_ROWS(low_f32, ex_row, 0)

PMPD_HIDDEN const mix_ops MIX_OPS_SYM = {
    .name = MIX_ISA_NAME,
    .quant_act = quant_act,
    .high_q8 = high_q8,
    .low_q8 = low_q8,
    .high_f32 = high_f32,
    .low_f32 = low_f32,
};
