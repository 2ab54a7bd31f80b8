package org.mambaspark.kernel;

/**
 * One matrix product for {@link MambaKernel#OP_GEMM} / {@link MambaKernel#OP_GEMV}: C (M, N) (+)= A
 * (M, K) · B (K, N) (+ bias[n]), then an activation. Each operand is a strided view of one of the
 * kernel's arrays, so that one kernel serves {@code Matmul.matmulForward} (activations · weightsᵀ),
 * both products of its backward, and views such as the z half of in_proj's output.
 *
 * @param biasOff W offset of the bias (N), or −1
 * @param act {@link MambaKernel#ACT_NONE} or {@link MambaKernel#ACT_SOFTPLUS}
 */
record Product(
    int M, int N, int K, View a, View b, View c, int biasOff, boolean accumulate, int act) {

  /**
   * Element (i, j) at {@code off + i·rs + j·cs} of the array {@code sel} names ({@link
   * MambaKernel#SEL_ACT} ...): A's (m, k), B's (k, n), C's (m, n) with cs = 1.
   */
  record View(int sel, int off, int rs, int cs) {}
}
