/*
 * Quantized kernels, portable path: plain C integer loops (no ISA flags). It is
 * the only path on non-x86 targets, and its uniform kernels double as the
 * fallback of the vector paths for group sizes that are not multiples of 64.
 *
 * Codes of 8 consecutive weights are rebuilt SWAR-style in one uint64_t: a
 * 256-entry table spreads the 8 bits of a plane byte to the 8 bytes of a word
 * (bit i -> byte i), and the b planes are OR-ed in at their bit positions.
 */
#include <math.h>

#include "quant_internal.h"

static uint64_t g_spread[256];
__attribute__((constructor)) static void init_spread(void) {
    for (unsigned v = 0; v < 256; v++) {
        uint64_t s = 0;
        for (unsigned i = 0; i < 8; i++)
            if ((v >> i) & 1u) s |= (uint64_t)1 << (8 * i);
        g_spread[v] = s;
    }
}

/* byte i of the result = b-bit code of weight 8j+i, from plane row pointers pp */
static inline uint64_t codes8(const uint8_t *const *pp, long j, int B) {
    uint64_t c = 0;
    for (int p = 0; p < B; p++) c |= g_spread[pp[p][j]] << (B - 1 - p);
    return c;
}

/* ---- activations ------------------------------------------------------ */

static void quant_act(const float *x, int K, int8_t *xq, float *xs, int32_t *xsum, int32_t *xc128) {
    const int nblk = (K + QBLK - 1) / QBLK;
    for (int b = 0; b < nblk; b++) {
        const int k0 = b * QBLK, n = K - k0 < QBLK ? K - k0 : QBLK;
        const float *xb = x + k0;
        int8_t *q = xq + k0;
        float amax = 0.0f;
        int bad = 0;
        for (int i = 0; i < n; i++) {
            const float a = fabsf(xb[i]);
            if (!(a <= 3.40282347e38f)) bad = 1; /* inf or NaN */
            if (a > amax) amax = a;
        }
        const float scale = bad ? NAN : amax / 127.0f;
        int32_t s = 0;
        if (bad || scale == 0.0f) {
            for (int i = 0; i < QBLK; i++) q[i] = 0;
            xs[b] = bad ? NAN : 0.0f;
        } else {
            for (int i = 0; i < n; i++) {
                float v = xb[i] / scale;
                v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
                /* round half to even: exact for |v| < 2^22 in the default rounding mode */
                const float r = (v + 12582912.0f) - 12582912.0f;
                const int qi = (int)r;
                q[i] = (int8_t)qi;
                s += qi;
            }
            for (int i = n; i < QBLK; i++) q[i] = 0;
            xs[b] = scale;
        }
        xsum[b] = s;
        xc128[b] = -128 * s;
    }
}

/* ---- any-precision ---------------------------------------------------- */

static void anyprec_q8(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1) {
    const int B = w->bits, rowb = w->rowb;
    for (int n = n0; n < n1; n++) {
        const uint8_t *pp[8];
        q_rowptrs(w, n, B, pp);
        const int8_t *t = w->lut_q + ((size_t)n << B);
        float acc = 0.0f;
        for (int b = 0; b < w->nblk; b++) {
            const int j0 = b * 8, j1 = j0 + 8 < rowb ? j0 + 8 : rowb;
            const int8_t *xb = a->xq + (size_t)b * QBLK;
            int32_t s = 0;
            for (int j = j0; j < j1; j++) {
                const uint64_t c = codes8(pp, j, B);
                const int8_t *xx = xb + (j - j0) * 8;
                for (int i = 0; i < 8; i++) s += (int32_t)t[(c >> (8 * i)) & 0xFF] * xx[i];
            }
            acc += (float)s * a->xs[b];
        }
        y[n] = acc * w->lut_scale[n];
    }
}

static void anyprec_f32(const pmpd_qw *w, const float *x, float *y, int n0, int n1) {
    const int B = w->bits, rowb = w->rowb;
    for (int n = n0; n < n1; n++) {
        const uint8_t *pp[8];
        q_rowptrs(w, n, B, pp);
        const float *t = w->lut + ((size_t)n << B);
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int j = 0; j < rowb; j++) {
            const uint64_t c = codes8(pp, j, B);
            const float *xx = x + (size_t)j * 8;
            for (int i = 0; i < 8; i++) acc[i] += t[(c >> (8 * i)) & 0xFF] * xx[i];
        }
        y[n] = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    }
}

static void dequant_anyprec(const pmpd_qw *w, int use_q8, float *out, int n0, int rows) {
    const int B = w->bits, rowb = w->rowb, E = 1 << B;
    float tq[256];
    for (int r = 0; r < rows; r++) {
        const int n = n0 + r;
        const uint8_t *pp[8];
        q_rowptrs(w, n, B, pp);
        const float *t;
        if (use_q8) {
            const int8_t *q = w->lut_q + ((size_t)n << B);
            for (int e = 0; e < E; e++) tq[e] = (float)q[e];
            t = tq;
        } else {
            t = w->lut + ((size_t)n << B);
        }
        float *o = out + (size_t)r * (size_t)w->K;
        for (int j = 0; j < rowb; j++) {
            const uint64_t c = codes8(pp, j, B);
            for (int i = 0; i < 8; i++) o[j * 8 + i] = t[(c >> (8 * i)) & 0xFF];
        }
    }
}

/* ---- uniform (any group size that is a multiple of 8) ------------------ */

/* y[n] = sum over groups g and 64-blocks b: scale_g * s_b * (sum code*xq - zero_g * sum xq),
 * the integer part taken over each (block, group) segment. */
PMPD_HIDDEN void pmpd_q_uniform_q8_generic(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1) {
    const int B = w->bits, rowb = w->rowb, g = w->group;
    for (int n = n0; n < n1; n++) {
        q_urow u;
        q_uniform_row(w, n, B, &u);
        float acc = 0.0f;
        for (int b = 0; b < w->nblk; b++) {
            const int j0 = b * 8, j1 = j0 + 8 < rowb ? j0 + 8 : rowb;
            const int8_t *xb = a->xq + (size_t)b * QBLK;
            int gi = (j0 * 8) / g;
            int32_t dot = 0, sx = 0;
            for (int j = j0; j < j1; j++) {
                const int gj = (j * 8) / g;
                if (gj != gi) {
                    acc += u.sc[gi] * (a->xs[b] * (float)(dot - (int32_t)u.zr[gi] * sx));
                    dot = sx = 0;
                    gi = gj;
                }
                const uint64_t c = codes8(u.pp, j, B);
                const int8_t *xx = xb + (j - j0) * 8;
                for (int i = 0; i < 8; i++) {
                    dot += (int32_t)((c >> (8 * i)) & 0xFF) * xx[i];
                    sx += xx[i];
                }
            }
            acc += u.sc[gi] * (a->xs[b] * (float)(dot - (int32_t)u.zr[gi] * sx));
        }
        y[n] = acc;
    }
}

PMPD_HIDDEN void pmpd_q_uniform_f32_generic(const pmpd_qw *w, const float *x, float *y, int n0, int n1) {
    const int B = w->bits, rowb = w->rowb, G = w->ngroups, g = w->group;
    for (int n = n0; n < n1; n++) {
        q_urow u;
        q_uniform_row(w, n, B, &u);
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int gi = 0; gi < G; gi++) {
            const int j0 = gi * (g / 8), j1 = j0 + g / 8 < rowb ? j0 + g / 8 : rowb;
            const int z = u.zr[gi];
            float ag[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (int j = j0; j < j1; j++) {
                const uint64_t c = codes8(u.pp, j, B);
                const float *xx = x + (size_t)j * 8;
                for (int i = 0; i < 8; i++) ag[i] += (float)((int)((c >> (8 * i)) & 0xFF) - z) * xx[i];
            }
            for (int i = 0; i < 8; i++) acc[i] += ag[i] * u.sc[gi];
        }
        y[n] = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    }
}

PMPD_HIDDEN void pmpd_q_dequant_uniform_generic(const pmpd_qw *w, float *out, int n0, int rows) {
    const int B = w->bits, rowb = w->rowb, g = w->group;
    for (int r = 0; r < rows; r++) {
        q_urow u;
        q_uniform_row(w, n0 + r, B, &u);
        float *o = out + (size_t)r * (size_t)w->K;
        for (int j = 0; j < rowb; j++) {
            const int gi = (j * 8) / g;
            const uint64_t c = codes8(u.pp, j, B);
            for (int i = 0; i < 8; i++) o[j * 8 + i] = u.sc[gi] * (float)((int)((c >> (8 * i)) & 0xFF) - (int)u.zr[gi]);
        }
    }
}

PMPD_HIDDEN const pmpd_qops pmpd_qops_scalar = {
    .name = "scalar",
    .anyprec_q8 = anyprec_q8,
    .anyprec_f32 = anyprec_f32,
    .uniform_q8 = pmpd_q_uniform_q8_generic,
    .uniform_f32 = pmpd_q_uniform_f32_generic,
    .dequant_anyprec = dequant_anyprec,
    .dequant_uniform = pmpd_q_dequant_uniform_generic,
    .quant_act = quant_act,
};
