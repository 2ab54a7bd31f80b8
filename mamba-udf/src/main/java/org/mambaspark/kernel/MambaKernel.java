package org.mambaspark.kernel;

/**
 * The whole Mamba layer on an OpenCL device: {@link ScanKernel}'s scan plus every other operation
 * of the forward and backward, in one Kernel class so that one instance keeps all of a model's
 * buffers resident (Aparapi facts in CONTRIBUTING.md). {@link GpuModel} sets the fields of an
 * operation and launches; this class only computes.
 *
 * <p>Operations, each the device version of a method in {@code org.mambaspark.ops} (outputs first
 * in the field lists, then inputs):
 *
 * <ul>
 *   <li>{@link #OP_GEMM}: C (+)= op(A)·op(B) (+ bias, softplus), tiled 128×128×8 in local memory,
 *       256 threads each holding an 8×8 block of C in registers (strided by 16, so that local reads
 *       are bank-conflict free and stores coalesce). Operands are (array, offset, two strides), so
 *       one kernel covers {@code Matmul.matmulForward} (A·Wᵀ) and both products of its backward
 *       (dout·W, doutᵀ·inp), and views such as the z half of in_proj's output; the tiles are
 *       double-buffered with the next one's loads in flight ({@link #gemm2}). Long-K products over
 *       few tiles (weight gradients, K = B·L) split K across work-groups ({@link #gSplit}).
 *   <li>{@link #OP_GEMV}: the same product for M ≤ 8 rows (generation), a work-group per output
 *       column: a tiled GEMM would leave all but a few compute units idle.
 *   <li>{@link #OP_EMBED}, {@link #OP_RMSNORM} ({@code RmsNorm}), {@link #OP_CONV} and {@link
 *       #OP_CONV_STATE} ({@code Conv1d}), {@link #OP_CROSS_ENTROPY} (log-softmax at the target and,
 *       for training, the softmax gradient in place), {@link #OP_COPY}, {@link #OP_FILL};
 *   <li>backward: {@link #OP_RMSNORM_BWD}, {@link #OP_SOFTPLUS_BWD}, {@link #OP_CONV_BWD_DPRE},
 *       {@link #OP_CONV_BWD_DX}, {@link #OP_CONV_BWD_DW}, {@link #OP_EMBED_BWD}, and the column
 *       sums of weight gradients in two race-free stages, {@link #OP_COLSUM_PART} then {@link
 *       #OP_COLSUM_FIN} (per row-block partials, then a fixed-order sum: deterministic, no
 *       atomics).
 * </ul>
 *
 * <p>Operands name their array with a selector ({@link #SEL_ACT} ...) because Aparapi kernels
 * cannot hold array references in variables; the branch is uniform across a launch.
 */
public class MambaKernel extends SsdKernel {
  static final int OP_EMBED = 10;
  static final int OP_RMSNORM = 11;
  static final int OP_GEMM = 12;
  static final int OP_GEMV = 13;
  static final int OP_CONV = 14;
  static final int OP_CONV_STATE = 15;
  static final int OP_COPY = 16;
  static final int OP_FILL = 17;
  static final int OP_CROSS_ENTROPY = 18;
  static final int OP_RMSNORM_BWD = 19;
  static final int OP_COLSUM_PART = 20;
  static final int OP_COLSUM_FIN = 21;
  static final int OP_SOFTPLUS_BWD = 22;
  static final int OP_CONV_BWD_DPRE = 23;
  static final int OP_CONV_BWD_DX = 24;
  static final int OP_CONV_BWD_DW = 25;
  static final int OP_CONV_BWD_DW_FIN = 26;
  static final int OP_EMBED_BWD = 27;
  static final int OP_GEMM_SPLIT_FIN = 28;
  static final int OP_STAGE = 29;

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

  int stSlab; //   OP_STAGE: W[stDst + i] = the slab's element stSrc + i, for i < stN
  int stSrc;
  int stDst;
  int stN;
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
   * gPartOff; {@link #OP_GEMM_SPLIT_FIN} adds the splits and applies the epilogue. For the weight
   * gradients, whose K is B·L and whose few tiles would leave most compute units idle.
   */
  int gSplit = 1;

  int gKPer;
  int gPartOff;

  // ---- element-wise and row operations (fields named after the op)
  int eN; //       elements (copy, fill, embedding, softplus backward)
  int eSrcSel;
  int eSrcOff;
  int eDstSel;
  int eDstOff;
  int embOff; //   W: the (V, D) embedding
  int embD;
  int idsOff; //   ids: first token id

  int rnD; //      RMSNorm over rows of D
  float rnEps;
  int rnInSel;
  int rnInOff;
  int rnOutSel;
  int rnOutOff;
  int rnWOff; //   W: weight (D)
  int rnRstdOff; // act: 1/rms per row, or -1 (forward); read by the backward
  int rnDoutSel; // backward: dout, dinp (+=)
  int rnDoutOff;
  int rnDinpSel;
  int rnDinpOff;

  int cvB; //      causal depthwise conv over (B, L, ED), kernel K
  int cvL;
  int cvED;
  int cvK;
  int cvInOff; //  act: x at cvInOff + (b·L + t)·cvInStride + e
  int cvInStride;
  int cvOutOff; // act (B, L, ED): silu(conv) (forward); gact: dpre (backward)
  int cvWOff; //   W (ED, K)
  int cvBiasOff; // W (ED) or -1
  int cvStateOff; // state (B, ED, K-1) or -1
  int cvDxsOff; // gact (B, L, ED): gradient of the conv's silu output
  int cvDxOff; //  gact: dx at cvDxOff + (b·L + t)·cvInStride + e +=
  int cvPartOff; // part: (row blocks, ED, K+1) weight and bias partials
  int cvRowBlock;
  int cvGwOff; //  G (ED, K) +=
  int cvGbOff; //  G (ED) += or -1

  int ceV; //      cross-entropy rows of V logits in act at ceLogOff
  int ceLogOff;
  int ceTgtOff; // ids: target per row, -1 for none
  int ceLossOff; // out: loss per row
  int ceGrad; //   1: overwrite the logits with ceScale·(softmax − onehot)
  float ceScale;

  int cpRows; //   column sums over rows in blocks: part[cpPartOff + rb·cpCols + col]
  int cpCols;
  int cpRowBlock;
  int cpMode; //   0: Σ a[t, col]; 1: Σ a[t, col]·b[t, col]·act[cpRstdOff + t]
  int cpASel;
  int cpAOff;
  int cpAStride;
  int cpBSel;
  int cpBOff;
  int cpBStride;
  int cpRstdOff;
  int cpPartOff;
  int cpDstSel; // fin: dst[cpDstOff + col] += Σ_rb part
  int cpDstOff;

  int ebUnique; // embedding backward: ids holds tokens (U), starts (U+1), positions
  int ebTokOff;
  int ebStartOff;
  int ebPosOff;
  int ebDxOff; //  gact (BT, D)

  @Override
  public void run() {
    // Only what the model runs (the general-tiling scans are the tests' ScanKernelV1).
    // Helper calls inside hot loops cost far more in this large program than in a small one (the
    // SGEMM ran 2.3x slower here with them, not in a kernel of its own; see gemm2).
    if (op == OP_SCAN_FWD4) {
      scanForward4();
    } else if (op == OP_SCAN_BWD4) {
      scanBackward4();
    } else if (op == OP_SCAN_BWD_REDUCE) {
      scanBackwardReduce();
    } else if (op == OP_GEMM) {
      gemm2();
    } else if (op == OP_GEMV) {
      gemv();
    } else if (op == OP_EMBED) {
      embed();
    } else if (op == OP_RMSNORM) {
      rmsnorm();
    } else if (op == OP_CONV) {
      conv();
    } else if (op == OP_CONV_STATE) {
      convState();
    } else if (op == OP_COPY) {
      copy();
    } else if (op == OP_FILL) {
      fill();
    } else if (op == OP_CROSS_ENTROPY) {
      crossEntropy();
    } else if (op == OP_RMSNORM_BWD) {
      rmsnormBackward();
    } else if (op == OP_COLSUM_PART) {
      colsumPart();
    } else if (op == OP_COLSUM_FIN) {
      colsumFin();
    } else if (op == OP_SOFTPLUS_BWD) {
      softplusBackward();
    } else if (op == OP_CONV_BWD_DPRE) {
      convBackwardDpre();
    } else if (op == OP_CONV_BWD_DX) {
      convBackwardDx();
    } else if (op == OP_CONV_BWD_DW) {
      convBackwardDw();
    } else if (op == OP_CONV_BWD_DW_FIN) {
      convBackwardDwFin();
    } else if (op == OP_EMBED_BWD) {
      embedBackward();
    } else if (op == OP_GEMM_SPLIT_FIN) {
      gemmSplitFin();
    } else if (op == OP_STAGE) {
      stage();
    } else if (op == OP_STEP) {
      // One dispatch on the pass's kind, not two in a row: a CPU OpenCL compiler (PoCL) copies the
      // code that follows each barrier, and after step()'s barriers would come all of ssdPass().
      if (plan[planOff + getPassId() * REC] < P_SSD_SCAN) {
        step();
      } else {
        ssdPass();
      }
    }
  }

  /** W[stDst + i] = slab stSlab's element stSrc + i, grid-stride over stN elements. */
  private void stage() {
    for (int i = getGlobalId(); i < stN; i += getGlobalSize()) {
      W[stDst + i] = slabFloat(stSlab, stSrc + i);
    }
  }

  // ---- array selectors

  private float ld(int sel, int i) {
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

  private void st(int sel, int i, float v) {
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

  private void addTo(int sel, int i, float v) {
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

  /** Max of v over the work-group, as {@link #groupSum}. */
  private float groupMax(float v) {
    int lid = getLocalId();
    localBarrier();
    lmem[lid] = v;
    localBarrier();
    for (int off = getLocalSize() / 2; off > 0; off = off / 2) {
      if (lid < off) {
        lmem[lid] = max(lmem[lid], lmem[lid + off]);
      }
      localBarrier();
    }
    return lmem[0];
  }

  // ---- matrix products

  /**
   * A work-group per 128×128 tile of C, double-buffered. While the threads multiply the tile in one
   * local buffer, their global loads of the next tile are in flight into registers, and go to the
   * other buffer afterwards: one barrier per k-step instead of two, and the global latency hidden
   * behind 512 FMAs a thread.
   */
  private void gemm2() {
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
  private void gemmSplitFin() {
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
  private void gemv() {
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

  // ---- forward

  /**
   * act[eDstOff + t·D + d] = emb[embOff + ids[idsOff + t]·D + d], over eN = BT·D elements; emb is
   * W, or slab embSlab.
   */
  private void embed() {
    int i = getGlobalId();
    if (i < eN) {
      int t = i / embD;
      int j = embOff + ids[idsOff + t] * embD + i - t * embD;
      act[eDstOff + i] = embSlab < 0 ? W[j] : slabFloat(embSlab, j);
    }
  }

  /** A work-group per row: out = in · rsqrt(mean(in²) + eps) · w; saves 1/rms when asked. */
  private void rmsnorm() {
    int row = getGroupId();
    int lid = getLocalId();
    int wg = getLocalSize();
    int D = rnD;
    int io = rnInOff + row * D;
    float ss = 0f;
    for (int i = lid; i < D; i += wg) {
      float v = ld(rnInSel, io + i);
      ss += v * v;
    }
    float r = 1f / sqrt(groupSum(ss) / D + rnEps);
    for (int i = lid; i < D; i += wg) {
      st(rnOutSel, rnOutOff + row * D + i, ld(rnInSel, io + i) * r * W[rnWOff + i]);
    }
    if (lid == 0 && rnRstdOff >= 0) {
      act[rnRstdOff + row] = r;
    }
  }

  /** Causal depthwise conv + SiLU, a thread per (b, t, e); inputs before t = 0 from the state. */
  private void conv() {
    int ED = cvED;
    int total = cvB * cvL * ED;
    // grid-stride: a thread per element made the per-thread set-up cost more than the element
    for (int i = getGlobalId(); i < total; i += getGlobalSize()) {
      int bt = i / ED;
      int e = i - bt * ED;
      int b = bt / cvL;
      int t = bt - b * cvL;
      int K = cvK;
      int K1 = K - 1;
      float acc = 0f;
      if (cvBiasOff >= 0) {
        acc = W[cvBiasOff + e];
      }
      for (int k = 0; k < K; k++) {
        int p = t - K1 + k;
        if (p >= 0) {
          acc += W[cvWOff + e * K + k] * act[cvInOff + (b * cvL + p) * cvInStride + e];
        } else if (cvStateOff >= 0) {
          acc += W[cvWOff + e * K + k] * state[cvStateOff + (b * ED + e) * K1 + p + K1];
        }
      }
      act[cvOutOff + i] = acc / (1f + exp(-acc));
    }
  }

  /** The conv state (B, ED, K-1) becomes the last K-1 inputs seen, a thread per (b, e). */
  private void convState() {
    int i = getGlobalId();
    int ED = cvED;
    if (i < cvB * ED) {
      int b = i / ED;
      int e = i - b * ED;
      int K1 = cvK - 1;
      int so = cvStateOff + i * K1;
      for (int j = 0; j < K1; j++) {
        int p = cvL - K1 + j;
        float v = 0f;
        if (p >= 0) {
          v = act[cvInOff + (b * cvL + p) * cvInStride + e];
        } else {
          v = state[so + j + cvL];
        }
        state[so + j] = v;
      }
    }
  }

  private void copy() {
    int i = getGlobalId();
    if (i < eN) {
      st(eDstSel, eDstOff + i, ld(eSrcSel, eSrcOff + i));
    }
  }

  private void fill() {
    int i = getGlobalId();
    if (i < eN) {
      st(eDstSel, eDstOff + i, 0f);
    }
  }

  /**
   * A work-group per row of V logits: loss = logsumexp − logit[target] into out; with ceGrad the
   * logits are overwritten by ceScale·(softmax − onehot(target)). Rows without a target (-1) give
   * loss 0 and gradient 0.
   */
  private void crossEntropy() {
    int row = getGroupId();
    int lid = getLocalId();
    int wg = getLocalSize();
    int V = ceV;
    int lo = ceLogOff + row * V;
    float mx = -3.0e38f;
    for (int v = lid; v < V; v += wg) {
      mx = max(mx, act[lo + v]);
    }
    mx = groupMax(mx);
    float s = 0f;
    for (int v = lid; v < V; v += wg) {
      s += exp(act[lo + v] - mx);
    }
    float lse = mx + log(groupSum(s));
    int tgt = ids[ceTgtOff + row];
    float tl = 0f;
    if (tgt >= 0) {
      tl = act[lo + tgt];
    }
    localBarrier();
    if (lid == 0) {
      float loss = 0f;
      if (tgt >= 0) {
        loss = lse - tl;
      }
      out[ceLossOff + row] = loss;
    }
    if (ceGrad == 1) {
      for (int v = lid; v < V; v += wg) {
        float gr = 0f;
        if (tgt >= 0) {
          gr = ceScale * exp(act[lo + v] - lse);
          if (v == tgt) {
            gr = ceScale * (exp(tl - lse) - 1f);
          }
        }
        act[lo + v] = gr;
      }
    }
  }

  // ---- backward

  /** A work-group per row: dinp += r·w·dout − r³/D · inp · Σ(dout·w·inp). */
  private void rmsnormBackward() {
    int row = getGroupId();
    int lid = getLocalId();
    int wg = getLocalSize();
    int D = rnD;
    int io = rnInOff + row * D;
    int doo = rnDoutOff + row * D;
    float dot = 0f;
    for (int i = lid; i < D; i += wg) {
      dot += ld(rnDoutSel, doo + i) * W[rnWOff + i] * ld(rnInSel, io + i);
    }
    dot = groupSum(dot);
    float r = act[rnRstdOff + row];
    float c = r * r * r * dot / D;
    for (int i = lid; i < D; i += wg) {
      addTo(
          rnDinpSel,
          rnDinpOff + row * D + i,
          r * W[rnWOff + i] * ld(rnDoutSel, doo + i) - c * ld(rnInSel, io + i));
    }
  }

  /** A thread per (row block, column): the block's column sum (mode 0) or Σ a·b·rstd (mode 1). */
  private void colsumPart() {
    int i = getGlobalId();
    int nRb = (cpRows + cpRowBlock - 1) / cpRowBlock;
    if (i < nRb * cpCols) {
      int rb = i / cpCols;
      int col = i - rb * cpCols;
      int t1 = min(cpRows, (rb + 1) * cpRowBlock);
      float s = 0f;
      for (int t = rb * cpRowBlock; t < t1; t++) {
        float v = ld(cpASel, cpAOff + t * cpAStride + col);
        if (cpMode == 1) {
          v = v * ld(cpBSel, cpBOff + t * cpBStride + col) * act[cpRstdOff + t];
        }
        s += v;
      }
      part[cpPartOff + i] = s;
    }
  }

  /** A thread per column: dst += Σ over row blocks, in block order. */
  private void colsumFin() {
    int col = getGlobalId();
    if (col < cpCols) {
      int nRb = (cpRows + cpRowBlock - 1) / cpRowBlock;
      float s = 0f;
      for (int rb = 0; rb < nRb; rb++) {
        s += part[cpPartOff + rb * cpCols + col];
      }
      addTo(cpDstSel, cpDstOff + col, s);
    }
  }

  /**
   * dΔ_pre = dΔ · σ(pre), with σ(pre) = 1 − exp(−softplus(pre)) = −expm1(−Δ): the pre-activation
   * need not be kept (and above the threshold, where Δ = pre, it gives 1 to float precision).
   */
  private void softplusBackward() {
    int i = getGlobalId();
    if (i < eN) {
      gact[eDstOff + i] *= -expm1(-act[eSrcOff + i]);
    }
  }

  /** dpre = dxs · silu'(pre), pre recomputed from the conv's input (fresh sequences). */
  private void convBackwardDpre() {
    int i = getGlobalId();
    int ED = cvED;
    if (i < cvB * cvL * ED) {
      int bt = i / ED;
      int e = i - bt * ED;
      int b = bt / cvL;
      int t = bt - b * cvL;
      int K = cvK;
      float acc = 0f;
      if (cvBiasOff >= 0) {
        acc = W[cvBiasOff + e];
      }
      for (int k = 0; k < K; k++) {
        int p = t - K + 1 + k;
        if (p >= 0) {
          acc += W[cvWOff + e * K + k] * act[cvInOff + (b * cvL + p) * cvInStride + e];
        }
      }
      float sg = 1f / (1f + exp(-acc));
      gact[cvOutOff + i] = gact[cvDxsOff + i] * sg * (1f + acc * (1f - sg));
    }
  }

  /** dx[b, p, e] += Σ_k w[e, k] · dpre[b, p + K-1 − k, e], a thread per (b, p, e): no races. */
  private void convBackwardDx() {
    int i = getGlobalId();
    int ED = cvED;
    if (i < cvB * cvL * ED) {
      int bt = i / ED;
      int e = i - bt * ED;
      int b = bt / cvL;
      int p = bt - b * cvL;
      int K = cvK;
      float acc = 0f;
      for (int k = 0; k < K; k++) {
        int t = p + K - 1 - k;
        if (t < cvL) {
          acc += W[cvWOff + e * K + k] * gact[cvOutOff + (b * cvL + t) * ED + e];
        }
      }
      gact[cvDxOff + (b * cvL + p) * cvInStride + e] += acc;
    }
  }

  /**
   * A thread per (row block, e): partial Σ_t dpre·x for each tap k, and Σ_t dpre (the bias) in slot
   * K, into part (row blocks, ED, K+1).
   */
  private void convBackwardDw() {
    int i = getGlobalId();
    int ED = cvED;
    int rows = cvB * cvL;
    int nRb = (rows + cvRowBlock - 1) / cvRowBlock;
    if (i < nRb * ED) {
      int rb = i / ED;
      int e = i - rb * ED;
      int K = cvK;
      int t0 = rb * cvRowBlock;
      int t1 = min(rows, t0 + cvRowBlock);
      for (int k = 0; k <= K; k++) {
        float s = 0f;
        for (int bt = t0; bt < t1; bt++) {
          int b = bt / cvL;
          int p = bt - b * cvL - K + 1 + k;
          float d = gact[cvOutOff + bt * ED + e];
          if (k == K) {
            s += d;
          } else if (p >= 0) {
            s += d * act[cvInOff + (b * cvL + p) * cvInStride + e];
          }
        }
        part[cvPartOff + (rb * ED + e) * (K + 1) + k] = s;
      }
    }
  }

  /** A thread per (e, k ≤ K): the conv weight (k < K) and bias (k = K) gradients += Σ blocks. */
  private void convBackwardDwFin() {
    int i = getGlobalId();
    int ED = cvED;
    int K = cvK;
    if (i < ED * (K + 1)) {
      int e = i / (K + 1);
      int k = i - e * (K + 1);
      int nRb = (cvB * cvL + cvRowBlock - 1) / cvRowBlock;
      float s = 0f;
      for (int rb = 0; rb < nRb; rb++) {
        s += part[cvPartOff + rb * ED * (K + 1) + i];
      }
      if (k < K) {
        G[cvGwOff + e * K + k] += s;
      } else if (cvGbOff >= 0) {
        G[cvGbOff + e] += s;
      }
    }
  }

  /**
   * A thread per (distinct token, d): the embedding row's gradient += Σ of dx over the token's
   * positions (the host sorted positions by token), without races or atomics.
   */
  private void embedBackward() {
    int i = getGlobalId();
    int D = embD;
    if (i < ebUnique * D) {
      int u = i / D;
      int d = i - u * D;
      float s = 0f;
      for (int j = ids[ebStartOff + u]; j < ids[ebStartOff + u + 1]; j++) {
        s += gact[ebDxOff + ids[ebPosOff + j] * D + d];
      }
      G[embOff + ids[ebTokOff + u] * D + d] += s;
    }
  }
}
