package org.mambaspark.ops;

/**
 * The selective scan (S6), Mamba's linear recurrence, fused with the D skip and the SiLU(z) gate. Mirrors
 * mamba_ssm's {@code selective_scan_ref} (with {@code delta_softplus} already applied by the caller) followed by
 * HF's {@code scan_output * act(gate)}:
 *
 * <pre>
 *   h_t[n] = exp(Δ_t·A[n]) · h_{t-1}[n] + Δ_t · B_t[n] · u_t        per (b, e)
 *   y_t    = (Σ_n C_t[n] · h_t[n] + D · u_t) · silu(z_t)
 * </pre>
 *
 * <p>Layouts: A and the state h are (N, ED) per batch row, transposed from the checkpoint's (ED, N), so that the
 * loop over channels e is contiguous and vectorizes; B_t and C_t are read in place from x_proj's output
 * dbc (B, L, R+2N) = [Δ rank | B | C]. The state is carried in and out (h holds h_0 on entry and h_L on exit), which
 * is what makes streaming in pieces and token-by-token generation equal one pass.
 *
 * <p>Two implementations: {@link #scanForwardReference} is the plain sequential loop per (b, e, n), the
 * definition; {@link #scanForward} runs the same recurrence vectorized across channels (16 channels a register with
 * AVX-512) and threaded across (b, channel-block), with the Vector API's exp. On a CPU the B·ED independent
 * channels are all the parallelism two to a hundred cores can use, so the time loop stays sequential here; the
 * parallel prefix sum over time (the associative operator (a1,u1)∘(a2,u2) = (a2·a1, a2·u1 + u2)) is the GPU
 * kernel's business, where there are threads to spare.
 */
public final class SelectiveScan {
  private SelectiveScan() {}

  /**
   * @param y (B, L, ED) output
   * @param h (B, N, ED) state: h_0 in, h_L out
   * @param u (B, L, ED) input (conv output)
   * @param delta (B, L, ED) Δ after softplus
   * @param A (N, ED) = -exp(A_log)ᵀ
   * @param dbc (B, L, R+2N) x_proj output: B at [R, R+N), C at [R+N, R+2N)
   * @param D (ED) skip
   * @param z the gate at z[(b*L+t)*zStride + zOff + e]
   */
  public static void scanForward(float[] y, float[] h, float[] u, float[] delta, float[] A, float[] dbc, int R,
      float[] D, float[] z, int zOff, int zStride, int B, int L, int ED, int N) {
    if (Simd.ENABLED) {
      SelectiveScanSimd.scanForward(y, h, u, delta, A, dbc, R, D, z, zOff, zStride, B, L, ED, N);
    } else {
      scanForwardReference(y, h, u, delta, A, dbc, R, D, z, zOff, zStride, B, L, ED, N);
    }
  }

  /** The definition: one channel (b, e) at a time, sequential in t, as selective_scan_ref. Same arguments. */
  public static void scanForwardReference(float[] y, float[] h, float[] u, float[] delta, float[] A, float[] dbc,
      int R, float[] D, float[] z, int zOff, int zStride, int B, int L, int ED, int N) {
    int P = R + 2 * N; // dbc row width
    Parallel.forRange(B * ED, 64, (from, to) -> {
      for (int be = from; be < to; be++) {
        int b = be / ED, e = be - b * ED;
        int hb = b * N * ED + e; // h[b, n, e] = h[hb + n*ED]
        for (int t = 0; t < L; t++) {
          int row = b * L + t;
          float dt = delta[row * ED + e];
          float x = u[row * ED + e];
          int bOff = row * P + R, cOff = bOff + N;
          float acc = 0f;
          for (int n = 0; n < N; n++) {
            float a = (float) Math.exp(dt * A[n * ED + e]);
            float hn = a * h[hb + n * ED] + dt * dbc[bOff + n] * x;
            h[hb + n * ED] = hn;
            acc += dbc[cOff + n] * hn;
          }
          float zz = z[row * zStride + zOff + e];
          y[row * ED + e] = (acc + D[e] * x) * Activations.silu(zz);
        }
      }
    });
  }
}
