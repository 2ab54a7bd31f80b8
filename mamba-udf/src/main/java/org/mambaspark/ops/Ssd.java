package org.mambaspark.ops;

import java.util.Arrays;

/**
 * Mamba-2's scan, the state-space dual (SSD) of Dao and Gu, "Transformers are SSMs" (2024): a
 * selective scan whose decay is one scalar per head, per batch row b and head h (in group g = h /
 * (H/G)):
 *
 * <pre>
 *   h_t = exp(Δ_t·A)·h_{t-1} + Δ_t · x_t ⊗ B_t        state (P, N); x_t (P); B_t, C_t (N) of group g
 *   y_t = h_t·C_t + Dskip·x_t
 * </pre>
 *
 * <p>With a scalar decay the scan over a chunk of q positions is a masked attention: Y = (L ∘ C Bᵀ)
 * · diag(Δ) · X + diag(decay from the chunk's start) · C · stateᵀ, with L[i, j] = exp(Σ_{j<k≤i} Δ_k
 * A) for j ≤ i (0 above the diagonal); and the state after the chunk is decay·state + Xᵀ
 * diag(L[q-1, :]·Δ) B. {@link #ssdForward} runs it that way, so that the work is matrix products
 * ({@link MatmulGemm}); a short sequential pass carries the (P, N) states across chunks. L is built
 * row by row as a running product of the per-step decays (L[i, j] = L[i-1, j]·exp(Δ_i A)), never as
 * a difference of cumulative sums: every entry is a product of factors in (0, 1], accurate to a few
 * ulps per step however long the chunk, and exp is taken q times per chunk, not q².
 *
 * <p>{@link #ssdScanReference} is the recurrence itself, the definition; {@link #ssdStep} is one
 * step of it for decoding. {@link #ssdBackward} recomputes each chunk from the states {@link
 * #ssdForward} saved at the chunk boundaries; {@link #ssdBackwardReference} is the reverse-time
 * adjoint of the recurrence in double.
 *
 * <p>Layouts. Rows are positions, row = b·L + t. x, B, C are read in place from the causal conv's
 * output (B·L, H·P + 2·G·N) = [x | B | C], Δ from in_proj's output, so each is an (array, offset,
 * row stride) view: x[xOff + row·xStride + h·P + p], dt[dtOff + row·dtStride + h], B[bOff +
 * row·bStride + g·N + n], C[cOff + row·cStride + g·N + n], and y[yOff + row·yStride + h·P + p]. The
 * state is (batch, H, P, N) and the saved chunk states (batch, chunks + 1, H, P, N). A (H) is
 * −exp(A_log) and Δ is already softplus'ed and clamped: both are the caller's.
 */
public final class Ssd {
  /**
   * Blocks of a group's heads worked on in parallel within one chunk: enough for the cores when
   * batch · groups · chunks is small (one sequence of two chunks, one group), few enough that the
   * blocks' partial sums stay small. A constant, so that results do not depend on the thread count.
   */
  static final int HEAD_BLOCKS = 8;

  /**
   * Decays below this are taken as zero. They weigh terms 1e-20 times smaller than the ones beside
   * them, far below float's resolution, and they reach subnormal floats, whose products x86 runs
   * some hundred times slower: with strongly decaying heads the forward ran twice as slow at Q =
   * 256 as at Q = 192 before decays were flushed.
   */
  static final float TINY = 1e-20f;

  /** Rows per block of the triangular products, a multiple of the GEMM's register tile height. */
  static final int TB = 64;

  private Ssd() {}

  /** Number of chunks of Q positions in a sequence of L (the last one may be shorter). */
  public static int chunkCount(int L, int Q) {
    return (L + Q - 1) / Q;
  }

  /**
   * Floats of the buffer {@link #ssdForward} fills for {@link #ssdBackward}: the states before each
   * chunk and after the last, (batch, chunks + 1, H, P, N).
   */
  public static int savedSize(int batch, int L, int H, int P, int N, int Q) {
    checkChunk(Q);
    long n = (long) batch * (chunkCount(L, Q) + 1) * H * P * N;
    if (n > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "ssd: saved chunk states of " + n + " floats exceed a Java array; use a larger chunk");
    }
    return (int) n;
  }

  /**
   * The chunked scan: y for every position, and the state carried from h_0 to h_L.
   *
   * @param y output (batch·L rows) at y[yOff + row·yStride + h·P + p], overwritten
   * @param state (batch, H, P, N): h_0 on entry, h_L on exit; null means h_0 = 0, h_L not kept
   * @param saved {@link #savedSize} floats, the chunk-boundary states for {@link #ssdBackward}
   *     (overwritten); null when no backward follows
   * @param x (batch·L rows, H·P) at x[xOff + row·xStride + h·P + p]
   * @param dt (batch·L rows, H) Δ after softplus, at dt[dtOff + row·dtStride + h]
   * @param A (H) the per-head decay rate, negative
   * @param B (batch·L rows, G·N) at B[bOff + row·bStride + g·N + n]
   * @param C (batch·L rows, G·N) at C[cOff + row·cStride + g·N + n]
   * @param Dskip (H) the skip connection
   * @param Q chunk length, any Q ≥ 1 (L need not be a multiple); the result depends on Q only
   *     through rounding, the speed does (see SsdBench)
   */
  public static void ssdForward(
      float[] y,
      int yOff,
      int yStride,
      float[] state,
      float[] saved,
      float[] x,
      int xOff,
      int xStride,
      float[] dt,
      int dtOff,
      int dtStride,
      float[] A,
      float[] B,
      int bOff,
      int bStride,
      float[] C,
      int cOff,
      int cStride,
      float[] Dskip,
      int batch,
      int L,
      int H,
      int P,
      int G,
      int N,
      int Q) {
    checkShapes(batch, L, H, P, G, N);
    int size = savedSize(batch, L, H, P, N, Q);
    if (saved != null && saved.length < size) {
      throw new IllegalArgumentException(
          "ssd: saved buffer holds " + saved.length + " floats, needs " + size);
    }
    if (L == 0 || batch == 0) {
      return;
    }
    int nc = chunkCount(L, Q), hpg = H / G, PN = P * N;
    float[] S = saved != null ? saved : new float[size]; // (batch, nc+1, H, P, N)
    for (int b = 0; b < batch; b++) { // slot 0: h_0
      int s0 = b * (nc + 1) * H * PN;
      if (state == null) {
        Arrays.fill(S, s0, s0 + H * PN, 0f);
      } else {
        System.arraycopy(state, b * H * PN, S, s0, H * PN);
      }
    }
    float[] decay = new float[batch * nc * H]; // (batch, nc, H) exp(Σ_chunk Δ A)
    // 1. per (b, g, chunk): C Bᵀ once for the group's heads; per head (in HEAD_BLOCKS blocks, in
    // parallel) the diagonal block Y_diag = (L ∘ C Bᵀ)·diag(Δ)·X into y, and the chunk's state
    // from zero into slot c+1
    int ld = Math.min(Q, L), blocks = Math.min(hpg, HEAD_BLOCKS);
    Parallel.forRange(
        batch * G * nc,
        1,
        (from, to) -> {
          float[] CB = new float[ld * ld];
          Scratch[] ws = new Scratch[blocks]; // one per block, reused by this range's jobs
          for (int job = from; job < to; job++) {
            int c = job % nc, g = (job / nc) % G, b = job / (nc * G);
            int t0 = c * Q, q = Math.min(Q, L - t0), row0 = b * L + t0;
            crossProducts(CB, ld, B, bOff, bStride, C, cOff, cStride, row0, g * N, q, N);
            Parallel.forEachBlock(
                blocks,
                blk -> {
                  if (ws[blk] == null) {
                    ws[blk] = new Scratch(ld, P, N, false);
                  }
                  Scratch w = ws[blk];
                  for (int h = g * hpg + blk * hpg / blocks;
                      h < g * hpg + (blk + 1) * hpg / blocks;
                      h++) {
                    w.decays(dt, dtOff, dtStride, row0, h, A[h], q);
                    w.maskedScores(CB, q);
                    int xo = xOff + row0 * xStride + h * P;
                    triangular(
                        true,
                        y,
                        yOff + row0 * yStride + h * P,
                        yStride,
                        w.M,
                        0,
                        ld,
                        1,
                        x,
                        xo,
                        xStride,
                        1,
                        false,
                        q,
                        P);
                    // local state[p, n] = Σ_j x_j[p] · (L[q-1, j]·Δ_j) · B_j[n], with x's chunk
                    // transposed first (read in place, its columns are a row stride apart)
                    for (int j = 0; j < q; j++) {
                      int bo = bOff + (row0 + j) * bStride + g * N;
                      scale(w.qN, j * N, w.lrow[j] * w.dtv[j], B, bo, N);
                    }
                    transpose(w.tr, ld, x, xo, xStride, q, P);
                    MatmulGemm.gemm(
                        Simd.ENABLED,
                        S,
                        slot(b, c + 1, h, nc, H, PN),
                        N,
                        w.tr,
                        0,
                        ld,
                        1,
                        w.qN,
                        0,
                        N,
                        1,
                        null,
                        false,
                        P,
                        q,
                        N);
                    decay[(b * nc + c) * H + h] = w.dAc[q - 1];
                  }
                });
          }
        });
    // 2. the states across chunks: slot c+1 = decay_c · slot c + local state of chunk c
    Parallel.forRange(
        batch * H,
        1,
        (from, to) -> {
          for (int bh = from; bh < to; bh++) {
            int b = bh / H, h = bh % H;
            for (int c = 0; c < nc; c++) {
              float d = decay[(b * nc + c) * H + h];
              int prev = slot(b, c, h, nc, H, PN), next = slot(b, c + 1, h, nc, H, PN);
              axpy(S, next, d, S, prev, PN);
            }
            if (state != null) {
              System.arraycopy(S, slot(b, nc, h, nc, H, PN), state, (b * H + h) * PN, PN);
            }
          }
        });
    // 3. per (b, h, chunk): the state's contribution y_i += exp(Σ_{k≤i} Δ_k A) · state·C_i, and the
    // skip
    Parallel.forRange(
        batch * H * nc,
        1,
        (from, to) -> {
          Scratch w = new Scratch(ld, P, N, false);
          for (int job = from; job < to; job++) {
            int c = job % nc, h = (job / nc) % H, b = job / (nc * H), g = h / hpg;
            int t0 = c * Q, q = Math.min(Q, L - t0), row0 = b * L + t0;
            int yo = yOff + row0 * yStride + h * P;
            if (c > 0 || state != null) {
              w.decays(dt, dtOff, dtStride, row0, h, A[h], q);
              w.scaledRows(C, cOff, cStride, row0, g * N, q, N);
              MatmulGemm.gemm(
                  Simd.ENABLED,
                  y,
                  yo,
                  yStride,
                  w.qN,
                  0,
                  N,
                  1,
                  S,
                  slot(b, c, h, nc, H, PN),
                  1,
                  N,
                  null,
                  true,
                  q,
                  N,
                  P);
            }
            for (int i = 0; i < q; i++) {
              axpy(y, yo + i * yStride, Dskip[h], x, xOff + (row0 + i) * xStride + h * P, P);
            }
          }
        });
  }

  /**
   * Accumulates (+=) every gradient of {@link #ssdForward} given dy, recomputing each chunk from
   * the states the forward saved. All outputs are sums the caller may have started: dx, ddt, dB, dC
   * in the conv-output and in_proj-output gradients, dA and dDskip over layers' steps, dh0 over
   * pieces. dB and dC sum over the heads of their group. The gradient reaching h_L (streaming
   * training) is taken as zero.
   *
   * @param dx at dx[dxOff + row·dxStride + h·P + p], +=
   * @param ddt at ddt[ddtOff + row·ddtStride + h], += (gradient of Δ after softplus)
   * @param dA (H) +=
   * @param dB at dB[dbOff + row·dbStride + g·N + n], +=
   * @param dC at dC[dcOff + row·dcStride + g·N + n], +=
   * @param dDskip (H) +=
   * @param dh0 (batch, H, P, N) +=, the gradient of the initial state; null if not wanted
   * @param dy at dy[dyOff + row·dyStride + h·P + p], the gradient of y
   * @param saved filled by {@link #ssdForward} with the same sizes and Q
   */
  public static void ssdBackward(
      float[] dx,
      int dxOff,
      int dxStride,
      float[] ddt,
      int ddtOff,
      int ddtStride,
      float[] dA,
      float[] dB,
      int dbOff,
      int dbStride,
      float[] dC,
      int dcOff,
      int dcStride,
      float[] dDskip,
      float[] dh0,
      float[] dy,
      int dyOff,
      int dyStride,
      float[] saved,
      float[] x,
      int xOff,
      int xStride,
      float[] dt,
      int dtOff,
      int dtStride,
      float[] A,
      float[] B,
      int bOff,
      int bStride,
      float[] C,
      int cOff,
      int cStride,
      float[] Dskip,
      int batch,
      int L,
      int H,
      int P,
      int G,
      int N,
      int Q) {
    checkShapes(batch, L, H, P, G, N);
    int size = savedSize(batch, L, H, P, N, Q);
    if (saved == null || saved.length < size) {
      throw new IllegalArgumentException(
          "ssd backward: saved buffer must hold the forward's "
              + size
              + " floats, got "
              + (saved == null ? "null" : saved.length + ""));
    }
    if (L == 0 || batch == 0) {
      return;
    }
    int nc = chunkCount(L, Q), hpg = H / G, PN = P * N;
    int ld = Math.min(Q, L), blocks = Math.min(hpg, HEAD_BLOCKS);
    // dS (batch, nc+1, H, P, N): slot c = gradient of the state before chunk c; slot nc stays 0
    float[] dS = new float[size];
    float[] decay = new float[batch * nc * H];
    // 1. per (b, h, chunk): what y reads of the state before the chunk, Σ_i exp(Σ_{k≤i} Δ_k A) ·
    // dy_i ⊗ C_i
    Parallel.forRange(
        batch * H * nc,
        1,
        (from, to) -> {
          Scratch w = new Scratch(ld, P, N, false);
          for (int job = from; job < to; job++) {
            int c = job % nc, h = (job / nc) % H, b = job / (nc * H), g = h / hpg;
            int t0 = c * Q, q = Math.min(Q, L - t0), row0 = b * L + t0;
            w.decays(dt, dtOff, dtStride, row0, h, A[h], q);
            decay[(b * nc + c) * H + h] = w.dAc[q - 1];
            w.scaledRows(C, cOff, cStride, row0, g * N, q, N);
            transpose(w.tr, ld, dy, dyOff + row0 * dyStride + h * P, dyStride, q, P);
            MatmulGemm.gemm(
                Simd.ENABLED,
                dS,
                slot(b, c, h, nc, H, PN),
                N,
                w.tr,
                0,
                ld,
                1,
                w.qN,
                0,
                N,
                1,
                null,
                false,
                P,
                q,
                N);
          }
        });
    // 2. backwards across chunks: slot c += decay_c · slot c+1
    Parallel.forRange(
        batch * H,
        1,
        (from, to) -> {
          for (int bh = from; bh < to; bh++) {
            int b = bh / H, h = bh % H;
            for (int c = nc - 1; c >= 0; c--) {
              float d = decay[(b * nc + c) * H + h];
              int cur = slot(b, c, h, nc, H, PN), next = slot(b, c + 1, h, nc, H, PN);
              for (int i = 0; i < PN; i++) {
                dS[cur + i] += d * dS[next + i];
              }
            }
            if (dh0 != null) {
              int s0 = slot(b, 0, h, nc, H, PN), o = (b * H + h) * PN;
              for (int i = 0; i < PN; i++) {
                dh0[o + i] += dS[s0 + i];
              }
            }
          }
        });
    // 3. per (b, g, chunk), the group's heads in HEAD_BLOCKS blocks in parallel: everything else.
    // What the heads of a group share (dCB, and the state terms of dB and dC) each block sums
    // apart; the blocks' sums are added in block order, as are the sums over chunks and batch rows
    // (dA, dDskip) kept per job, so the result does not depend on the thread count.
    int jobs = batch * G * nc;
    double[] dAparts = new double[jobs * hpg], dDparts = new double[jobs * hpg];
    Parallel.forRange(
        jobs,
        1,
        (from, to) -> {
          float[] CB = new float[ld * ld], dCB = new float[ld * ld], dCBt = new float[ld * ld];
          Scratch[] ws = new Scratch[blocks];
          for (int job = from; job < to; job++) {
            int c = job % nc, g = (job / nc) % G, b = job / (nc * G);
            int t0 = c * Q, q = Math.min(Q, L - t0), row0 = b * L + t0;
            crossProducts(CB, ld, B, bOff, bStride, C, cOff, cStride, row0, g * N, q, N);
            int part = job * hpg; // this job's dA and dDskip partials
            Parallel.forEachBlock(
                blocks,
                blk -> {
                  if (ws[blk] == null) {
                    ws[blk] = new Scratch(ld, P, N, true);
                  }
                  Scratch w = ws[blk];
                  Arrays.fill(w.dCB, 0f);
                  Arrays.fill(w.dBstate, 0f);
                  Arrays.fill(w.dCstate, 0f);
                  for (int hl = blk * hpg / blocks; hl < (blk + 1) * hpg / blocks; hl++) {
                    int h = g * hpg + hl;
                    int xo = xOff + row0 * xStride + h * P, dyo = dyOff + row0 * dyStride + h * P;
                    int dxo = dxOff + row0 * dxStride + h * P;
                    int bo = bOff + row0 * bStride + g * N, co = cOff + row0 * cStride + g * N;
                    w.decays(dt, dtOff, dtStride, row0, h, A[h], q);
                    // dYX[i, j] = dy_i · x_j
                    lowerBlocks(w.YX, ld, dy, dyo, dyStride, 1, x, xo, 1, xStride, q, P);
                    w.diagonalBlockGradients(CB, q);
                    // dx_j += Σ_{i≥j} M[i, j] dy_i
                    triangular(
                        false, dx, dxo, dxStride, w.M, 0, 1, ld, dy, dyo, dyStride, 1, true, q, P);
                    // the state before the chunk, read by y: dC_i += dAc_i · (dY S)_i
                    int s = slot(b, c, h, nc, H, PN);
                    MatmulGemm.gemm(
                        Simd.ENABLED,
                        w.qN,
                        0,
                        N,
                        dy,
                        dyo,
                        dyStride,
                        1,
                        saved,
                        s,
                        N,
                        1,
                        null,
                        false,
                        q,
                        P,
                        N);
                    for (int i = 0; i < q; i++) {
                      float a = w.dAc[i];
                      axpy(w.dCstate, i * N, a, w.qN, i * N, N);
                      w.ds[i] += a * dot(w.qN, i * N, C, co + i * cStride, N);
                    }
                    if (c < nc - 1) { // the state after the chunk, with its gradient slot c+1
                      stateUpdateGradients(
                          w,
                          saved,
                          s,
                          dS,
                          slot(b, c + 1, h, nc, H, PN),
                          dx,
                          dxo,
                          dxStride,
                          x,
                          xo,
                          xStride,
                          B,
                          bo,
                          bStride,
                          q,
                          P,
                          N);
                    }
                    // the skip
                    double dD = 0;
                    for (int i = 0; i < q; i++) {
                      int o = dyo + i * dyStride;
                      dD += dot(dy, o, x, xo + i * xStride, P);
                      axpy(dx, dxo + i * dxStride, Dskip[h], dy, o, P);
                    }
                    // from the cumulative log-decays s_i = Σ_{k≤i} Δ_k A to Δ_k: da_k = Σ_{i≥k}
                    // ds_i
                    double da = 0, dAh = 0;
                    for (int k = q - 1; k >= 0; k--) {
                      da += w.ds[k];
                      ddt[ddtOff + (row0 + k) * ddtStride + h] +=
                          (float) (A[h] * da + w.ddtDirect[k]);
                      dAh += w.dtv[k] * da;
                    }
                    dAparts[part + hl] = dAh;
                    dDparts[part + hl] = dD;
                  }
                });
            // the group's sums, in block order
            Arrays.fill(dCB, 0f);
            int dbo = dbOff + row0 * dbStride + g * N, dco = dcOff + row0 * dcStride + g * N;
            for (int blk = 0; blk < blocks; blk++) {
              Scratch w = ws[blk];
              for (int i = 0; i < q; i++) {
                for (int j = 0; j <= i; j++) {
                  dCB[i * ld + j] += w.dCB[i * ld + j];
                }
                axpy(dB, dbo + i * dbStride, 1f, w.dBstate, i * N, N);
                axpy(dC, dco + i * dcStride, 1f, w.dCstate, i * N, N);
              }
            }
            // the group's C Bᵀ: dC += dCB · B, dB += dCBᵀ · C
            triangular(
                true,
                dC,
                dco,
                dcStride,
                dCB,
                0,
                ld,
                1,
                B,
                bOff + row0 * bStride + g * N,
                bStride,
                1,
                true,
                q,
                N);
            transpose(dCBt, ld, dCB, 0, ld, q, q);
            triangular(
                false,
                dB,
                dbo,
                dbStride,
                dCBt,
                0,
                ld,
                1,
                C,
                cOff + row0 * cStride + g * N,
                cStride,
                1,
                true,
                q,
                N);
          }
        });
    for (int job = 0; job < jobs; job++) {
      int g = (job / nc) % G;
      for (int hl = 0; hl < hpg; hl++) {
        dA[g * hpg + hl] += (float) dAparts[job * hpg + hl];
        dDskip[g * hpg + hl] += (float) dDparts[job * hpg + hl];
      }
    }
  }

  /**
   * The gradients through state' = dAc_{q-1}·S + Σ_j w_j x_j ⊗ B_j (w_j = L[q-1, j]·Δ_j), given dS'
   * at dS[ds1]: into dx, dB, the direct Δ gradient and the log-decay gradients of the scratch.
   */
  private static void stateUpdateGradients(
      Scratch w,
      float[] saved,
      int s,
      float[] dS,
      int ds1,
      float[] dx,
      int dxo,
      int dxStride,
      float[] x,
      int xo,
      int xStride,
      float[] B,
      int bo,
      int bStride,
      int q,
      int P,
      int N) {
    // W[j, p] = Σ_n dS'[p, n] B_j[n]
    MatmulGemm.gemm(
        Simd.ENABLED, w.qP, 0, P, B, bo, bStride, 1, dS, ds1, 1, N, null, false, q, N, P);
    double total = 0;
    for (int j = 0; j < q; j++) {
      float wj = w.lrow[j] * w.dtv[j];
      double v = dot(x, xo + j * xStride, w.qP, j * P, P);
      axpy(dx, dxo + j * dxStride, wj, w.qP, j * P, P);
      double u = wj * v;
      w.ds[j] -= u;
      total += u;
      w.ddtDirect[j] += w.lrow[j] * v;
    }
    double keep = dot(dS, ds1, saved, s, P * N); // <dS', S>
    w.ds[q - 1] += total + w.dAc[q - 1] * keep;
    // dB_j[n] += w_j Σ_p x_j[p] dS'[p, n]
    MatmulGemm.gemm(
        Simd.ENABLED, w.qN, 0, N, x, xo, xStride, 1, dS, ds1, N, 1, null, false, q, P, N);
    for (int j = 0; j < q; j++) {
      axpy(w.dBstate, j * N, w.lrow[j] * w.dtv[j], w.qN, j * N, N);
    }
  }

  /**
   * CB[i, j] = C_i · B_j (row stride ld) for j ≤ i, over the q rows from row0 and the group's
   * columns from col.
   */
  private static void crossProducts(
      float[] CB,
      int ld,
      float[] B,
      int bOff,
      int bStride,
      float[] C,
      int cOff,
      int cStride,
      int row0,
      int col,
      int q,
      int N) {
    lowerBlocks(
        CB,
        ld,
        C,
        cOff + row0 * cStride + col,
        cStride,
        1,
        B,
        bOff + row0 * bStride + col,
        1,
        bStride,
        q,
        N);
  }

  /**
   * The entries on and below the diagonal of out = A·B (q × q, row stride ld, overwritten), A being
   * q × K and B K × q as {@link MatmulGemm#gemm} reads them: TB rows at a time, each up to the end
   * of its block (the few entries above the diagonal there are computed too, and never read).
   */
  private static void lowerBlocks(
      float[] out,
      int ld,
      float[] a,
      int aOff,
      int aRs,
      int aCs,
      float[] b,
      int bOff,
      int bKs,
      int bJs,
      int q,
      int K) {
    for (int i0 = 0; i0 < q; i0 += TB) {
      int i1 = Math.min(q, i0 + TB);
      MatmulGemm.gemm(
          Simd.ENABLED,
          out,
          i0 * ld,
          ld,
          a,
          aOff + i0 * aRs,
          aRs,
          aCs,
          b,
          bOff,
          bKs,
          bJs,
          null,
          false,
          i1 - i0,
          K,
          i1);
    }
  }

  /**
   * out (+)= A·B for a q × q A that is zero above its diagonal (lower) or below it (upper), with B
   * q × n: TB rows of out at a time, over the k's where that block of A can be non-zero (about half
   * the multiply-adds of the full product).
   */
  private static void triangular(
      boolean lower,
      float[] out,
      int outOff,
      int outRs,
      float[] a,
      int aOff,
      int aRs,
      int aCs,
      float[] b,
      int bOff,
      int bKs,
      int bJs,
      boolean accumulate,
      int q,
      int n) {
    for (int i0 = 0; i0 < q; i0 += TB) {
      int i1 = Math.min(q, i0 + TB), k0 = lower ? 0 : i0, k1 = lower ? i1 : q;
      MatmulGemm.gemm(
          Simd.ENABLED,
          out,
          outOff + i0 * outRs,
          outRs,
          a,
          aOff + i0 * aRs + k0 * aCs,
          aRs,
          aCs,
          b,
          bOff + k0 * bKs,
          bKs,
          bJs,
          null,
          accumulate,
          i1 - i0,
          k1 - k0,
          n);
    }
  }

  /** v, or 0 where v < {@link #TINY}. */
  static float flush(float v) {
    return v < TINY ? 0f : v;
  }

  /** dst[d + i] = a · src[s + i] for i < n. */
  static void scale(float[] dst, int d, float a, float[] src, int s, int n) {
    if (Simd.ENABLED) {
      SsdSimd.scale(dst, d, a, src, s, n);
    } else {
      for (int i = 0; i < n; i++) {
        dst[d + i] = a * src[s + i];
      }
    }
  }

  /** dst[d + i] += a · src[s + i] for i < n. */
  static void axpy(float[] dst, int d, float a, float[] src, int s, int n) {
    if (Simd.ENABLED) {
      SsdSimd.axpy(dst, d, a, src, s, n);
    } else {
      for (int i = 0; i < n; i++) {
        dst[d + i] += a * src[s + i];
      }
    }
  }

  /** Σ_i u[uo + i] · v[vo + i] for i < n. */
  static float dot(float[] u, int uo, float[] v, int vo, int n) {
    if (Simd.ENABLED) {
      return SsdSimd.dot(u, uo, v, vo, n);
    }
    float sum = 0f;
    for (int i = 0; i < n; i++) {
      sum += u[uo + i] * v[vo + i];
    }
    return sum;
  }

  /** dst[c·ld + r] = src[off + r·rs + c] for r < rows, c < cols. */
  private static void transpose(
      float[] dst, int ld, float[] src, int off, int rs, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
      int o = off + r * rs;
      for (int c = 0; c < cols; c++) {
        dst[c * ld + r] = src[o + c];
      }
    }
  }

  /** Offset of the (P, N) state of (b, h) in slot k of a (batch, nc+1, H, P, N) buffer. */
  private static int slot(int b, int k, int h, int nc, int H, int PN) {
    return ((b * (nc + 1) + k) * H + h) * PN;
  }

  /** Per-thread work arrays of one chunk (q ≤ Q rows). */
  private static final class Scratch {
    final int ld; //      row stride of the (Q, Q) arrays: the longest chunk
    final float[] M; //      (Q, Q) L[i, j]·CB[i, j]·Δ_j, zero above the diagonal
    final float[] dtv; //    (Q) Δ of the head
    final float[] ev; //     (Q) exp(Δ_i A): the step's decay
    final float[] dAc; //    (Q) exp(Σ_{k≤i} Δ_k A): decay from the chunk's start
    final float[] lrow; //   (Q) the last row of L built so far: L[q-1, :] after maskedScores
    final float[] qN; //     (Q, N)
    final float[] qP; //     (Q, P)
    final float[] tr; //     (P, Q) a chunk of x or dy transposed
    final float[] YX; //     (Q, Q) backward: dy_i · x_j
    final float[] dCB; //    (Q, Q) backward: gradient of CB, summed over the block's heads
    final float[] dBstate; // (Q, N) backward: the block's dB through the state after the chunk
    final float[] dCstate; // (Q, N) backward: the block's dC through the state before the chunk
    final double[] ds; //    (Q) backward: gradient of s_i = Σ_{k≤i} Δ_k A
    final double[] ddtDirect; // (Q) backward: gradient of Δ_j where it scales the input

    Scratch(int Q, int P, int N, boolean backward) {
      ld = Q;
      M = new float[Q * Q];
      dtv = new float[Q];
      ev = new float[Q];
      dAc = new float[Q];
      lrow = new float[Q];
      qN = new float[Q * N];
      qP = new float[backward ? Q * P : 0];
      tr = new float[P * Q];
      YX = new float[backward ? Q * Q : 0];
      dCB = new float[backward ? Q * Q : 0];
      dBstate = new float[backward ? Q * N : 0];
      dCstate = new float[backward ? Q * N : 0];
      ds = new double[backward ? Q : 0];
      ddtDirect = new double[backward ? Q : 0];
    }

    /** dtv = Δ of head h over the chunk; ev[i] = exp(Δ_i A); dAc[i] = Π_{k≤i} ev[k]. */
    void decays(float[] dt, int dtOff, int dtStride, int row0, int h, float a, int q) {
      float acc = 1f;
      for (int i = 0; i < q; i++) {
        float d = dt[dtOff + (row0 + i) * dtStride + h];
        dtv[i] = d;
        ev[i] = (float) Math.exp(d * a);
        acc = flush(acc * ev[i]);
        dAc[i] = acc;
      }
    }

    /**
     * M = L ∘ CB · diag(Δ) (CB of {@link #crossProducts}), building L row by row; leaves lrow =
     * L[q-1, :].
     */
    void maskedScores(float[] CB, int q) {
      for (int i = 0; i < q; i++) {
        float e = ev[i];
        int o = i * ld;
        maskedRow(M, CB, o, lrow, dtv, e, i);
        lrow[i] = 1f;
        M[o + i] = CB[o + i] * dtv[i];
        Arrays.fill(M, o + i + 1, o + q, 0f);
      }
    }

    /** qN[i, n] = dAc[i] · V[row0 + i, col + n]. */
    void scaledRows(float[] V, int off, int stride, int row0, int col, int q, int N) {
      for (int i = 0; i < q; i++) {
        scale(qN, i * N, dAc[i], V, off + (row0 + i) * stride + col, N);
      }
    }

    /**
     * From dYX: M (for dx), lrow, dCB += L ∘ dYX · diag(Δ), the direct Δ gradient Σ_i L ∘ CB ∘ dYX,
     * and ds from the diagonal block (each score T[i, j] = M[i, j]·dYX[i, j] adds to ds_i and
     * subtracts from ds_j; the diagonal's cancel).
     */
    void diagonalBlockGradients(float[] CB, int q) {
      Arrays.fill(ds, 0, q, 0);
      Arrays.fill(ddtDirect, 0, q, 0);
      for (int i = 0; i < q; i++) {
        int o = i * ld;
        double row = gradientRow(M, CB, YX, dCB, o, lrow, dtv, ddtDirect, ds, ev[i], i);
        lrow[i] = 1f;
        float cb = CB[o + i], g = YX[o + i];
        M[o + i] = cb * dtv[i];
        dCB[o + i] += dtv[i] * g;
        ddtDirect[i] += (double) cb * g;
        ds[i] += row;
        Arrays.fill(M, o + i + 1, o + q, 0f);
      }
    }
  }

  /**
   * Row i of the forward's masked scores, j < i: lrow[j] ·= e, M[o + j] = lrow[j]·CB[o + j]·Δ_j.
   */
  static void maskedRow(float[] M, float[] CB, int o, float[] lrow, float[] dtv, float e, int i) {
    int j0 = 0;
    if (Simd.ENABLED) {
      j0 = SsdSimd.wholeVectors(i);
      SsdSimd.maskedRow(M, CB, o, lrow, dtv, e, j0);
    }
    for (int j = j0; j < i; j++) {
      lrow[j] = flush(lrow[j] * e);
      M[o + j] = lrow[j] * CB[o + j] * dtv[j];
    }
  }

  /**
   * Row i of the backward's diagonal block, j < i: {@link #maskedRow}, then with g = dYX[o + j]:
   * dCB[o + j] += L·Δ_j·g, ddtDirect[j] += L·CB·g, ds[j] −= M·g; returns Σ_j M·g. The sums over
   * rows (ds, ddtDirect) are kept in double: dA is their sum over every position, where the terms
   * nearly cancel.
   */
  static double gradientRow(
      float[] M,
      float[] CB,
      float[] YX,
      float[] dCB,
      int o,
      float[] lrow,
      float[] dtv,
      double[] ddtDirect,
      double[] ds,
      float e,
      int i) {
    int j0 = 0;
    double row = 0;
    if (Simd.ENABLED) {
      j0 = SsdSimd.wholeVectors(i);
      row = SsdSimd.gradientRow(M, CB, YX, dCB, o, lrow, dtv, ddtDirect, ds, e, j0);
    }
    for (int j = j0; j < i; j++) {
      float l = flush(lrow[j] * e), lcb = l * CB[o + j], g = YX[o + j], m = lcb * dtv[j];
      lrow[j] = l;
      M[o + j] = m;
      dCB[o + j] += l * dtv[j] * g;
      ddtDirect[j] += (double) lcb * g;
      double t = (double) m * g;
      row += t;
      ds[j] -= t;
    }
    return row;
  }

  /**
   * The definition: the recurrence one (b, h) at a time, sequential in t, in float. Same arguments
   * as {@link #ssdForward} without saved and Q.
   */
  public static void ssdScanReference(
      float[] y,
      int yOff,
      int yStride,
      float[] state,
      float[] x,
      int xOff,
      int xStride,
      float[] dt,
      int dtOff,
      int dtStride,
      float[] A,
      float[] B,
      int bOff,
      int bStride,
      float[] C,
      int cOff,
      int cStride,
      float[] Dskip,
      int batch,
      int L,
      int H,
      int P,
      int G,
      int N) {
    checkShapes(batch, L, H, P, G, N);
    int hpg = H / G, PN = P * N;
    float[] s = new float[PN];
    for (int b = 0; b < batch; b++) {
      for (int h = 0; h < H; h++) {
        int g = h / hpg;
        if (state == null) {
          Arrays.fill(s, 0f);
        } else {
          System.arraycopy(state, (b * H + h) * PN, s, 0, PN);
        }
        for (int t = 0; t < L; t++) {
          int row = b * L + t;
          float d = dt[dtOff + row * dtStride + h];
          float a = (float) Math.exp(d * A[h]);
          int xo = xOff + row * xStride + h * P, yo = yOff + row * yStride + h * P;
          int bo = bOff + row * bStride + g * N, co = cOff + row * cStride + g * N;
          stepHead(y, yo, s, 0, x, xo, d, a, B, bo, C, co, Dskip[h], P, N);
        }
        if (state != null) {
          System.arraycopy(s, 0, state, (b * H + h) * PN, PN);
        }
      }
    }
  }

  /**
   * One position of the recurrence for decoding, O(1) in the length: the reference with L = 1,
   * threaded over (b, h). Rows are batch rows (row = b).
   *
   * @param state (batch, H, P, N) updated in place
   */
  public static void ssdStep(
      float[] y,
      int yOff,
      int yStride,
      float[] state,
      float[] x,
      int xOff,
      int xStride,
      float[] dt,
      int dtOff,
      int dtStride,
      float[] A,
      float[] B,
      int bOff,
      int bStride,
      float[] C,
      int cOff,
      int cStride,
      float[] Dskip,
      int batch,
      int H,
      int P,
      int G,
      int N) {
    checkShapes(batch, 1, H, P, G, N);
    if (state == null) {
      throw new IllegalArgumentException("ssd step: the state (batch, H, P, N) is required");
    }
    int hpg = H / G, PN = P * N;
    Parallel.forRange(
        batch * H,
        Math.max(1, 8192 / PN),
        (from, to) -> {
          for (int bh = from; bh < to; bh++) {
            int b = bh / H, h = bh % H, g = h / hpg;
            float d = dt[dtOff + b * dtStride + h];
            float a = (float) Math.exp(d * A[h]);
            int xo = xOff + b * xStride + h * P, yo = yOff + b * yStride + h * P;
            int bo = bOff + b * bStride + g * N, co = cOff + b * cStride + g * N;
            if (Simd.ENABLED) {
              SsdSimd.stepHead(y, yo, state, bh * PN, x, xo, d, a, B, bo, C, co, Dskip[h], P, N);
            } else {
              stepHead(y, yo, state, bh * PN, x, xo, d, a, B, bo, C, co, Dskip[h], P, N);
            }
          }
        });
  }

  /** One (b, h) at one position, the recurrence itself: the state at s, (P, N). */
  static void stepHead(
      float[] y,
      int yo,
      float[] state,
      int s,
      float[] x,
      int xo,
      float d,
      float a,
      float[] B,
      int bo,
      float[] C,
      int co,
      float dskip,
      int P,
      int N) {
    for (int p = 0; p < P; p++) {
      float dxp = d * x[xo + p];
      float acc = 0f;
      int o = s + p * N;
      for (int n = 0; n < N; n++) {
        float v = a * state[o + n] + dxp * B[bo + n];
        state[o + n] = v;
        acc += v * C[co + n];
      }
      y[yo + p] = acc + dskip * x[xo + p];
    }
  }

  /**
   * The definition of {@link #ssdBackward}: the reverse-time adjoint of the recurrence, one (b, h)
   * at a time, in double, with every state of the sequence kept (O(L·P·N) memory: for tests). Same
   * gradients (+=) as {@link #ssdBackward}; h0 is the initial state (null: zero) instead of saved.
   *
   * <pre>
   *   G_t = dL/dh_t = a_{t+1}·G_{t+1} + dy_t ⊗ C_t          a_t = exp(Δ_t A)
   *   dC_t += h_tᵀ dy_t;  dx_t += Dskip·dy_t + Δ_t·G_t B_t;  dB_t += Δ_t·G_tᵀ x_t
   *   dΔ_t += A·a_t·⟨G_t, h_{t-1}⟩ + ⟨G_t, x_t ⊗ B_t⟩;  dA += Δ_t·a_t·⟨G_t, h_{t-1}⟩;  dh_0 += a_1·G_1
   * </pre>
   */
  public static void ssdBackwardReference(
      float[] dx,
      int dxOff,
      int dxStride,
      float[] ddt,
      int ddtOff,
      int ddtStride,
      float[] dA,
      float[] dB,
      int dbOff,
      int dbStride,
      float[] dC,
      int dcOff,
      int dcStride,
      float[] dDskip,
      float[] dh0,
      float[] dy,
      int dyOff,
      int dyStride,
      float[] h0,
      float[] x,
      int xOff,
      int xStride,
      float[] dt,
      int dtOff,
      int dtStride,
      float[] A,
      float[] B,
      int bOff,
      int bStride,
      float[] C,
      int cOff,
      int cStride,
      float[] Dskip,
      int batch,
      int L,
      int H,
      int P,
      int G,
      int N) {
    checkShapes(batch, L, H, P, G, N);
    int hpg = H / G, PN = P * N;
    double[] hs = new double[(L + 1) * PN]; // h_0 .. h_L
    double[] adj = new double[PN];
    for (int b = 0; b < batch; b++) {
      for (int h = 0; h < H; h++) {
        int g = h / hpg;
        for (int i = 0; i < PN; i++) {
          hs[i] = h0 == null ? 0 : h0[(b * H + h) * PN + i];
        }
        for (int t = 0; t < L; t++) {
          int row = b * L + t;
          double d = dt[dtOff + row * dtStride + h], a = Math.exp(d * A[h]);
          int xo = xOff + row * xStride + h * P, bo = bOff + row * bStride + g * N;
          for (int p = 0; p < P; p++) {
            for (int n = 0; n < N; n++) {
              hs[(t + 1) * PN + p * N + n] = a * hs[t * PN + p * N + n] + d * x[xo + p] * B[bo + n];
            }
          }
        }
        Arrays.fill(adj, 0);
        double dAh = 0, dDh = 0;
        for (int t = L - 1; t >= 0; t--) {
          int row = b * L + t;
          double d = dt[dtOff + row * dtStride + h], a = Math.exp(d * A[h]);
          int xo = xOff + row * xStride + h * P, dyo = dyOff + row * dyStride + h * P;
          int dxo = dxOff + row * dxStride + h * P;
          int bo = bOff + row * bStride + g * N, co = cOff + row * cStride + g * N;
          int dbo = dbOff + row * dbStride + g * N, dco = dcOff + row * dcStride + g * N;
          int cur = (t + 1) * PN, prev = t * PN;
          double keep = 0, input = 0;
          for (int p = 0; p < P; p++) {
            double gy = dy[dyo + p], xp = x[xo + p], gx = Dskip[h] * gy;
            dDh += gy * xp;
            for (int n = 0; n < N; n++) {
              dC[dco + n] += (float) (gy * hs[cur + p * N + n]);
              double gn = adj[p * N + n] + gy * C[co + n];
              adj[p * N + n] = gn;
              keep += gn * hs[prev + p * N + n];
              input += gn * xp * B[bo + n];
              gx += d * gn * B[bo + n];
              dB[dbo + n] += (float) (d * gn * xp);
            }
            dx[dxo + p] += (float) gx;
          }
          ddt[ddtOff + row * ddtStride + h] += (float) (A[h] * a * keep + input);
          dAh += d * a * keep;
          for (int i = 0; i < PN; i++) {
            adj[i] *= a;
          }
        }
        dA[h] += (float) dAh;
        dDskip[h] += (float) dDh;
        if (dh0 != null) {
          for (int i = 0; i < PN; i++) {
            dh0[(b * H + h) * PN + i] += (float) adj[i];
          }
        }
      }
    }
  }

  static void checkShapes(int batch, int L, int H, int P, int G, int N) {
    if (batch < 0 || L < 0 || H <= 0 || P <= 0 || G <= 0 || N <= 0) {
      throw new IllegalArgumentException(
          String.format(
              "ssd: bad sizes batch=%d L=%d heads=%d head_dim=%d groups=%d state=%d",
              batch, L, H, P, G, N));
    }
    if (H % G != 0) {
      throw new IllegalArgumentException(
          "ssd: n_heads " + H + " is not a multiple of n_groups " + G);
    }
  }

  private static void checkChunk(int Q) {
    if (Q < 1) {
      throw new IllegalArgumentException("ssd: chunk_size must be at least 1, got " + Q);
    }
  }
}
