package org.mambaspark.kernel;

/**
 * The matrix products of {@link MambaKernel}, and the array selectors every operation reads and
 * writes its operands through: C (+)= op(A)·op(B) (+ bias, softplus) as a tiled GEMM ({@link
 * #gemm2}, with split-K for long-K products and {@link #gemmSplitFin}) or, for M ≤ {@link
 * #GEMV_MAX_M} rows, a GEMV ({@link #gemv}). The CPU reference is {@code
 * org.mambaspark.ops.Matmul}: {@code matmulForward} is A·Wᵀ, its backward the products dout·W and
 * doutᵀ·inp; operands are (selector, offset, two strides), so one kernel covers all three and views
 * such as the z half of in_proj's output.
 *
 * <p>A layer of the kernel class chain (Aparapi compiles one Kernel class and its superclasses into
 * one program, so one instance keeps every buffer resident): fields and methods here are the
 * products' own; {@link MambaKernel} dispatches to them.
 */
public class ProductKernel extends SsdKernel {
  static final int SEL_ACT = 0;
  static final int SEL_GACT = 1;
  static final int SEL_W = 2;
  static final int SEL_G = 3;
  static final int SEL_SAVED = 4;
  static final int SEL_OUT = 5;
  static final int SEL_HID = 6;
  static final int SEL_PART = 7;

  static final int ACT_NONE = 0;
  static final int ACT_SOFTPLUS = 1;

  /** GEMM tile: 128×128 outputs, k-steps of 8, local rows padded to 132 floats. */
  static final int GBM = 128;

  static final int GBN = 128;
  static final int GBK = 8;
  static final int GLD = 132;
  static final int GEMM_THREADS = 256;

  /** Rows of the GEMV's partial sums at once (local memory: GEMV_ROWS × its 128 threads). */
  static final int GEMV_ROWS = 8;

  /** Products of at most this many rows run as GEMV (decoding a batch: M = B). */
  static final int GEMV_MAX_M = 64;

  /** Local floats the GEMM needs: A and B tiles, two of each for version 2. */
  static final int GEMM_LOCAL = 4 * GBK * GLD;

  /**
   * Host side: K-splits for a product of few tiles and a long K (the weight gradients), so that
   * every compute unit gets work; 1 for none. Bounded by the partial-sum room.
   */
  static int splitsFor(int M, int N, int K, long partFloats) {
    long tiles = (long) ((M + GBM - 1) / GBM) * ((N + GBN - 1) / GBN);
    if (M <= GEMV_MAX_M || tiles >= 256 || K < 1024) {
      return 1;
    }
    long s = Math.min(K / 512, (512 + tiles - 1) / tiles);
    s = Math.min(s, partFloats / ((long) M * N));
    return (int) Math.max(1, s);
  }

  /** Host side: K per split, a multiple of the k-step. */
  static int kPerSplit(int K, int splits) {
    return ((K + splits - 1) / splits + GBK - 1) / GBK * GBK;
  }

  int gBSlab = -1; //  GEMV: B is in this slab (decode steps read matrices where they live), or -1
  // ---- GEMM / GEMV: C[m, n] (+)= Σ_k A[m, k]·B[k, n] (+ bias[n]), then act
  int gM;
  int gN;
  int gK;
  int gASel;
  int gAOff;
  int gARs; //   A[m, k] at gAOff + m·gARs + k·gACs
  int gACs;
  int gBSel;
  int gBOff;
  int gBKs; //   B[k, n] at gBOff + k·gBKs + n·gBNs
  int gBNs;
  int gCSel;
  int gCOff;
  int gCRs; //   C[m, n] at gCOff + m·gCRs + n
  int gBiasOff; // W offset of bias (N), or -1
  int gAccum; //  1: C += ..., 0: C = ...
  int gAct; //    ACT_NONE or ACT_SOFTPLUS

  /**
   * Split-K: gSplit groups per tile each sum gKPer of the K range into part (gSplit, M, N) at
   * gPartOff; {@link MambaKernel#OP_GEMM_SPLIT_FIN} adds the splits and applies the epilogue. For
   * the weight gradients, whose K is B·L and whose few tiles would leave most compute units idle.
   */
  int gSplit = 1;

  int gKPer;
  int gPartOff;

  // ---- array selectors

  final float ld(int sel, int i) {
    float v = 0f;
    if (sel == SEL_ACT) {
      v = act[i];
    } else if (sel == SEL_GACT) {
      v = gact[i];
    } else if (sel == SEL_W) {
      v = W[i];
    } else if (sel == SEL_G) {
      v = G[i];
    } else if (sel == SEL_SAVED) {
      v = saved[i];
    } else if (sel == SEL_PART) {
      v = part[i];
    }
    return v;
  }

  final void st(int sel, int i, float v) {
    if (sel == SEL_ACT) {
      act[i] = v;
    } else if (sel == SEL_GACT) {
      gact[i] = v;
    } else if (sel == SEL_G) {
      G[i] = v;
    } else if (sel == SEL_SAVED) {
      saved[i] = v;
    } else if (sel == SEL_OUT) {
      out[i] = v;
    } else if (sel == SEL_HID) {
      hid[i] = v;
    } else if (sel == SEL_PART) {
      part[i] = v;
    }
  }

  final void addTo(int sel, int i, float v) {
    if (sel == SEL_ACT) {
      act[i] += v;
    } else if (sel == SEL_GACT) {
      gact[i] += v;
    } else if (sel == SEL_G) {
      G[i] += v;
    } else if (sel == SEL_OUT) {
      out[i] += v;
    } else if (sel == SEL_PART) {
      part[i] += v;
    }
  }

  // ---- matrix products

  /**
   * A work-group per 128×128 tile of C, double-buffered. While the threads multiply the tile in one
   * local buffer, their global loads of the next tile are in flight into registers, and go to the
   * other buffer afterwards: one barrier per k-step instead of two, and the global latency hidden
   * behind 512 FMAs a thread.
   */
  final void gemm2() {
    int lid = getLocalId();
    int g = getGroupId();
    int tilesM = (gM + GBM - 1) / GBM;
    int tiles = tilesM * ((gN + GBN - 1) / GBN);
    int split = g / tiles;
    int gt = g - split * tiles;
    int kBegin = 0;
    int kEnd = gK;
    if (gSplit > 1) {
      kBegin = split * gKPer;
      kEnd = min(gK, kBegin + gKPer);
    }
    int tnI = gt / tilesM;
    int m0 = (gt - tnI * tilesM) * GBM;
    int n0 = tnI * GBN;
    int tm = lid / 16;
    int tn = lid - tm * 16;
    float c00 = 0f;
    float c01 = 0f;
    float c02 = 0f;
    float c03 = 0f;
    float c04 = 0f;
    float c05 = 0f;
    float c06 = 0f;
    float c07 = 0f;
    float c10 = 0f;
    float c11 = 0f;
    float c12 = 0f;
    float c13 = 0f;
    float c14 = 0f;
    float c15 = 0f;
    float c16 = 0f;
    float c17 = 0f;
    float c20 = 0f;
    float c21 = 0f;
    float c22 = 0f;
    float c23 = 0f;
    float c24 = 0f;
    float c25 = 0f;
    float c26 = 0f;
    float c27 = 0f;
    float c30 = 0f;
    float c31 = 0f;
    float c32 = 0f;
    float c33 = 0f;
    float c34 = 0f;
    float c35 = 0f;
    float c36 = 0f;
    float c37 = 0f;
    float c40 = 0f;
    float c41 = 0f;
    float c42 = 0f;
    float c43 = 0f;
    float c44 = 0f;
    float c45 = 0f;
    float c46 = 0f;
    float c47 = 0f;
    float c50 = 0f;
    float c51 = 0f;
    float c52 = 0f;
    float c53 = 0f;
    float c54 = 0f;
    float c55 = 0f;
    float c56 = 0f;
    float c57 = 0f;
    float c60 = 0f;
    float c61 = 0f;
    float c62 = 0f;
    float c63 = 0f;
    float c64 = 0f;
    float c65 = 0f;
    float c66 = 0f;
    float c67 = 0f;
    float c70 = 0f;
    float c71 = 0f;
    float c72 = 0f;
    float c73 = 0f;
    float c74 = 0f;
    float c75 = 0f;
    float c76 = 0f;
    float c77 = 0f;
    int nk = (kEnd - kBegin + GBK - 1) / GBK;
    // this thread's tile elements r = 0..3 (gemmA/gemmB/gemmPutA/gemmPutB's index maps, unrolled):
    // A at row aM + r·aDm, column aK + r·aDk of the tile; B likewise
    boolean aw = gASel == SEL_ACT && gBSel == SEL_W;
    int aM = lid & 127;
    int aK = lid / 128;
    int aDm = 0;
    int aDk = 2;
    if (gACs == 1) {
      aM = lid / 8;
      aK = lid & 7;
      aDm = 32;
      aDk = 0;
    }
    int bN = lid & 127;
    int bK = lid / 128;
    int bDn = 0;
    int bDk = 2;
    if (gBKs == 1) {
      bN = lid / 8;
      bK = lid & 7;
      bDn = 32;
      bDk = 0;
    }
    for (int r = 0; r < 4; r++) {
      gemmPutA(0, lid + r * GEMM_THREADS, gemmA(lid + r * GEMM_THREADS, m0, kBegin, kEnd));
      gemmPutB(0, lid + r * GEMM_THREADS, gemmB(lid + r * GEMM_THREADS, n0, kBegin, kEnd));
    }
    localBarrier();
    for (int kt = 0; kt < nk; kt++) {
      int k1 = kBegin + (kt + 1) * GBK;
      float pa0 = 0f;
      float pa1 = 0f;
      float pa2 = 0f;
      float pa3 = 0f;
      float pb0 = 0f;
      float pb1 = 0f;
      float pb2 = 0f;
      float pb3 = 0f;
      if (kt + 1 < nk && aw) {
        // The next tile's loads are written out rather than called (gemmA/gemmB): inside the whole
        // program the compiler did not inline those helpers, and in_proj's product ran 6.3 ms with
        // them in the loop, 2.7 ms without (it runs 3.9 ms in a kernel of its own that calls them).
        // The forward's products (activations × weights) also skip the array selector.
        int m = m0 + aM;
        int k = k1 + aK;
        if (m < gM && k < kEnd) {
          pa0 = act[gAOff + m * gARs + k * gACs];
        }
        m += aDm;
        k += aDk;
        if (m < gM && k < kEnd) {
          pa1 = act[gAOff + m * gARs + k * gACs];
        }
        m += aDm;
        k += aDk;
        if (m < gM && k < kEnd) {
          pa2 = act[gAOff + m * gARs + k * gACs];
        }
        m += aDm;
        k += aDk;
        if (m < gM && k < kEnd) {
          pa3 = act[gAOff + m * gARs + k * gACs];
        }
        int n = n0 + bN;
        k = k1 + bK;
        if (n < gN && k < kEnd) {
          pb0 = W[gBOff + k * gBKs + n * gBNs];
        }
        n += bDn;
        k += bDk;
        if (n < gN && k < kEnd) {
          pb1 = W[gBOff + k * gBKs + n * gBNs];
        }
        n += bDn;
        k += bDk;
        if (n < gN && k < kEnd) {
          pb2 = W[gBOff + k * gBKs + n * gBNs];
        }
        n += bDn;
        k += bDk;
        if (n < gN && k < kEnd) {
          pb3 = W[gBOff + k * gBKs + n * gBNs];
        }
      } else if (kt + 1 < nk) {
        int m = m0 + aM;
        int k = k1 + aK;
        if (m < gM && k < kEnd) {
          pa0 = ld(gASel, gAOff + m * gARs + k * gACs);
        }
        m += aDm;
        k += aDk;
        if (m < gM && k < kEnd) {
          pa1 = ld(gASel, gAOff + m * gARs + k * gACs);
        }
        m += aDm;
        k += aDk;
        if (m < gM && k < kEnd) {
          pa2 = ld(gASel, gAOff + m * gARs + k * gACs);
        }
        m += aDm;
        k += aDk;
        if (m < gM && k < kEnd) {
          pa3 = ld(gASel, gAOff + m * gARs + k * gACs);
        }
        int n = n0 + bN;
        k = k1 + bK;
        if (n < gN && k < kEnd) {
          pb0 = ld(gBSel, gBOff + k * gBKs + n * gBNs);
        }
        n += bDn;
        k += bDk;
        if (n < gN && k < kEnd) {
          pb1 = ld(gBSel, gBOff + k * gBKs + n * gBNs);
        }
        n += bDn;
        k += bDk;
        if (n < gN && k < kEnd) {
          pb2 = ld(gBSel, gBOff + k * gBKs + n * gBNs);
        }
        n += bDn;
        k += bDk;
        if (n < gN && k < kEnd) {
          pb3 = ld(gBSel, gBOff + k * gBKs + n * gBNs);
        }
      }
      int base = (kt & 1) * 2 * GBK * GLD;
      for (int kk = 0; kk < GBK; kk++) {
        int ar = base + kk * GLD + tm;
        int br = base + GBK * GLD + kk * GLD + tn;
        float a0 = lmem[ar + 0];
        float a1 = lmem[ar + 16];
        float a2 = lmem[ar + 32];
        float a3 = lmem[ar + 48];
        float a4 = lmem[ar + 64];
        float a5 = lmem[ar + 80];
        float a6 = lmem[ar + 96];
        float a7 = lmem[ar + 112];
        float b0 = lmem[br + 0];
        float b1 = lmem[br + 16];
        float b2 = lmem[br + 32];
        float b3 = lmem[br + 48];
        float b4 = lmem[br + 64];
        float b5 = lmem[br + 80];
        float b6 = lmem[br + 96];
        float b7 = lmem[br + 112];
        c00 += a0 * b0;
        c01 += a0 * b1;
        c02 += a0 * b2;
        c03 += a0 * b3;
        c04 += a0 * b4;
        c05 += a0 * b5;
        c06 += a0 * b6;
        c07 += a0 * b7;
        c10 += a1 * b0;
        c11 += a1 * b1;
        c12 += a1 * b2;
        c13 += a1 * b3;
        c14 += a1 * b4;
        c15 += a1 * b5;
        c16 += a1 * b6;
        c17 += a1 * b7;
        c20 += a2 * b0;
        c21 += a2 * b1;
        c22 += a2 * b2;
        c23 += a2 * b3;
        c24 += a2 * b4;
        c25 += a2 * b5;
        c26 += a2 * b6;
        c27 += a2 * b7;
        c30 += a3 * b0;
        c31 += a3 * b1;
        c32 += a3 * b2;
        c33 += a3 * b3;
        c34 += a3 * b4;
        c35 += a3 * b5;
        c36 += a3 * b6;
        c37 += a3 * b7;
        c40 += a4 * b0;
        c41 += a4 * b1;
        c42 += a4 * b2;
        c43 += a4 * b3;
        c44 += a4 * b4;
        c45 += a4 * b5;
        c46 += a4 * b6;
        c47 += a4 * b7;
        c50 += a5 * b0;
        c51 += a5 * b1;
        c52 += a5 * b2;
        c53 += a5 * b3;
        c54 += a5 * b4;
        c55 += a5 * b5;
        c56 += a5 * b6;
        c57 += a5 * b7;
        c60 += a6 * b0;
        c61 += a6 * b1;
        c62 += a6 * b2;
        c63 += a6 * b3;
        c64 += a6 * b4;
        c65 += a6 * b5;
        c66 += a6 * b6;
        c67 += a6 * b7;
        c70 += a7 * b0;
        c71 += a7 * b1;
        c72 += a7 * b2;
        c73 += a7 * b3;
        c74 += a7 * b4;
        c75 += a7 * b5;
        c76 += a7 * b6;
        c77 += a7 * b7;
      }
      if (kt + 1 < nk) {
        int nb = ((kt + 1) & 1) * 2 * GBK * GLD;
        int pa = nb + aK * GLD + aM;
        int da = aDk * GLD + aDm;
        lmem[pa] = pa0;
        lmem[pa + da] = pa1;
        lmem[pa + 2 * da] = pa2;
        lmem[pa + 3 * da] = pa3;
        int pb = nb + GBK * GLD + bK * GLD + bN;
        int db = bDk * GLD + bDn;
        lmem[pb] = pb0;
        lmem[pb + db] = pb1;
        lmem[pb + 2 * db] = pb2;
        lmem[pb + 3 * db] = pb3;
      }
      localBarrier();
    }
    gemmStore(m0 + tm + 0, n0 + tn + 0, c00, split);
    gemmStore(m0 + tm + 0, n0 + tn + 16, c01, split);
    gemmStore(m0 + tm + 0, n0 + tn + 32, c02, split);
    gemmStore(m0 + tm + 0, n0 + tn + 48, c03, split);
    gemmStore(m0 + tm + 0, n0 + tn + 64, c04, split);
    gemmStore(m0 + tm + 0, n0 + tn + 80, c05, split);
    gemmStore(m0 + tm + 0, n0 + tn + 96, c06, split);
    gemmStore(m0 + tm + 0, n0 + tn + 112, c07, split);
    gemmStore(m0 + tm + 16, n0 + tn + 0, c10, split);
    gemmStore(m0 + tm + 16, n0 + tn + 16, c11, split);
    gemmStore(m0 + tm + 16, n0 + tn + 32, c12, split);
    gemmStore(m0 + tm + 16, n0 + tn + 48, c13, split);
    gemmStore(m0 + tm + 16, n0 + tn + 64, c14, split);
    gemmStore(m0 + tm + 16, n0 + tn + 80, c15, split);
    gemmStore(m0 + tm + 16, n0 + tn + 96, c16, split);
    gemmStore(m0 + tm + 16, n0 + tn + 112, c17, split);
    gemmStore(m0 + tm + 32, n0 + tn + 0, c20, split);
    gemmStore(m0 + tm + 32, n0 + tn + 16, c21, split);
    gemmStore(m0 + tm + 32, n0 + tn + 32, c22, split);
    gemmStore(m0 + tm + 32, n0 + tn + 48, c23, split);
    gemmStore(m0 + tm + 32, n0 + tn + 64, c24, split);
    gemmStore(m0 + tm + 32, n0 + tn + 80, c25, split);
    gemmStore(m0 + tm + 32, n0 + tn + 96, c26, split);
    gemmStore(m0 + tm + 32, n0 + tn + 112, c27, split);
    gemmStore(m0 + tm + 48, n0 + tn + 0, c30, split);
    gemmStore(m0 + tm + 48, n0 + tn + 16, c31, split);
    gemmStore(m0 + tm + 48, n0 + tn + 32, c32, split);
    gemmStore(m0 + tm + 48, n0 + tn + 48, c33, split);
    gemmStore(m0 + tm + 48, n0 + tn + 64, c34, split);
    gemmStore(m0 + tm + 48, n0 + tn + 80, c35, split);
    gemmStore(m0 + tm + 48, n0 + tn + 96, c36, split);
    gemmStore(m0 + tm + 48, n0 + tn + 112, c37, split);
    gemmStore(m0 + tm + 64, n0 + tn + 0, c40, split);
    gemmStore(m0 + tm + 64, n0 + tn + 16, c41, split);
    gemmStore(m0 + tm + 64, n0 + tn + 32, c42, split);
    gemmStore(m0 + tm + 64, n0 + tn + 48, c43, split);
    gemmStore(m0 + tm + 64, n0 + tn + 64, c44, split);
    gemmStore(m0 + tm + 64, n0 + tn + 80, c45, split);
    gemmStore(m0 + tm + 64, n0 + tn + 96, c46, split);
    gemmStore(m0 + tm + 64, n0 + tn + 112, c47, split);
    gemmStore(m0 + tm + 80, n0 + tn + 0, c50, split);
    gemmStore(m0 + tm + 80, n0 + tn + 16, c51, split);
    gemmStore(m0 + tm + 80, n0 + tn + 32, c52, split);
    gemmStore(m0 + tm + 80, n0 + tn + 48, c53, split);
    gemmStore(m0 + tm + 80, n0 + tn + 64, c54, split);
    gemmStore(m0 + tm + 80, n0 + tn + 80, c55, split);
    gemmStore(m0 + tm + 80, n0 + tn + 96, c56, split);
    gemmStore(m0 + tm + 80, n0 + tn + 112, c57, split);
    gemmStore(m0 + tm + 96, n0 + tn + 0, c60, split);
    gemmStore(m0 + tm + 96, n0 + tn + 16, c61, split);
    gemmStore(m0 + tm + 96, n0 + tn + 32, c62, split);
    gemmStore(m0 + tm + 96, n0 + tn + 48, c63, split);
    gemmStore(m0 + tm + 96, n0 + tn + 64, c64, split);
    gemmStore(m0 + tm + 96, n0 + tn + 80, c65, split);
    gemmStore(m0 + tm + 96, n0 + tn + 96, c66, split);
    gemmStore(m0 + tm + 96, n0 + tn + 112, c67, split);
    gemmStore(m0 + tm + 112, n0 + tn + 0, c70, split);
    gemmStore(m0 + tm + 112, n0 + tn + 16, c71, split);
    gemmStore(m0 + tm + 112, n0 + tn + 32, c72, split);
    gemmStore(m0 + tm + 112, n0 + tn + 48, c73, split);
    gemmStore(m0 + tm + 112, n0 + tn + 64, c74, split);
    gemmStore(m0 + tm + 112, n0 + tn + 80, c75, split);
    gemmStore(m0 + tm + 112, n0 + tn + 96, c76, split);
    gemmStore(m0 + tm + 112, n0 + tn + 112, c77, split);
  }

  /** Element idx (of 1024) of the A tile at (m0, k0): loaded along A's contiguous dimension. */
  private float gemmA(int idx, int m0, int k0, int kEnd) {
    int mm = idx & 127;
    int kk = idx / 128;
    if (gACs == 1) {
      mm = idx / 8;
      kk = idx & 7;
    }
    float v = 0f;
    if (m0 + mm < gM && k0 + kk < kEnd) {
      v = ld(gASel, gAOff + (m0 + mm) * gARs + (k0 + kk) * gACs);
    }
    return v;
  }

  private void gemmPutA(int base, int idx, float v) {
    int mm = idx & 127;
    int kk = idx / 128;
    if (gACs == 1) {
      mm = idx / 8;
      kk = idx & 7;
    }
    lmem[base + kk * GLD + mm] = v;
  }

  /** Element idx (of 1024) of the B tile at (k0, n0). */
  private float gemmB(int idx, int n0, int k0, int kEnd) {
    int nn = idx & 127;
    int kk = idx / 128;
    if (gBKs == 1) {
      nn = idx / 8;
      kk = idx & 7;
    }
    float v = 0f;
    if (n0 + nn < gN && k0 + kk < kEnd) {
      v = ld(gBSel, gBOff + (k0 + kk) * gBKs + (n0 + nn) * gBNs);
    }
    return v;
  }

  private void gemmPutB(int base, int idx, float v) {
    int nn = idx & 127;
    int kk = idx / 128;
    if (gBKs == 1) {
      nn = idx / 8;
      kk = idx & 7;
    }
    lmem[base + GBK * GLD + kk * GLD + nn] = v;
  }

  private void gemmStore(int m, int n, float v, int split) {
    if (m < gM && n < gN) {
      if (gSplit > 1) {
        part[gPartOff + (split * gM + m) * gN + n] = v;
      } else {
        gemmEpilogue(m, n, v);
      }
    }
  }

  /** C[m, n] (+)= v (+ bias[n]), then the activation. */
  private void gemmEpilogue(int m, int n, float v) {
    float r = v;
    if (gBiasOff >= 0) {
      r += W[gBiasOff + n];
    }
    if (gAct == ACT_SOFTPLUS && r <= 20f) {
      r = log1p(exp(r));
    }
    int i = gCOff + m * gCRs + n;
    if (gAccum == 1) {
      addTo(gCSel, i, r);
    } else {
      st(gCSel, i, r);
    }
  }

  /** A thread per (m, n): the split-K partials summed in split order, then the epilogue. */
  final void gemmSplitFin() {
    int i = getGlobalId();
    if (i < gM * gN) {
      int m = i / gN;
      float s = 0f;
      for (int sp = 0; sp < gSplit; sp++) {
        s += part[gPartOff + sp * gM * gN + i];
      }
      gemmEpilogue(m, i - m * gN, s);
    }
  }

  /** M ≤ 8 rows: a work-group per column n, threads split k, one tree reduction for all rows. */
  final void gemv() {
    int lid = getLocalId();
    int wg = getLocalSize();
    int n = getGroupId();
    // rows in blocks of GEMV_ROWS: one partial a (row, thread) in local memory, then a tree sum
    boolean direct = gASel == SEL_ACT && gBSel == SEL_W;
    int bi = gBOff + n * gBNs;
    for (int m0 = 0; m0 < gM; m0 += GEMV_ROWS) {
      int rows = min(GEMV_ROWS, gM - m0);
      if (gBSlab >= 0) {
        // a decode step's activations × a matrix in its slab: each element decoded once for the
        // block's rows (staging the layer would write and read it again as fp32)
        int a0 = gAOff + m0 * gARs;
        float s0 = 0f;
        float s1 = 0f;
        float s2 = 0f;
        float s3 = 0f;
        float s4 = 0f;
        float s5 = 0f;
        float s6 = 0f;
        float s7 = 0f;
        for (int k = lid; k < gK; k += wg) {
          // slabFloat written out: as a call it bound the loop (2.8b step: 32 ms for 11 GB)
          int j = bi + k * gBKs;
          int wj = wFmt == WFMT_F32 ? j : j >> 1;
          int word = 0;
          if (gBSlab == 0) {
            word = S0[wj];
          } else if (gBSlab == 1) {
            word = S1[wj];
          } else if (gBSlab == 2) {
            word = S2[wj];
          } else if (gBSlab == 3) {
            word = S3[wj];
          } else if (gBSlab == 4) {
            word = S4[wj];
          } else if (gBSlab == 5) {
            word = S5[wj];
          } else if (gBSlab == 6) {
            word = S6[wj];
          } else {
            word = S7[wj];
          }
          int bits = word;
          if (wFmt != WFMT_F32) {
            bits = (j & 1) == 0 ? word << 16 : word & 0xFFFF0000;
          }
          int e = (bits >> 23) & 0xFF;
          int m = bits & 0x7FFFFF;
          if (e != 0) {
            m = m | 0x800000;
          }
          float w = m * W[wPow2Off + e];
          if (bits < 0) {
            w = -w;
          }
          int ak = a0 + k * gACs;
          s0 += act[ak] * w;
          if (rows > 1) {
            s1 += act[ak + gARs] * w;
          }
          if (rows > 2) {
            s2 += act[ak + 2 * gARs] * w;
          }
          if (rows > 3) {
            s3 += act[ak + 3 * gARs] * w;
          }
          if (rows > 4) {
            s4 += act[ak + 4 * gARs] * w;
          }
          if (rows > 5) {
            s5 += act[ak + 5 * gARs] * w;
          }
          if (rows > 6) {
            s6 += act[ak + 6 * gARs] * w;
          }
          if (rows > 7) {
            s7 += act[ak + 7 * gARs] * w;
          }
        }
        lmem[lid] = s0;
        lmem[wg + lid] = s1;
        lmem[2 * wg + lid] = s2;
        lmem[3 * wg + lid] = s3;
        lmem[4 * wg + lid] = s4;
        lmem[5 * wg + lid] = s5;
        lmem[6 * wg + lid] = s6;
        lmem[7 * wg + lid] = s7;
        rows = 0; // stored
      } else if (direct && rows == 8) {
        // a full block of a batch's decode step: each weight loaded once for eight rows, whose
        // loads issue together (one row at a time waited on each load in turn: 35 ms of a 41 ms
        // step at B = 64 on the H200)
        int a0 = gAOff + m0 * gARs;
        float s0 = 0f;
        float s1 = 0f;
        float s2 = 0f;
        float s3 = 0f;
        float s4 = 0f;
        float s5 = 0f;
        float s6 = 0f;
        float s7 = 0f;
        for (int k = lid; k < gK; k += wg) {
          float w = W[bi + k * gBKs];
          int ak = a0 + k * gACs;
          s0 += act[ak] * w;
          s1 += act[ak + gARs] * w;
          s2 += act[ak + 2 * gARs] * w;
          s3 += act[ak + 3 * gARs] * w;
          s4 += act[ak + 4 * gARs] * w;
          s5 += act[ak + 5 * gARs] * w;
          s6 += act[ak + 6 * gARs] * w;
          s7 += act[ak + 7 * gARs] * w;
        }
        lmem[lid] = s0;
        lmem[wg + lid] = s1;
        lmem[2 * wg + lid] = s2;
        lmem[3 * wg + lid] = s3;
        lmem[4 * wg + lid] = s4;
        lmem[5 * wg + lid] = s5;
        lmem[6 * wg + lid] = s6;
        lmem[7 * wg + lid] = s7;
        rows = 0; // stored
      }
      for (int r = 0; r < rows; r++) {
        int m = m0 + r;
        float acc = 0f;
        int ai = gAOff + m * gARs;
        if (direct) {
          // every inference product (activations × weights), the loads written out: a selector
          // call a load cost more than the product itself here (as in the GEMM's k-loop)
          for (int k = lid; k < gK; k += wg) {
            acc += act[ai + k * gACs] * W[bi + k * gBKs];
          }
        } else {
          for (int k = lid; k < gK; k += wg) {
            acc += ld(gASel, ai + k * gACs) * ld(gBSel, bi + k * gBKs);
          }
        }
        lmem[r * wg + lid] = acc;
      }
      rows = min(GEMV_ROWS, gM - m0);
      localBarrier();
      for (int off = wg / 2; off > 0; off = off / 2) {
        if (lid < off) {
          for (int r = 0; r < rows; r++) {
            lmem[r * wg + lid] += lmem[r * wg + lid + off];
          }
        }
        localBarrier();
      }
      if (lid < rows && n < gN) {
        gemmEpilogue(m0 + lid, n, lmem[lid * wg]);
      }
      localBarrier();
    }
  }
}
