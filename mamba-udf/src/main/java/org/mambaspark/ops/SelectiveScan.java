package org.mambaspark.ops;

/**
 * The selective scan (S6), Mamba's linear recurrence, fused with the D skip and the SiLU(z) gate.
 * Mirrors mamba_ssm's {@code selective_scan_ref} (with {@code delta_softplus} already applied by
 * the caller) followed by HF's {@code scan_output * act(gate)}:
 *
 * <pre>
 *   h_t[n] = exp(Δ_t·A[n]) · h_{t-1}[n] + Δ_t · B_t[n] · u_t        per (b, e)
 *   y_t    = (Σ_n C_t[n] · h_t[n] + D · u_t) · silu(z_t)
 * </pre>
 *
 * <p>Layouts: A and the state h are (N, ED) per batch row, transposed from the checkpoint's (ED,
 * N), so that the loop over channels e is contiguous and vectorizes; B_t and C_t are read in place
 * from x_proj's output dbc (B, L, R+2N) = [Δ rank | B | C]. The state is carried in and out (h
 * holds h_0 on entry and h_L on exit), which is what makes streaming in pieces and token-by-token
 * generation equal one pass.
 *
 * <p>Two implementations: {@link #scanForwardReference} is the plain sequential loop per (b, e, n),
 * the definition; {@link #scanForward} runs the same recurrence vectorized across channels (16
 * channels a register with AVX-512) and threaded across (b, channel-block), with {@link
 * VectorMath}'s exp. On a CPU the B·ED independent channels are all the parallelism two to a
 * hundred cores can use, so the time loop stays sequential here; the parallel prefix sum over time
 * (the associative operator (a1,u1)∘(a2,u2) = (a2·a1, a2·u1 + u2)) is the GPU kernel's business,
 * where there are threads to spare.
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
  public static void scanForward(
      float[] y,
      float[] h,
      float[] u,
      float[] delta,
      float[] A,
      float[] dbc,
      int R,
      float[] D,
      float[] z,
      int zOff,
      int zStride,
      int B,
      int L,
      int ED,
      int N) {
    if (Simd.ENABLED) {
      SelectiveScanSimd.scanForward(y, h, u, delta, A, dbc, R, D, z, zOff, zStride, B, L, ED, N);
    } else {
      scanForwardReference(y, h, u, delta, A, dbc, R, D, z, zOff, zStride, B, L, ED, N);
    }
  }

  /**
   * One decode step (L = 1) from x_proj's output on: Δ = softplus(dt_proj(δ) + bias), the state
   * update and y, as {@link Matmul#matmulForward} of dt_proj, {@link Activations#softplusForward}
   * and {@link #scanForward} (which it runs where there is no Vector API: they are its reference).
   * The fast path takes the three per block of channels in one parallel call, so that a step's
   * small pieces are shared by the pool's threads instead of left to the caller.
   *
   * @param delta (B, ED) out: Δ after softplus
   * @param dtProj (ED, R) dt_proj weight; dtBias (ED) its bias
   */
  public static void stepForward(
      float[] y,
      float[] h,
      float[] u,
      float[] delta,
      float[] A,
      float[] dbc,
      int R,
      float[] dtProj,
      float[] dtBias,
      float[] D,
      float[] z,
      int zOff,
      int zStride,
      int B,
      int ED,
      int N) {
    if (Simd.ENABLED) {
      SelectiveScanSimd.stepForward(
          y, h, u, delta, A, dbc, R, dtProj, dtBias, D, z, zOff, zStride, B, ED, N);
    } else {
      Matmul.matmulForward(delta, 0, ED, dbc, 0, R + 2 * N, dtProj, dtBias, B, R, ED);
      Activations.softplusForward(delta, 0, ED, B, ED);
      scanForward(y, h, u, delta, A, dbc, R, D, z, zOff, zStride, B, 1, ED, N);
    }
  }

  /**
   * The definition: one channel (b, e) at a time, sequential in t, as selective_scan_ref. Same
   * arguments.
   */
  public static void scanForwardReference(
      float[] y,
      float[] h,
      float[] u,
      float[] delta,
      float[] A,
      float[] dbc,
      int R,
      float[] D,
      float[] z,
      int zOff,
      int zStride,
      int B,
      int L,
      int ED,
      int N) {
    int P = R + 2 * N; // dbc row width
    Parallel.forRange(
        B * ED,
        64,
        (from, to) -> {
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

  /**
   * Number of saved boundary states for a length L cut in chunks of T: the state before each chunk.
   */
  public static int chunkCount(int L, int T) {
    return (L + T - 1) / T;
  }

  /**
   * Copies the states before each chunk into hChunks (B, chunks, N, ED), by running the recurrence
   * forward from h0 (B, N, ED) without computing y. The training forward calls this once per layer
   * after the fast scan (cheap next to it: no exp of C, no gate), so that {@link #scanBackward} can
   * recompute any chunk from its boundary.
   */
  public static void saveChunkStates(
      float[] hChunks,
      int T,
      float[] h0,
      float[] u,
      float[] delta,
      float[] A,
      float[] dbc,
      int R,
      int B,
      int L,
      int ED,
      int N) {
    if (Simd.ENABLED) {
      SelectiveScanSimd.saveChunkStates(hChunks, T, h0, u, delta, A, dbc, R, B, L, ED, N);
    } else {
      saveChunkStatesReference(hChunks, T, h0, u, delta, A, dbc, R, B, L, ED, N);
    }
  }

  /** The definition of {@link #saveChunkStates}. */
  static void saveChunkStatesReference(
      float[] hChunks,
      int T,
      float[] h0,
      float[] u,
      float[] delta,
      float[] A,
      float[] dbc,
      int R,
      int B,
      int L,
      int ED,
      int N) {
    int P = R + 2 * N, chunks = chunkCount(L, T);
    Parallel.forRange(
        ED,
        16,
        (e0, e1) -> {
          float[] h = new float[N];
          for (int b = 0; b < B; b++) {
            for (int e = e0; e < e1; e++) {
              for (int n = 0; n < N; n++) {
                h[n] = h0 == null ? 0f : h0[(b * N + n) * ED + e];
              }
              for (int t = 0; t < L; t++) {
                if (t % T == 0) {
                  int base = (b * chunks + t / T) * N * ED + e;
                  for (int n = 0; n < N; n++) {
                    hChunks[base + n * ED] = h[n];
                  }
                }
                int row = b * L + t;
                float dt = delta[row * ED + e], x = u[row * ED + e];
                int bOff = row * P + R;
                for (int n = 0; n < N; n++) {
                  h[n] = (float) Math.exp(dt * A[n * ED + e]) * h[n] + dt * dbc[bOff + n] * x;
                }
              }
            }
          }
        });
  }

  /**
   * Accumulates (+=) the gradients of {@link #scanForward} by the reverse-time adjoint recurrence
   * G_t = dL/dh_t = C_t·ds_t + a_{t+1}·G_{t+1}, one channel (b, e) at a time. States are recomputed
   * chunk by chunk from the boundaries saved by {@link #saveChunkStates}: memory O(B·ED·N·L/T)
   * instead of O(B·ED·N·L) for all states (T = L gives the plain reference that recomputes the
   * whole sequence).
   *
   * <pre>
   *   s_t = Σ_n C_t[n] h_t[n] + D u_t;   y_t = s_t · silu(z_t)
   *   dz_t = dy_t s_t silu'(z_t);   ds_t = dy_t silu(z_t);   dD += ds_t u_t;   du_t += ds_t D
   *   dC_t[n] += ds_t h_t[n];   dA[n] += G_t h_{t-1} a_t Δ_t;   dB_t[n] += G_t Δ_t u_t
   *   dΔ_t += Σ_n G_t (h_{t-1} a_t A[n] + B_t[n] u_t);   du_t += Σ_n G_t Δ_t B_t[n]
   * </pre>
   *
   * @param du (B, L, ED) +=
   * @param ddelta (B, L, ED) +=
   * @param dA (N, ED) += (gradient of A; dA_log = dA · A)
   * @param ddbc (B, L, R+2N) += at the B and C columns
   * @param dD (ED) +=
   * @param dz at dz[(b*L+t)*zStride + zOff + e] +=
   * @param dy (B, L, ED) gradient of the gated output
   * @param hChunks (B, chunks, N, ED) from {@link #saveChunkStates} with the same T
   */
  public static void scanBackward(
      float[] du,
      float[] ddelta,
      float[] dA,
      float[] ddbc,
      float[] dD,
      float[] dz,
      float[] dy,
      float[] hChunks,
      int T,
      float[] u,
      float[] delta,
      float[] A,
      float[] dbc,
      int R,
      float[] D,
      float[] z,
      int zOff,
      int zStride,
      int B,
      int L,
      int ED,
      int N) {
    if (Simd.ENABLED) {
      SelectiveScanSimd.scanBackward(
          du, ddelta, dA, ddbc, dD, dz, dy, hChunks, T, u, delta, A, dbc, R, D, z, zOff, zStride, B,
          L, ED, N);
    } else {
      scanBackwardReference(
          du, ddelta, dA, ddbc, dD, dz, dy, hChunks, T, u, delta, A, dbc, R, D, z, zOff, zStride, B,
          L, ED, N);
    }
  }

  /** The definition of {@link #scanBackward}, one channel at a time, in double where it sums. */
  public static void scanBackwardReference(
      float[] du,
      float[] ddelta,
      float[] dA,
      float[] ddbc,
      float[] dD,
      float[] dz,
      float[] dy,
      float[] hChunks,
      int T,
      float[] u,
      float[] delta,
      float[] A,
      float[] dbc,
      int R,
      float[] D,
      float[] z,
      int zOff,
      int zStride,
      int B,
      int L,
      int ED,
      int N) {
    int P = R + 2 * N, chunks = chunkCount(L, T);
    // Blocks of channels own their dA, dD, du, dΔ, dz; dB and dC sum over channels, so each block
    // keeps a partial
    // (B, L, 2N) and the partials are added in block order afterwards (deterministic whatever the
    // thread count).
    int perBlock = 32, blocks = (ED + perBlock - 1) / perBlock;
    float[][] dBCs = new float[blocks][];
    Parallel.forEachBlock(
        blocks,
        blk -> {
          int e0 = blk * perBlock, e1 = Math.min(ED, e0 + perBlock);
          float[] dBC = new float[B * L * 2 * N]; // (B, L, 2N) this block's share of dB | dC
          dBCs[blk] = dBC;
          float[] hs = new float[(T + 1) * N]; //    states h_{t0-1} .. h_{t1-1} of one chunk
          float[] a = new float[T * N]; //           exp(Δ_t A) of the chunk
          double[] G = new double[N];
          double[] dAe = new double[N];
          for (int e = e0; e < e1; e++) {
            java.util.Arrays.fill(dAe, 0);
            double dDe = 0;
            float De = D[e];
            for (int b = 0; b < B; b++) {
              java.util.Arrays.fill(G, 0);
              for (int c = chunks - 1; c >= 0; c--) {
                int t0 = c * T, t1 = Math.min(L, t0 + T);
                int base = (b * chunks + c) * N * ED + e;
                for (int n = 0; n < N; n++) {
                  hs[n] = hChunks[base + n * ED];
                }
                for (int t = t0; t < t1; t++) { // recompute the chunk's states
                  int row = b * L + t, k = t - t0;
                  float dt = delta[row * ED + e], x = u[row * ED + e];
                  int bOff = row * P + R;
                  for (int n = 0; n < N; n++) {
                    float an = (float) Math.exp(dt * A[n * ED + e]);
                    a[k * N + n] = an;
                    hs[(k + 1) * N + n] = an * hs[k * N + n] + dt * dbc[bOff + n] * x;
                  }
                }
                for (int t = t1 - 1; t >= t0; t--) {
                  int row = b * L + t, k = t - t0;
                  float dt = delta[row * ED + e], x = u[row * ED + e];
                  int bOff = row * P + R, cOff = bOff + N;
                  float s = De * x;
                  for (int n = 0; n < N; n++) {
                    s += dbc[cOff + n] * hs[(k + 1) * N + n];
                  }
                  float zz = z[row * zStride + zOff + e];
                  float g = Activations.silu(zz);
                  float dyt = dy[row * ED + e];
                  dz[row * zStride + zOff + e] += dyt * s * Activations.siluGrad(zz);
                  float ds = dyt * g;
                  dDe += ds * x;
                  double dut = ds * De;
                  double ddt = 0;
                  int bc = row * 2 * N;
                  for (int n = 0; n < N; n++) {
                    float hn = hs[(k + 1) * N + n], hp = hs[k * N + n], an = a[k * N + n];
                    float Bn = dbc[bOff + n], Cn = dbc[cOff + n], An = A[n * ED + e];
                    dBC[bc + N + n] += ds * hn; // dC
                    double Gn = G[n] + ds * Cn;
                    dAe[n] += Gn * hp * an * dt;
                    ddt += Gn * (hp * an * An + Bn * x);
                    dBC[bc + n] += (float) (Gn * dt * x); // dB
                    dut += Gn * dt * Bn;
                    G[n] = Gn * an;
                  }
                  ddelta[row * ED + e] += (float) ddt;
                  du[row * ED + e] += (float) dut;
                }
              }
            }
            for (int n = 0; n < N; n++) {
              dA[n * ED + e] += (float) dAe[n];
            }
            dD[e] += (float) dDe;
          }
        });
    for (float[] dBC : dBCs) {
      for (int row = 0; row < B * L; row++) {
        for (int j = 0; j < 2 * N; j++) {
          ddbc[row * P + R + j] += dBC[row * 2 * N + j];
        }
      }
    }
  }
}
