/**
 * Dense float64 linear algebra for GPTQ, on row-major K x K Float64Arrays, in place.
 *
 * GPTQ needs U = chol_upper(H⁻¹), the upper-triangular U with positive diagonal and
 * UᵀU = H⁻¹. Instead of Cholesky → inverse → Cholesky (≈ K³ multiply-adds) it uses the
 * reversal identity: with J the index-reversal permutation, let M = chol_lower(J H J). Then
 * H = (J M J)(J M J)ᵀ with J M J upper triangular, so H⁻¹ = (J M⁻¹ J)ᵀ (J M⁻¹ J) and, by
 * uniqueness of the Cholesky factor, U = J M⁻¹ J. Reversing both indices of a row-major
 * K x K array is reversing the flat array, so the computation is: reverse, Cholesky,
 * triangular inverse, reverse (≈ K³/3 multiply-adds).
 *
 * The O(K³) loops are blocked over rows (a block of rows stays in cache while earlier rows
 * stream past) with 4-row micro-tiles, since JavaScript cannot use BLAS.
 */

/** Rows per cache block of the blocked factorizations. */
const BS = 16;

/**
 * A pivot must exceed this fraction of its original diagonal entry: a matrix that is
 * singular up to rounding is reported as not positive definite instead of producing a
 * factor with entries ~1e8 times too large.
 */
export const PIVOT_TOLERANCE = 1e-13;

/**
 * out[i - first] = Σ_{k in [from, to)} A[i, k] · A[v, k] for the rows i in [first, last) of
 * the row-major K-column A. Four rows i share each load of row v (the micro-tile); each sum
 * runs over k in order.
 */
function dotRowsWithRow(A: Float64Array, K: number, first: number, last: number, v: number, from: number, to: number,
  out: Float64Array): void {
  const rv = v * K;
  let i = first;
  for (; i + 3 < last; i += 4) {
    const r0 = i * K, r1 = r0 + K, r2 = r1 + K, r3 = r2 + K;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let k = from; k < to; k++) {
      const x = A[rv + k]!;
      s0 += A[r0 + k]! * x; s1 += A[r1 + k]! * x; s2 += A[r2 + k]! * x; s3 += A[r3 + k]! * x;
    }
    out[i - first] = s0; out[i - first + 1] = s1; out[i - first + 2] = s2; out[i - first + 3] = s3;
  }
  for (; i < last; i++) {
    const r = i * K;
    let s = 0;
    for (let k = from; k < to; k++) s += A[r + k]! * A[rv + k]!;
    out[i - first] = s;
  }
}

/** Reverses a flat array in place (maps element (i, j) to (K-1-i, K-1-j)). */
export function reverseInPlace(A: Float64Array): void {
  for (let i = 0, j = A.length - 1; i < j; i++, j--) {
    const t = A[i]!; A[i] = A[j]!; A[j] = t;
  }
}

/** Transposes a square K x K matrix in place. */
export function transposeInPlace(A: Float64Array, K: number): void {
  for (let i = 0; i < K; i++) {
    for (let j = i + 1; j < K; j++) {
      const a = i * K + j, b = j * K + i;
      const t = A[a]!; A[a] = A[b]!; A[b] = t;
    }
  }
}

/**
 * Cholesky factorization A = L Lᵀ in place: reads the lower triangle of A, writes L there
 * and zeros above the diagonal. Returns false (A partly overwritten) when A is not
 * (numerically) positive definite: a pivot <= PIVOT_TOLERANCE · A_ii, or not finite.
 */
export function choleskyLowerInPlace(A: Float64Array, K: number): boolean {
  const S = new Float64Array(BS);
  for (let ib = 0; ib < K; ib += BS) {
    const ie = Math.min(ib + BS, K);
    // Columns left of the block: rows j < ib are final; share each row j across 4 rows i.
    for (let j = 0; j < ib; j++) {
      const inv = 1 / A[j * K + j]!;
      dotRowsWithRow(A, K, ib, ie, j, 0, j, S);
      for (let i = ib; i < ie; i++) A[i * K + j] = (A[i * K + j]! - S[i - ib]!) * inv;
    }
    // The diagonal block.
    for (let i = ib; i < ie; i++) {
      const ri = i * K;
      for (let j = ib; j <= i; j++) {
        const rj = j * K;
        let s = 0;
        for (let k = 0; k < j; k++) s += A[ri + k]! * A[rj + k]!;
        const a = A[ri + j]!;
        s = a - s;
        if (i === j) {
          if (!(s > PIVOT_TOLERANCE * a) || !(s > 0) || !Number.isFinite(s)) return false;
          A[ri + i] = Math.sqrt(s);
        } else {
          A[ri + j] = s / A[rj + j]!;
        }
      }
      A.fill(0, ri + i + 1, ri + K);
    }
  }
  return true;
}

/**
 * Given L (lower triangle incl. diagonal of A, as left by `choleskyLowerInPlace`), writes
 * Y = (L⁻¹)ᵀ into the upper triangle incl. the diagonal; the strict lower triangle keeps L.
 * Row i of X = L⁻¹ is X[i, j] = -(Σ_{j<=k<i} L[i,k] X[k,j]) / L[i,i], and with X stored
 * transposed both factors of that sum are contiguous rows.
 */
function invertLowerToUpperTransposed(A: Float64Array, K: number): void {
  const d = new Float64Array(K);
  for (let i = 0; i < K; i++) d[i] = A[i * K + i]!;
  const S = new Float64Array(BS);
  for (let ib = 0; ib < K; ib += BS) {
    const ie = Math.min(ib + BS, K);
    for (let j = 0; j < ib; j++) {
      const yj = j * K;
      // Part of the sum over k in [j, ib): finished rows.
      dotRowsWithRow(A, K, ib, ie, j, j, ib, S);
      // The rest, k in [ib, i), uses entries of this block computed just before.
      for (let i = ib; i < ie; i++) {
        const ri = i * K;
        let s = S[i - ib]!;
        for (let k = ib; k < i; k++) s += A[ri + k]! * A[yj + k]!;
        A[yj + i] = -s / d[i]!;
      }
    }
    for (let i = ib; i < ie; i++) {
      const ri = i * K;
      for (let j = ib; j < i; j++) {
        const yj = j * K;
        let s = 0;
        for (let k = j; k < i; k++) s += A[ri + k]! * A[yj + k]!;
        A[yj + i] = -s / d[i]!;
      }
      A[ri + i] = 1 / d[i]!;
    }
  }
}

/**
 * Overwrites the symmetric positive definite A (K x K) with U = chol_upper(A⁻¹) (zeros
 * below the diagonal). Returns false when A is not positive definite (A is then garbage).
 */
export function choleskyUpperOfInverseInPlace(A: Float64Array, K: number): boolean {
  reverseInPlace(A); // A = J H J
  if (!choleskyLowerInPlace(A, K)) return false; // lower: M
  invertLowerToUpperTransposed(A, K); // upper: Y = (M⁻¹)ᵀ
  // U = J M⁻¹ J = (J Y J)ᵀ: reversing puts J Y J in the lower triangle; transpose it up.
  reverseInPlace(A);
  transposeInPlace(A, K);
  for (let i = 1; i < K; i++) A.fill(0, i * K, i * K + i);
  return true;
}
