/*
 * What the super-block ("net") q8 GEMVs of quant_avx512.c (VBMI + GFNI, 512-bit) and
 * quant_avx2.c (GFNI + AVX-VNNI, 256-bit) share; quant_avx512.c describes the scheme.
 * A super-block is 2 blocks of 64 weights per 128-bit lane (LANES = 4 or 2 lanes): lane L
 * of every code register holds blocks 2L and 2L+1, and set h of four lookups has lane L =
 * block 2L+h. Code registers pack 8/NB codes per byte (NB rows per bit-matrix group).
 */
#ifndef PMPD_QUANT_NET_H
#define PMPD_QUANT_NET_H

#include "quant_internal.h"

/* code register R and field g of lookup j of set h */
static inline int net_reg(int NB, int h, int j) { return NB == 2 ? h : NB == 4 ? 2 * h + (j >> 1) : 4 * h + j; }
static inline int net_fld(int NB, int j) { return NB == 2 ? j : NB == 4 ? (j & 1) : 0; }
/* bytes 8t..8t+7 of a lane of lookup j are weights 8*m .. 8*m+7 of the lane's block */
static inline int net_m(int NB, int j, int t) {
    return NB == 2 ? 4 * t + j : NB == 4 ? 4 * (j >> 1) + 2 * t + (j & 1) : 4 * (j >> 1) + 2 * (j & 1) + t;
}

/* GF(2) matrix moving bits s..s+w-1 of every byte to bits 0..w-1 (others cleared) */
static inline long long net_field_matrix(int s, int w) {
    unsigned long long m = 0;
    for (int i = 0; i < w; i++) m |= (unsigned long long)(1u << (s + i)) << (8 * (7 - i));
    return (long long)m;
}

/* Bytes of one set of act.ext for LANES 128-bit lanes (V = 16 * LANES bytes per vector):
 *   [0, 4V)     int8 activations of lookups j = 0..3 (V bytes each, kernel order)
 *   [4V, 5V)    any-precision: int32 start values, lane 4L = -128 * sum(xq of block 2L+h);
 *               uniform: int32 lane -> group offset from the super-block's first group
 *   [5V, 6V)    float block scales, lanes 4L..4L+3 = scale of block 2L+h
 *   uniform only:
 *   [6V, 7V)    int32, lane 4L = -sum(xq of block 2L+h), other lanes 0
 *   [7V, 8V)    uint8 lane -> group offset (the int32 offsets as bytes), then zeros */
#define NET_SET_A(LANES) (6 * 16 * (LANES))
#define NET_SET_U(LANES) (8 * 16 * (LANES))

static inline size_t net_act_ext_bytes(const pmpd_qw *w, int lanes) {
    const size_t nsb = (size_t)(w->nblk + 2 * lanes - 1) / (size_t)(2 * lanes);
    return nsb * 2 * NET_SET_U(lanes);
}

/* The activations of one row rearranged for the kernels (built once per call). */
static inline void net_act_ext_build(const pmpd_qw *w, int uniform, const pmpd_qact *a, void *ext, int lanes, int NB) {
    const int V = 16 * lanes, bps = 2 * lanes; /* vector bytes, blocks per super-block */
    const int nblk = w->nblk, nsb = (nblk + bps - 1) / bps;
    const int gb = uniform ? q_blocks_per_group(w) : 1;
    const size_t set = uniform ? NET_SET_U(lanes) : NET_SET_A(lanes);
    uint8_t *e = (uint8_t *)ext;
    for (int sb = 0; sb < nsb; sb++)
        for (int h = 0; h < 2; h++) {
            uint8_t *es = e + (size_t)(2 * sb + h) * set;
            int32_t *aux = (int32_t *)(es + 4 * V), *nsum = (int32_t *)(es + 6 * V);
            float *sv = (float *)(es + 5 * V);
            uint8_t *zidx = es + 7 * V;
            if (uniform) memset(zidx, 0, (size_t)V);
            for (int L = 0; L < lanes; L++) {
                const int blk = bps * sb + 2 * L + h, live = blk < nblk;
                for (int j = 0; j < 4; j++)
                    for (int t = 0; t < 2; t++) {
                        uint8_t *dst = es + V * j + 16 * L + 8 * t;
                        if (live) memcpy(dst, a->xq + (size_t)blk * QBLK + 8 * net_m(NB, j, t), 8);
                        else memset(dst, 0, 8);
                    }
                const int go = live ? blk / gb - (bps * sb) / gb : 0;
                for (int i = 0; i < 4; i++) {
                    aux[4 * L + i] = uniform ? go : i == 0 && live ? a->xc128[blk] : 0;
                    sv[4 * L + i] = live ? a->xs[blk] : 0.0f;
                    if (uniform) {
                        nsum[4 * L + i] = i == 0 && live ? -a->xsum[blk] : 0;
                        zidx[4 * L + i] = (uint8_t)go;
                    }
                }
            }
        }
}

#endif /* PMPD_QUANT_NET_H */
