package org.mambaspark.ops;

/**
 * The mixer's causal depthwise convolution over time, then SiLU (HF {@code
 * MambaMixer.slow_forward}: {@code act(conv1d(x)[..., :L])}, i.e. left zero padding K-1).
 *
 * <p>State for streaming and generation: the last K-1 inputs of each channel, (B, ED, K-1),
 * state[b, e, j] = the input at position j-(K-1) relative to this piece's first position. A null
 * state means zero padding (a fresh sequence). Carrying it makes pieces equal one pass.
 */
public final class Conv1d {
  private Conv1d() {}

  /**
   * out[b,t,e] = silu(bias[e] + Σ_k weight[e,k] · x[b, t-(K-1)+k, e]).
   *
   * @param out (B, L, ED) after SiLU
   * @param preact (B, L, ED) before SiLU, saved for the backward pass; may be null
   * @param inp x at inp[(b*L + t)*inStride + inOff + e] (the first half of in_proj's output)
   * @param state (B, ED, K-1) inputs before t = 0, or null for zeros; not modified here (see {@link
   *     #updateState})
   * @param weight (ED, K)
   * @param bias (ED) or null
   */
  public static void convForward(
      float[] out,
      float[] preact,
      float[] inp,
      int inOff,
      int inStride,
      float[] state,
      float[] weight,
      float[] bias,
      int B,
      int L,
      int ED,
      int K) {
    int K1 = K - 1;
    Parallel.forRange(
        B * L,
        Math.max(1, 2048 / ED),
        (from, to) -> {
          for (int bt = from; bt < to; bt++) {
            int b = bt / L, t = bt - b * L;
            int o = bt * ED;
            for (int e = 0; e < ED; e++) {
              out[o + e] = bias == null ? 0f : bias[e];
            }
            for (int k = 0; k < K; k++) {
              int p = t - K1 + k; // input position
              if (p >= 0) {
                int xo = (b * L + p) * inStride + inOff;
                for (int e = 0; e < ED; e++) {
                  out[o + e] += weight[e * K + k] * inp[xo + e];
                }
              } else if (state != null) {
                int so = b * ED * K1 + p + K1; // state index j = p + (K-1)
                for (int e = 0; e < ED; e++) {
                  out[o + e] += weight[e * K + k] * state[so + e * K1];
                }
              }
            }
            if (preact != null) {
              System.arraycopy(out, o, preact, o, ED);
            }
            Activations.siluInPlace(out, o, ED);
          }
        });
  }

  /**
   * One decode step, L = 1 with a state: {@link #convForward} (no preact) then {@link
   * #updateState}, fused into one pass over the channels: out[b, e] = silu(bias[e] + Σ_{k<K-1}
   * weight[e, k]·state[b, e, k] + weight[e, K-1]·x[b, e]), then state[b, e] shifts left by one and
   * takes x[b, e] last. The same sums in the same order as the pair it replaces, which read the
   * state with a stride of K-1 once per tap.
   *
   * @param out (B, ED)
   * @param inp x[b, e] at inp[b*inStride + inOff + e]
   * @param state (B, ED, K-1), updated
   */
  public static void convStep(
      float[] out,
      float[] inp,
      int inOff,
      int inStride,
      float[] state,
      float[] weight,
      float[] bias,
      int B,
      int ED,
      int K) {
    int K1 = K - 1;
    for (int b = 0; b < B; b++) {
      int o = b * ED, xo = b * inStride + inOff;
      for (int e = 0; e < ED; e++) {
        int so = (o + e) * K1, wo = e * K;
        float x = inp[xo + e];
        float acc = bias == null ? 0f : bias[e];
        for (int k = 0; k < K1; k++) {
          acc += weight[wo + k] * state[so + k];
        }
        acc += weight[wo + K1] * x;
        out[o + e] = acc;
        for (int k = 0; k + 1 < K1; k++) {
          state[so + k] = state[so + k + 1];
        }
        if (K1 > 0) {
          state[so + K1 - 1] = x;
        }
      }
      Activations.siluInPlace(out, o, ED);
    }
  }

  /**
   * Shifts this piece's inputs into the state: afterwards state holds the last K-1 inputs seen (B,
   * ED, K-1).
   */
  public static void updateState(
      float[] state, float[] inp, int inOff, int inStride, int B, int L, int ED, int K) {
    int K1 = K - 1;
    for (int b = 0; b < B; b++) {
      for (int e = 0; e < ED; e++) {
        int so = (b * ED + e) * K1;
        // ascending j reads old entries at j + L > j: safe in place
        for (int j = 0; j < K1; j++) {
          int p = L - K1 + j;
          state[so + j] = p >= 0 ? inp[(b * L + p) * inStride + inOff + e] : state[so + j + L];
        }
      }
    }
  }

  /**
   * Accumulates (+=) the gradients of {@link #convForward} for fresh sequences (zero history), the
   * training case.
   *
   * @param dinp dx at dinp[(b*L + t)*inStride + inOff + e] +=
   * @param dweight (ED, K) +=
   * @param dbias (ED) += , or null
   * @param dout (B, L, ED) gradient of the SiLU output
   * @param preact (B, L, ED) saved by the forward
   */
  public static void convBackward(
      float[] dinp,
      float[] dweight,
      float[] dbias,
      float[] dout,
      float[] preact,
      float[] inp,
      int inOff,
      int inStride,
      float[] weight,
      int B,
      int L,
      int ED,
      int K) {
    int K1 = K - 1;
    // parallel over channel blocks: every (e, k) gradient is owned by one thread, so no reduction
    // is needed
    Parallel.forRange(
        ED,
        16,
        (e0, e1) -> {
          int n = e1 - e0;
          float[] dpre = new float[n];
          for (int b = 0; b < B; b++) {
            for (int t = 0; t < L; t++) {
              int o = (b * L + t) * ED;
              for (int e = e0; e < e1; e++) {
                dpre[e - e0] = dout[o + e] * Activations.siluGrad(preact[o + e]);
              }
              if (dbias != null) {
                for (int e = e0; e < e1; e++) {
                  dbias[e] += dpre[e - e0];
                }
              }
              for (int k = 0; k < K; k++) {
                int p = t - K1 + k;
                if (p < 0) {
                  continue;
                }
                int xo = (b * L + p) * inStride + inOff;
                for (int e = e0; e < e1; e++) {
                  dweight[e * K + k] += dpre[e - e0] * inp[xo + e];
                  dinp[xo + e] += weight[e * K + k] * dpre[e - e0];
                }
              }
            }
          }
        });
  }
}
