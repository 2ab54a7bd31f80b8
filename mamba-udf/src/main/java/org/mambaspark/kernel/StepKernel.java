package org.mambaspark.kernel;

/**
 * A decode step (one token for each of B ≤ 64 sequences) as one launch of many passes: Aparapi's
 * {@code execute(range, passes)} enqueues the kernel {@code passes} times with only the pass id
 * changing, so the host pays its per-launch cost (tens of µs, growing with the kernel's fields)
 * once a step instead of once an operation. Pass i reads what it does from a record of {@link #REC}
 * ints at {@code plan[planOff + i·REC]} (and eps from {@link #planF}), written once per batch size
 * by {@link DecodePlan}: the "device-resident launch table".
 *
 * <p>Every pass runs on the same range (a fixed number of 256-thread work-groups), so each one
 * loops over its work with a grid stride: rows of a norm, columns of a product, channels of the
 * recurrence. The passes, each the step form of an operation of {@code org.mambaspark.ops}:
 *
 * <ul>
 *   <li>{@link #P_EMBED}: x[b] = embedding[ids[b]] ({@code MambaModel}'s embedding lookup);
 *   <li>{@link #P_RMSNORM}: a work-group per row ({@code RmsNorm.rmsnormForward}), which may first
 *       add a split product's parts into the row (out_proj's, into the residual stream);
 *   <li>{@link #P_GEMV}: C (M, N) (+)= A (M, K) · Wᵀ (+ bias, softplus) with W (N, K) row-major in
 *       W or in a slab; a work item is eight columns for a block of eight rows of A, 32 lanes a
 *       column splitting K (coalesced rows of W, sixteen or four loads in flight a lane), a column
 *       over up to eight warps when the items are too few to occupy every group, each weight loaded
 *       once for the block's rows ({@code Matmul.matmulForward});
 *   <li>{@link #P_GEMM}: the same product for 8 < M ≤ 64 rows, tiled (64 × 64 outputs a work-group
 *       from 64 × 16 tiles of A and W in local memory, the next k-step's tiles loaded into
 *       registers while the current one computes, 4 × 4 outputs a thread): with more rows the
 *       GEMV's loads of A, not the weights, would bound it. When its column tiles are too few to
 *       occupy the device, k is split into parts whose partial sums go to {@code part}, and {@link
 *       #P_GEMM_SUM} (or the next norm) adds them up and applies the epilogue;
 *   <li>{@link #P_CONV}: the depthwise conv's step over the kept K−1 inputs, + SiLU, and the shift
 *       of those inputs ({@code Conv1d.convStep});
 *   <li>{@link #P_SEGNORM}: Falcon-Mamba's weightless RMSNorms of the Δ-rank, B and C parts of each
 *       x_proj row, in place (also launched alone, one pass, by the forward), and {@link
 *       #P_SEGNORM_BWD}, their gradient (launched by the training backward);
 *   <li>{@link #P_SCAN_DT}: the selective scan's step with the D skip and the SiLU(z) gate, a
 *       half-warp (N ≤ 16) or a warp per (b, e) whose lanes split its N states ({@code
 *       SelectiveScan.scanStep}), with Δ = softplus(dt_proj(δ) + bias) computed by those lanes for
 *       their channel (and Falcon-Mamba's part norms of its row), so dt_proj is no pass of its own;
 *       a thread per channel when there are enough channels to occupy the device;
 *   <li>{@link #P_ARGMAX}: each row's greedy next token from the logits, into ids (an optional last
 *       pass: the host then reads B ints instead of B·V logits).
 * </ul>
 *
 * <p>Aparapi waits for each pass to finish before it enqueues the next (about 25 µs a pass on an
 * H100), so passes are fused where the data allows: a GEMV may rmsnorm its rows of A on the fly
 * ({@link #FUSE_NORM}: the layer's norm, the final norm before lm_head) and run the conv step on
 * the columns it produces ({@link #FUSE_CONV}: in_proj's x half), leaving a Mamba-1 layer four
 * passes: in_proj, x_proj, dt_proj + scan, out_proj.
 */
public class StepKernel extends ScanKernel {
  static final int OP_STEP = 40;

  static final int P_EMBED = 1;
  static final int P_RMSNORM = 2;
  static final int P_GEMV = 3;
  static final int P_CONV = 4;
  static final int P_GEMM = 6;
  static final int P_SEGNORM = 7;
  static final int P_SCAN_DT = 8;
  static final int P_SEGNORM_BWD = 9;
  static final int P_ARGMAX = 10;
  static final int P_GEMM_SUM = 11;

  /** GEMV options (record int 14): A's rows rmsnormed on the fly; conv + SiLU on x's columns. */
  static final int FUSE_NORM = 1;

  static final int FUSE_CONV = 2;

  /** The tiled product's tile: 64 rows (all of a step's) × 64 columns, k in steps of 16. */
  static final int TILE = 64;

  static final int TILE_K = 16;

  /**
   * A local tile's row length: 66, so that the stores of a warp (16 k's of two rows) fall in 32
   * distinct banks; at 64 each half-warp's 16 stores went to one bank.
   */
  static final int TILE_LD = TILE + 2;

  /** Ints a pass record holds: its kind, then up to 31 operands. */
  static final int REC = 32;

  /** Columns of a product a work-group computes, one per 32 lanes. */
  static final int STEP_COLS = 8;

  static final int STEP_THREADS = 256;

  /**
   * Local floats a step needs: eight rows' partial sums a thread, then up to 64 rows' 1/rms (the
   * tiled product's two tiles, 2 · TILE_K · TILE_LD, fit below that).
   */
  static final int STEP_LOCAL = 8 * STEP_THREADS + 64 + 256;

  /** Where a GEMV keeps the slab decode's 256 powers of two in local memory. */
  static final int STEP_POW2 = 8 * STEP_THREADS + 64;

  /**
   * Rows of W at least this long are read sixteen weights a lane an iteration, shorter ones four:
   * measured on an H100 in one run, mamba-2.8b's decode step (K = 2560 and 5120) took 17.2 ms with
   * sixteen, 20.9 with eight and 22.1 with four; in a later run thirty-two took 21.0 ms against
   * sixteen's 15.2 (docs/gpu.md).
   */
  static final int GEMV_LONG_ROW = 2048;

  /** Where C goes: act, or out (the logits the host reads). */
  static final int C_ACT = 0;

  static final int C_OUT = 1;

  int[] plan = new int[1];
  float[] planF = new float[1];

  /** The first record of this launch's passes. */
  int planOff;

  final void step() {
    int p = planOff + getPassId() * REC;
    int kind = plan[p];
    if (kind == P_GEMV) {
      stepGemv(p);
    } else if (kind == P_GEMM) {
      stepGemm(p);
    } else if (kind == P_RMSNORM) {
      stepRmsnorm(p);
    } else if (kind == P_CONV) {
      stepConv(p);
    } else if (kind == P_EMBED) {
      stepEmbed(p);
    } else if (kind == P_SEGNORM) {
      segmentNorms(p);
    } else if (kind == P_SCAN_DT) {
      stepScanDt(p);
    } else if (kind == P_SEGNORM_BWD) {
      segmentNormsBackward(p);
    } else if (kind == P_ARGMAX) {
      stepArgmax(p);
    } else if (kind == P_GEMM_SUM) {
      stepGemmSum(p);
    }
  }

  /**
   * [B, V, dst]: ids[dst + b] = the first index of the largest of out[b·V, (b+1)·V), a work-group a
   * row ({@code Sampler.argmax}; a row holding NaN may pick differently). Each thread keeps the
   * best of its strided elements, then the group halves its candidates, the larger value or, on a
   * tie, the smaller index winning (indices kept in lmem as floats: exact for V ≤ 2^24).
   */
  private void stepArgmax(int p) {
    int B = plan[p + 1];
    int V = plan[p + 2];
    int dst = plan[p + 3];
    int lid = getLocalId();
    for (int b = getGroupId(); b < B; b += getNumGroups()) {
      float bv = 0f;
      int bi = -1;
      for (int i = lid; i < V; i += STEP_THREADS) {
        float v = out[b * V + i];
        if (bi < 0 || v > bv) {
          bv = v;
          bi = i;
        }
      }
      localBarrier();
      lmem[lid] = bv;
      lmem[STEP_THREADS + lid] = bi;
      for (int off = STEP_THREADS / 2; off > 0; off >>= 1) {
        localBarrier();
        if (lid < off) {
          float ov = lmem[lid + off];
          int oi = (int) lmem[STEP_THREADS + lid + off];
          float mv = lmem[lid];
          int mi = (int) lmem[STEP_THREADS + lid];
          if (oi >= 0 && (mi < 0 || ov > mv || (ov == mv && oi < mi))) {
            lmem[lid] = ov;
            lmem[STEP_THREADS + lid] = oi;
          }
        }
      }
      localBarrier();
      if (lid == 0) {
        ids[dst + b] = (int) lmem[STEP_THREADS];
      }
    }
  }

  /** [B, D, idsOff, xOff, embOff]: act[xOff + b·D + d] = emb[ids[idsOff + b]·D + d]. */
  private void stepEmbed(int p) {
    int B = plan[p + 1];
    int D = plan[p + 2];
    int idsOff = plan[p + 3];
    int xOff = plan[p + 4];
    int embOff = plan[p + 5];
    for (int i = getGlobalId(); i < B * D; i += getGlobalSize()) {
      int b = i / D;
      int j = embOff + ids[idsOff + b] * D + i - b * D;
      act[xOff + i] = embSlab < 0 ? W[j] : slabFloat(embSlab, j);
    }
  }

  /**
   * [B, D, inOff, outOff, wOff, parts, biasOff], eps: act[out] = act[in]·rsqrt(mean(in²) + eps)·w,
   * per row. With parts > 0 a split product's sum comes first (the residual stream's out_proj,
   * whose own sum pass this saves): act[in] += Σ_q part[q·B·D + row·D + i] (+ W[biasOff + i]).
   */
  private void stepRmsnorm(int p) {
    int B = plan[p + 1];
    int D = plan[p + 2];
    int inOff = plan[p + 3];
    int outOff = plan[p + 4];
    int wOff = plan[p + 5];
    int parts = plan[p + 6];
    int biasOff = plan[p + 7];
    float eps = planF[p];
    int lid = getLocalId();
    int wg = getLocalSize();
    for (int row = getGroupId(); row < B; row += getNumGroups()) {
      int io = inOff + row * D;
      float ss = 0f;
      for (int i = lid; i < D; i += wg) {
        float v = act[io + i];
        if (parts > 0) {
          float sum = 0f;
          for (int q = 0; q < parts; q++) {
            sum += part[q * B * D + row * D + i];
          }
          if (biasOff >= 0) {
            sum += W[biasOff + i];
          }
          v += sum;
          act[io + i] = v;
        }
        ss += v * v;
      }
      float r = 1f / sqrt(groupSum(ss) / D + eps);
      for (int i = lid; i < D; i += wg) {
        act[outOff + row * D + i] = act[io + i] * r * W[wOff + i];
      }
      localBarrier();
    }
  }

  /**
   * [M, N, K, aOff, aRs, slab, bOff, cTo, cOff, cRs, biasOff, accumulate, softplus, fuse, gOff,
   * convCols, ...conv]: C[m, n] (+)= Σ_k act[aOff + m·aRs + k]·B[bOff + n·K + k] (+ W[biasOff +
   * n]), B in W (slab −1) or a slab. FUSE_NORM: A's rows are rmsnorm(a)·g (g at W[gOff], eps in
   * planF); FUSE_CONV: columns n below convCols go through {@link #stepConvOne} instead of into C.
   */
  private void stepGemv(int p) {
    int M = plan[p + 1];
    int N = plan[p + 2];
    int K = plan[p + 3];
    int aOff = plan[p + 4];
    int aRs = plan[p + 5];
    int slab = plan[p + 6];
    int bOff = plan[p + 7];
    int lid = getLocalId();
    int lane = lid & 31;
    int cg = lid >> 5;
    int wg = STEP_THREADS;
    int fuse = plan[p + 14];
    int gOff = plan[p + 15]; // FUSE_NORM: the norm's weight (K) in W
    int loads = K >= GEMV_LONG_ROW ? 16 : 4; // weights a lane loads an iteration
    // the slab decode's powers of two, in local memory: a global table load would follow each
    // weight's load in the dependency chain
    int pow2 = STEP_POW2;
    if (slab >= 0) {
      for (int e = lid; e < 256; e += wg) {
        lmem[pow2 + e] = W[wPow2Off + e];
      }
      localBarrier();
    }
    // a column's dot products split over `split` warps while the work items (columns × blocks of
    // eight rows) still fit one round of the launch's groups (x_proj's few dozen columns,
    // out_proj's hundreds): more groups stream at once, and no group takes a second round
    int mBlocks = (M + 7) / 8;
    int split = 1;
    while (split < STEP_COLS && N * mBlocks * split * 2 <= getNumGroups() * STEP_COLS) {
      split = split * 2;
    }
    if ((fuse & FUSE_NORM) != 0) {
      // 1/rms of every row, once a group, into lmem[8·wg + m]: A's rows are normed as they are used
      for (int m = 0; m < M; m++) {
        int ar = aOff + m * aRs;
        float ss = 0f;
        for (int k = lid; k < K; k += wg) {
          float v = act[ar + k];
          ss += v * v;
        }
        float rs = 1f / sqrt(groupSum(ss) / K + planF[p]);
        if (lid == 0) {
          lmem[8 * wg + m] = rs;
        }
      }
      localBarrier();
    }
    int cols = STEP_COLS / split;
    int part = cg % split; // this warp's share of k: k ≡ lane + 128·part (mod 128·split)
    // a work item: `cols` columns for one block of eight rows, so that a product of more rows
    // spreads its blocks over the groups instead of walking them one after another
    int nBlocks = (N + cols - 1) / cols;
    for (int t = getGroupId(); t < nBlocks * mBlocks; t += getNumGroups()) {
      int n = (t % nBlocks) * cols + cg / split;
      int m0 = (t / nBlocks) * 8;
      int rows = min(8, M - m0);
      float s0 = 0f;
      float s1 = 0f;
      float s2 = 0f;
      float s3 = 0f;
      float s4 = 0f;
      float s5 = 0f;
      float s6 = 0f;
      float s7 = 0f;
      int a0 = aOff + m0 * aRs;
      int bi = bOff + n * K;
      if (n >= N) {
        rows = 0; // a column past N: only the barriers
      }
      // sixteen weights a lane an iteration (k, k + 32, …, k + 480: a warp reads 2 KB of the
      // row), all loaded before any is used: this program's registers allow a compute unit few
      // warps, and the loads each has in flight, not the arithmetic, bound a long row's product
      for (int k = lane + 512 * part; k < K && rows > 0 && loads == 16; k += 512 * split) {
        int k1 = min(k + 32, K - 1);
        int k2 = min(k + 64, K - 1);
        int k3 = min(k + 96, K - 1);
        int k4 = min(k + 128, K - 1);
        int k5 = min(k + 160, K - 1);
        int k6 = min(k + 192, K - 1);
        int k7 = min(k + 224, K - 1);
        int k8 = min(k + 256, K - 1);
        int k9 = min(k + 288, K - 1);
        int k10 = min(k + 320, K - 1);
        int k11 = min(k + 352, K - 1);
        int k12 = min(k + 384, K - 1);
        int k13 = min(k + 416, K - 1);
        int k14 = min(k + 448, K - 1);
        int k15 = min(k + 480, K - 1);
        float w0 = 0f;
        float w1 = 0f;
        float w2 = 0f;
        float w3 = 0f;
        float w4 = 0f;
        float w5 = 0f;
        float w6 = 0f;
        float w7 = 0f;
        float w8 = 0f;
        float w9 = 0f;
        float w10 = 0f;
        float w11 = 0f;
        float w12 = 0f;
        float w13 = 0f;
        float w14 = 0f;
        float w15 = 0f;
        if (slab < 0) {
          w0 = W[bi + k];
          w1 = W[bi + k1];
          w2 = W[bi + k2];
          w3 = W[bi + k3];
          w4 = W[bi + k4];
          w5 = W[bi + k5];
          w6 = W[bi + k6];
          w7 = W[bi + k7];
          w8 = W[bi + k8];
          w9 = W[bi + k9];
          w10 = W[bi + k10];
          w11 = W[bi + k11];
          w12 = W[bi + k12];
          w13 = W[bi + k13];
          w14 = W[bi + k14];
          w15 = W[bi + k15];
        } else {
          int sh = wFmt == WFMT_F32 ? 0 : 1;
          int i0 = (bi + k) >> sh;
          int i1 = (bi + k1) >> sh;
          int i2 = (bi + k2) >> sh;
          int i3 = (bi + k3) >> sh;
          int i4 = (bi + k4) >> sh;
          int i5 = (bi + k5) >> sh;
          int i6 = (bi + k6) >> sh;
          int i7 = (bi + k7) >> sh;
          int i8 = (bi + k8) >> sh;
          int i9 = (bi + k9) >> sh;
          int i10 = (bi + k10) >> sh;
          int i11 = (bi + k11) >> sh;
          int i12 = (bi + k12) >> sh;
          int i13 = (bi + k13) >> sh;
          int i14 = (bi + k14) >> sh;
          int i15 = (bi + k15) >> sh;
          int q0 = 0;
          int q1 = 0;
          int q2 = 0;
          int q3 = 0;
          int q4 = 0;
          int q5 = 0;
          int q6 = 0;
          int q7 = 0;
          int q8 = 0;
          int q9 = 0;
          int q10 = 0;
          int q11 = 0;
          int q12 = 0;
          int q13 = 0;
          int q14 = 0;
          int q15 = 0;
          if (slab == 0) {
            q0 = S0[i0];
            q1 = S0[i1];
            q2 = S0[i2];
            q3 = S0[i3];
            q4 = S0[i4];
            q5 = S0[i5];
            q6 = S0[i6];
            q7 = S0[i7];
            q8 = S0[i8];
            q9 = S0[i9];
            q10 = S0[i10];
            q11 = S0[i11];
            q12 = S0[i12];
            q13 = S0[i13];
            q14 = S0[i14];
            q15 = S0[i15];
          } else if (slab == 1) {
            q0 = S1[i0];
            q1 = S1[i1];
            q2 = S1[i2];
            q3 = S1[i3];
            q4 = S1[i4];
            q5 = S1[i5];
            q6 = S1[i6];
            q7 = S1[i7];
            q8 = S1[i8];
            q9 = S1[i9];
            q10 = S1[i10];
            q11 = S1[i11];
            q12 = S1[i12];
            q13 = S1[i13];
            q14 = S1[i14];
            q15 = S1[i15];
          } else if (slab == 2) {
            q0 = S2[i0];
            q1 = S2[i1];
            q2 = S2[i2];
            q3 = S2[i3];
            q4 = S2[i4];
            q5 = S2[i5];
            q6 = S2[i6];
            q7 = S2[i7];
            q8 = S2[i8];
            q9 = S2[i9];
            q10 = S2[i10];
            q11 = S2[i11];
            q12 = S2[i12];
            q13 = S2[i13];
            q14 = S2[i14];
            q15 = S2[i15];
          } else if (slab == 3) {
            q0 = S3[i0];
            q1 = S3[i1];
            q2 = S3[i2];
            q3 = S3[i3];
            q4 = S3[i4];
            q5 = S3[i5];
            q6 = S3[i6];
            q7 = S3[i7];
            q8 = S3[i8];
            q9 = S3[i9];
            q10 = S3[i10];
            q11 = S3[i11];
            q12 = S3[i12];
            q13 = S3[i13];
            q14 = S3[i14];
            q15 = S3[i15];
          } else if (slab == 4) {
            q0 = S4[i0];
            q1 = S4[i1];
            q2 = S4[i2];
            q3 = S4[i3];
            q4 = S4[i4];
            q5 = S4[i5];
            q6 = S4[i6];
            q7 = S4[i7];
            q8 = S4[i8];
            q9 = S4[i9];
            q10 = S4[i10];
            q11 = S4[i11];
            q12 = S4[i12];
            q13 = S4[i13];
            q14 = S4[i14];
            q15 = S4[i15];
          } else if (slab == 5) {
            q0 = S5[i0];
            q1 = S5[i1];
            q2 = S5[i2];
            q3 = S5[i3];
            q4 = S5[i4];
            q5 = S5[i5];
            q6 = S5[i6];
            q7 = S5[i7];
            q8 = S5[i8];
            q9 = S5[i9];
            q10 = S5[i10];
            q11 = S5[i11];
            q12 = S5[i12];
            q13 = S5[i13];
            q14 = S5[i14];
            q15 = S5[i15];
          } else if (slab == 6) {
            q0 = S6[i0];
            q1 = S6[i1];
            q2 = S6[i2];
            q3 = S6[i3];
            q4 = S6[i4];
            q5 = S6[i5];
            q6 = S6[i6];
            q7 = S6[i7];
            q8 = S6[i8];
            q9 = S6[i9];
            q10 = S6[i10];
            q11 = S6[i11];
            q12 = S6[i12];
            q13 = S6[i13];
            q14 = S6[i14];
            q15 = S6[i15];
          } else {
            q0 = S7[i0];
            q1 = S7[i1];
            q2 = S7[i2];
            q3 = S7[i3];
            q4 = S7[i4];
            q5 = S7[i5];
            q6 = S7[i6];
            q7 = S7[i7];
            q8 = S7[i8];
            q9 = S7[i9];
            q10 = S7[i10];
            q11 = S7[i11];
            q12 = S7[i12];
            q13 = S7[i13];
            q14 = S7[i14];
            q15 = S7[i15];
          }
          w0 = wordFloatLocal(q0, bi + k, pow2);
          w1 = wordFloatLocal(q1, bi + k1, pow2);
          w2 = wordFloatLocal(q2, bi + k2, pow2);
          w3 = wordFloatLocal(q3, bi + k3, pow2);
          w4 = wordFloatLocal(q4, bi + k4, pow2);
          w5 = wordFloatLocal(q5, bi + k5, pow2);
          w6 = wordFloatLocal(q6, bi + k6, pow2);
          w7 = wordFloatLocal(q7, bi + k7, pow2);
          w8 = wordFloatLocal(q8, bi + k8, pow2);
          w9 = wordFloatLocal(q9, bi + k9, pow2);
          w10 = wordFloatLocal(q10, bi + k10, pow2);
          w11 = wordFloatLocal(q11, bi + k11, pow2);
          w12 = wordFloatLocal(q12, bi + k12, pow2);
          w13 = wordFloatLocal(q13, bi + k13, pow2);
          w14 = wordFloatLocal(q14, bi + k14, pow2);
          w15 = wordFloatLocal(q15, bi + k15, pow2);
        }
        if (k + 32 >= K) {
          w1 = 0f;
        }
        if (k + 64 >= K) {
          w2 = 0f;
        }
        if (k + 96 >= K) {
          w3 = 0f;
        }
        if (k + 128 >= K) {
          w4 = 0f;
        }
        if (k + 160 >= K) {
          w5 = 0f;
        }
        if (k + 192 >= K) {
          w6 = 0f;
        }
        if (k + 224 >= K) {
          w7 = 0f;
        }
        if (k + 256 >= K) {
          w8 = 0f;
        }
        if (k + 288 >= K) {
          w9 = 0f;
        }
        if (k + 320 >= K) {
          w10 = 0f;
        }
        if (k + 352 >= K) {
          w11 = 0f;
        }
        if (k + 384 >= K) {
          w12 = 0f;
        }
        if (k + 416 >= K) {
          w13 = 0f;
        }
        if (k + 448 >= K) {
          w14 = 0f;
        }
        if (k + 480 >= K) {
          w15 = 0f;
        }
        if ((fuse & FUSE_NORM) != 0) {
          w0 = w0 * W[gOff + k];
          w1 = w1 * W[gOff + k1];
          w2 = w2 * W[gOff + k2];
          w3 = w3 * W[gOff + k3];
          w4 = w4 * W[gOff + k4];
          w5 = w5 * W[gOff + k5];
          w6 = w6 * W[gOff + k6];
          w7 = w7 * W[gOff + k7];
          w8 = w8 * W[gOff + k8];
          w9 = w9 * W[gOff + k9];
          w10 = w10 * W[gOff + k10];
          w11 = w11 * W[gOff + k11];
          w12 = w12 * W[gOff + k12];
          w13 = w13 * W[gOff + k13];
          w14 = w14 * W[gOff + k14];
          w15 = w15 * W[gOff + k15];
        }
        int ak = a0;
        s0 +=
            dot8(ak, k, k1, k2, k3, k4, k5, k6, k7, w0, w1, w2, w3, w4, w5, w6, w7)
                + dot8(
                    ak, k8, k9, k10, k11, k12, k13, k14, k15, w8, w9, w10, w11, w12, w13, w14, w15);
        if (rows > 1) {
          s1 +=
              dot8(ak + aRs, k, k1, k2, k3, k4, k5, k6, k7, w0, w1, w2, w3, w4, w5, w6, w7)
                  + dot8(
                      ak + aRs, k8, k9, k10, k11, k12, k13, k14, k15, w8, w9, w10, w11, w12, w13,
                      w14, w15);
        }
        if (rows > 2) {
          s2 +=
              dot8(ak + 2 * aRs, k, k1, k2, k3, k4, k5, k6, k7, w0, w1, w2, w3, w4, w5, w6, w7)
                  + dot8(
                      ak + 2 * aRs,
                      k8,
                      k9,
                      k10,
                      k11,
                      k12,
                      k13,
                      k14,
                      k15,
                      w8,
                      w9,
                      w10,
                      w11,
                      w12,
                      w13,
                      w14,
                      w15);
        }
        if (rows > 3) {
          s3 +=
              dot8(ak + 3 * aRs, k, k1, k2, k3, k4, k5, k6, k7, w0, w1, w2, w3, w4, w5, w6, w7)
                  + dot8(
                      ak + 3 * aRs,
                      k8,
                      k9,
                      k10,
                      k11,
                      k12,
                      k13,
                      k14,
                      k15,
                      w8,
                      w9,
                      w10,
                      w11,
                      w12,
                      w13,
                      w14,
                      w15);
        }
        if (rows > 4) {
          s4 +=
              dot8(ak + 4 * aRs, k, k1, k2, k3, k4, k5, k6, k7, w0, w1, w2, w3, w4, w5, w6, w7)
                  + dot8(
                      ak + 4 * aRs,
                      k8,
                      k9,
                      k10,
                      k11,
                      k12,
                      k13,
                      k14,
                      k15,
                      w8,
                      w9,
                      w10,
                      w11,
                      w12,
                      w13,
                      w14,
                      w15);
        }
        if (rows > 5) {
          s5 +=
              dot8(ak + 5 * aRs, k, k1, k2, k3, k4, k5, k6, k7, w0, w1, w2, w3, w4, w5, w6, w7)
                  + dot8(
                      ak + 5 * aRs,
                      k8,
                      k9,
                      k10,
                      k11,
                      k12,
                      k13,
                      k14,
                      k15,
                      w8,
                      w9,
                      w10,
                      w11,
                      w12,
                      w13,
                      w14,
                      w15);
        }
        if (rows > 6) {
          s6 +=
              dot8(ak + 6 * aRs, k, k1, k2, k3, k4, k5, k6, k7, w0, w1, w2, w3, w4, w5, w6, w7)
                  + dot8(
                      ak + 6 * aRs,
                      k8,
                      k9,
                      k10,
                      k11,
                      k12,
                      k13,
                      k14,
                      k15,
                      w8,
                      w9,
                      w10,
                      w11,
                      w12,
                      w13,
                      w14,
                      w15);
        }
        if (rows > 7) {
          s7 +=
              dot8(ak + 7 * aRs, k, k1, k2, k3, k4, k5, k6, k7, w0, w1, w2, w3, w4, w5, w6, w7)
                  + dot8(
                      ak + 7 * aRs,
                      k8,
                      k9,
                      k10,
                      k11,
                      k12,
                      k13,
                      k14,
                      k15,
                      w8,
                      w9,
                      w10,
                      w11,
                      w12,
                      w13,
                      w14,
                      w15);
        }
      }
      // four weights a lane an iteration (short rows: a warp's 128 columns an iteration leave no
      // lane idle at K = 768), loaded before any is used. In both loops, past K the index is
      // clamped and the weight zeroed.
      for (int k = lane + 128 * part; k < K && rows > 0 && loads == 4; k += 128 * split) {
        int k1 = min(k + 32, K - 1);
        int k2 = min(k + 64, K - 1);
        int k3 = min(k + 96, K - 1);
        float w0 = 0f;
        float w1 = 0f;
        float w2 = 0f;
        float w3 = 0f;
        if (slab < 0) {
          w0 = W[bi + k];
          w1 = W[bi + k1];
          w2 = W[bi + k2];
          w3 = W[bi + k3];
        } else {
          int sh = wFmt == WFMT_F32 ? 0 : 1;
          int i0 = (bi + k) >> sh;
          int i1 = (bi + k1) >> sh;
          int i2 = (bi + k2) >> sh;
          int i3 = (bi + k3) >> sh;
          int q0 = 0;
          int q1 = 0;
          int q2 = 0;
          int q3 = 0;
          // one branch loads all four words (a helper call per word would serialise them)
          if (slab == 0) {
            q0 = S0[i0];
            q1 = S0[i1];
            q2 = S0[i2];
            q3 = S0[i3];
          } else if (slab == 1) {
            q0 = S1[i0];
            q1 = S1[i1];
            q2 = S1[i2];
            q3 = S1[i3];
          } else if (slab == 2) {
            q0 = S2[i0];
            q1 = S2[i1];
            q2 = S2[i2];
            q3 = S2[i3];
          } else if (slab == 3) {
            q0 = S3[i0];
            q1 = S3[i1];
            q2 = S3[i2];
            q3 = S3[i3];
          } else if (slab == 4) {
            q0 = S4[i0];
            q1 = S4[i1];
            q2 = S4[i2];
            q3 = S4[i3];
          } else if (slab == 5) {
            q0 = S5[i0];
            q1 = S5[i1];
            q2 = S5[i2];
            q3 = S5[i3];
          } else if (slab == 6) {
            q0 = S6[i0];
            q1 = S6[i1];
            q2 = S6[i2];
            q3 = S6[i3];
          } else {
            q0 = S7[i0];
            q1 = S7[i1];
            q2 = S7[i2];
            q3 = S7[i3];
          }
          w0 = wordFloatLocal(q0, bi + k, pow2);
          w1 = wordFloatLocal(q1, bi + k1, pow2);
          w2 = wordFloatLocal(q2, bi + k2, pow2);
          w3 = wordFloatLocal(q3, bi + k3, pow2);
        }
        if (k + 32 >= K) {
          w1 = 0f;
        }
        if (k + 64 >= K) {
          w2 = 0f;
        }
        if (k + 96 >= K) {
          w3 = 0f;
        }
        if ((fuse & FUSE_NORM) != 0) {
          w0 = w0 * W[gOff + k];
          w1 = w1 * W[gOff + k1];
          w2 = w2 * W[gOff + k2];
          w3 = w3 * W[gOff + k3];
        }
        int ak = a0 + k;
        int d1 = k1 - k;
        int d2 = k2 - k;
        int d3 = k3 - k;
        s0 += dot4(ak, d1, d2, d3, w0, w1, w2, w3);
        if (rows > 1) {
          s1 += dot4(ak + aRs, d1, d2, d3, w0, w1, w2, w3);
        }
        if (rows > 2) {
          s2 += dot4(ak + 2 * aRs, d1, d2, d3, w0, w1, w2, w3);
        }
        if (rows > 3) {
          s3 += dot4(ak + 3 * aRs, d1, d2, d3, w0, w1, w2, w3);
        }
        if (rows > 4) {
          s4 += dot4(ak + 4 * aRs, d1, d2, d3, w0, w1, w2, w3);
        }
        if (rows > 5) {
          s5 += dot4(ak + 5 * aRs, d1, d2, d3, w0, w1, w2, w3);
        }
        if (rows > 6) {
          s6 += dot4(ak + 6 * aRs, d1, d2, d3, w0, w1, w2, w3);
        }
        if (rows > 7) {
          s7 += dot4(ak + 7 * aRs, d1, d2, d3, w0, w1, w2, w3);
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
      localBarrier();
      for (int off = 16; off > 0; off = off / 2) {
        if (lane < off) {
          for (int r = 0; r < rows; r++) {
            lmem[r * wg + lid] += lmem[r * wg + lid + off];
          }
        }
        localBarrier();
      }
      if (part == 0 && lane < rows) {
        float v = 0f;
        for (int w = 0; w < split; w++) {
          v += lmem[lane * wg + (cg + w) * 32];
        }
        if ((fuse & FUSE_NORM) != 0) {
          v = v * lmem[8 * wg + m0 + lane];
        }
        if ((fuse & FUSE_CONV) != 0 && n < plan[p + 16]) {
          if (plan[p + 11] >= 0) {
            v += W[plan[p + 11] + n]; // in_proj's bias, before the conv
          }
          stepConvOne(p, m0 + lane, n, v);
        } else {
          stepGemvStore(p, m0 + lane, n, v);
        }
      }
      localBarrier();
    }
  }

  /**
   * The operands of {@link #stepGemv} for 8 < M ≤ 64: a work-group per 64 columns (grid-stride),
   * thread (tr, tc) of 16 × 16 owning rows tr + 16i and columns tc + 16j (i, j < 4), so that
   * neighbouring threads read neighbouring local addresses.
   */
  private void stepGemm(int p) {
    int M = plan[p + 1];
    int N = plan[p + 2];
    int K = plan[p + 3];
    int aOff = plan[p + 4];
    int aRs = plan[p + 5];
    int slab = plan[p + 6];
    int bOff = plan[p + 7];
    int lid = getLocalId();
    int tr = lid >> 4;
    int tc = lid & 15;
    int bs = TILE_K * TILE_LD; // lmem: A tile at 0 (k-major: [kk·TILE_LD + r]), W tile at bs
    // This thread loads column kk of a k-step's rows tr + 16·i of A and of W.
    int kk = lid & 15;
    int st = kk * TILE_LD + tr;
    int parts = plan[p + 14];
    int kLen = kPartLength(K, parts);
    int tiles = (N + TILE - 1) / TILE;
    for (int t = getGroupId(); t < tiles * parts; t += getNumGroups()) {
      int n0 = (t % tiles) * TILE;
      int kBeg = (t / tiles) * kLen;
      int kEnd = min(K, kBeg + kLen);
      float c00 = 0f;
      float c01 = 0f;
      float c02 = 0f;
      float c03 = 0f;
      float c10 = 0f;
      float c11 = 0f;
      float c12 = 0f;
      float c13 = 0f;
      float c20 = 0f;
      float c21 = 0f;
      float c22 = 0f;
      float c23 = 0f;
      float c30 = 0f;
      float c31 = 0f;
      float c32 = 0f;
      float c33 = 0f;
      // Iteration k0 loads the tiles of k-step k0 + TILE_K into registers, computes k-step k0
      // from local memory while those loads are in flight, then stores them for the next. The
      // loads are written out: inside the whole program the compiler may not inline a helper.
      for (int k0 = kBeg - TILE_K; k0 < kEnd; k0 += TILE_K) {
        int k = k0 + TILE_K + kk;
        boolean kIn = k < kEnd;
        int ai = aOff + tr * aRs + k;
        float a0 = 0f;
        float a1 = 0f;
        float a2 = 0f;
        float a3 = 0f;
        if (kIn && tr < M) {
          a0 = act[ai];
        }
        if (kIn && tr + 16 < M) {
          a1 = act[ai + 16 * aRs];
        }
        if (kIn && tr + 32 < M) {
          a2 = act[ai + 32 * aRs];
        }
        if (kIn && tr + 48 < M) {
          a3 = act[ai + 48 * aRs];
        }
        int n = n0 + tr;
        int wi = bOff + n * K + k;
        float w0 = 0f;
        float w1 = 0f;
        float w2 = 0f;
        float w3 = 0f;
        if (kIn && n < N) {
          w0 = slab < 0 ? W[wi] : slabFloat(slab, wi);
        }
        if (kIn && n + 16 < N) {
          w1 = slab < 0 ? W[wi + 16 * K] : slabFloat(slab, wi + 16 * K);
        }
        if (kIn && n + 32 < N) {
          w2 = slab < 0 ? W[wi + 32 * K] : slabFloat(slab, wi + 32 * K);
        }
        if (kIn && n + 48 < N) {
          w3 = slab < 0 ? W[wi + 48 * K] : slabFloat(slab, wi + 48 * K);
        }
        for (int j = 0; j < TILE_K && k0 >= kBeg; j++) {
          int ka = j * TILE_LD + tr;
          int kb = bs + j * TILE_LD + tc;
          float x0 = lmem[ka];
          float x1 = lmem[ka + 16];
          float x2 = lmem[ka + 32];
          float x3 = lmem[ka + 48];
          float y0 = lmem[kb];
          float y1 = lmem[kb + 16];
          float y2 = lmem[kb + 32];
          float y3 = lmem[kb + 48];
          c00 += x0 * y0;
          c01 += x0 * y1;
          c02 += x0 * y2;
          c03 += x0 * y3;
          c10 += x1 * y0;
          c11 += x1 * y1;
          c12 += x1 * y2;
          c13 += x1 * y3;
          c20 += x2 * y0;
          c21 += x2 * y1;
          c22 += x2 * y2;
          c23 += x2 * y3;
          c30 += x3 * y0;
          c31 += x3 * y1;
          c32 += x3 * y2;
          c33 += x3 * y3;
        }
        localBarrier();
        lmem[st] = a0;
        lmem[st + 16] = a1;
        lmem[st + 32] = a2;
        lmem[st + 48] = a3;
        lmem[bs + st] = w0;
        lmem[bs + st + 16] = w1;
        lmem[bs + st + 32] = w2;
        lmem[bs + st + 48] = w3;
        localBarrier();
      }
      int pOff = parts > 1 ? (t / tiles) * M * N : -1;
      stepGemmStore(p, pOff, M, N, tr, n0 + tc, c00, c01, c02, c03);
      stepGemmStore(p, pOff, M, N, tr + 16, n0 + tc, c10, c11, c12, c13);
      stepGemmStore(p, pOff, M, N, tr + 32, n0 + tc, c20, c21, c22, c23);
      stepGemmStore(p, pOff, M, N, tr + 48, n0 + tc, c30, c31, c32, c33);
    }
  }

  /** The k range of each of a split product's parts: a whole number of k-steps. */
  static int kPartLength(int K, int parts) {
    int steps = (K + TILE_K - 1) / TILE_K;
    return (steps + parts - 1) / parts * TILE_K;
  }

  /**
   * A split product's second pass (the same record as {@link #stepGemm}'s): each output the sum of
   * its parts' partial sums in {@code part}, in part order, then the product's epilogue.
   */
  private void stepGemmSum(int p) {
    int M = plan[p + 1];
    int N = plan[p + 2];
    int parts = plan[p + 14];
    for (int i = getGlobalId(); i < M * N; i += getGlobalSize()) {
      float v = 0f;
      for (int q = 0; q < parts; q++) {
        v += part[q * M * N + i];
      }
      int m = i / N;
      stepGemvStore(p, m, i - m * N, v);
    }
  }

  /**
   * Row m's four outputs at columns n, n + 16, n + 32, n + 48 (those inside the product): through
   * the product's epilogue, or, for a part of a split product, as they are into part[pOff + m·N +
   * n] for {@link #stepGemmSum}.
   */
  private void stepGemmStore(
      int p, int pOff, int M, int N, int m, int n, float v0, float v1, float v2, float v3) {
    if (m < M && pOff >= 0) {
      int i = pOff + m * N + n;
      if (n < N) {
        part[i] = v0;
      }
      if (n + 16 < N) {
        part[i + 16] = v1;
      }
      if (n + 32 < N) {
        part[i + 32] = v2;
      }
      if (n + 48 < N) {
        part[i + 48] = v3;
      }
    } else if (m < M) {
      if (n < N) {
        stepGemvStore(p, m, n, v0);
      }
      if (n + 16 < N) {
        stepGemvStore(p, m, n + 16, v1);
      }
      if (n + 32 < N) {
        stepGemvStore(p, m, n + 32, v2);
      }
      if (n + 48 < N) {
        stepGemvStore(p, m, n + 48, v3);
      }
    }
  }

  /** act[ak]·w0 + act[ak + d1]·w1 + act[ak + d2]·w2 + act[ak + d3]·w3: one row's four terms. */
  private float dot4(int ak, int d1, int d2, int d3, float w0, float w1, float w2, float w3) {
    return act[ak] * w0 + act[ak + d1] * w1 + act[ak + d2] * w2 + act[ak + d3] * w3;
  }

  /**
   * Σ_j act[ak + kj]·wj: one row's (at act[ak]) terms of the eight weights a lane loads an
   * iteration, at columns k0 … k7.
   */
  private float dot8(
      int ak,
      int k0,
      int k1,
      int k2,
      int k3,
      int k4,
      int k5,
      int k6,
      int k7,
      float w0,
      float w1,
      float w2,
      float w3,
      float w4,
      float w5,
      float w6,
      float w7) {
    return act[ak + k0] * w0
        + act[ak + k1] * w1
        + act[ak + k2] * w2
        + act[ak + k3] * w3
        + act[ak + k4] * w4
        + act[ak + k5] * w5
        + act[ak + k6] * w6
        + act[ak + k7] * w7;
  }

  /** The product's epilogue: + bias, softplus, then = or += into act or out. */
  private void stepGemvStore(int p, int m, int n, float v) {
    int cTo = plan[p + 8];
    int i = plan[p + 9] + m * plan[p + 10] + n;
    int biasOff = plan[p + 11];
    float r = v;
    if (biasOff >= 0) {
      r += W[biasOff + n];
    }
    if (plan[p + 13] == 1 && r <= 20f) {
      r = log1p(exp(r));
    }
    if (cTo == C_OUT) {
      out[i] = r;
    } else if (plan[p + 12] == 1) {
      act[i] += r;
    } else {
      act[i] = r;
    }
  }

  /**
   * [B, ED, K, inOff, inStride, outOff, wOff, biasOff, stateOff, parts, inBiasOff]: for each (b,
   * e), the conv over the K−1 kept inputs state (B, ED, K−1) and x = act[inOff + b·inStride + e],
   * SiLU into act[outOff + b·ED + e]; x joins the kept inputs. With parts > 0, Mamba-1's in_proj
   * was split over k (rows of inStride = 2·ED columns, x then z): x and z are first the sums of
   * their parts (+ in_proj's bias), written into act (z for the scan step).
   */
  private void stepConv(int p) {
    int B = plan[p + 1];
    int ED = plan[p + 2];
    int K = plan[p + 3];
    int inOff = plan[p + 4];
    int inStride = plan[p + 5];
    int outOff = plan[p + 6];
    int wOff = plan[p + 7];
    int biasOff = plan[p + 8];
    int stateOff = plan[p + 9];
    int parts = plan[p + 10];
    int inBiasOff = plan[p + 11];
    int K1 = K - 1;
    for (int i = getGlobalId(); i < B * ED; i += getGlobalSize()) {
      int b = i / ED;
      int e = i - b * ED;
      int so = stateOff + i * K1;
      int xi = b * inStride + e;
      if (parts > 0) {
        float xs = 0f;
        float zs = 0f;
        for (int q = 0; q < parts; q++) {
          xs += part[q * B * inStride + xi];
          zs += part[q * B * inStride + xi + ED];
        }
        if (inBiasOff >= 0) {
          xs += W[inBiasOff + e];
          zs += W[inBiasOff + ED + e];
        }
        act[inOff + xi] = xs;
        act[inOff + xi + ED] = zs;
      }
      act[outOff + i] = convSilu(e, K, wOff, biasOff, so, act[inOff + xi]);
    }
  }

  /**
   * SiLU of channel e's conv (weights (ED, K) at W[wOff], bias at W[biasOff] or −1) over its K−1
   * kept inputs at state[so] and x; x then joins the kept inputs.
   */
  private float convSilu(int e, int K, int wOff, int biasOff, int so, float x) {
    int K1 = K - 1;
    float acc = 0f;
    if (biasOff >= 0) {
      acc = W[biasOff + e];
    }
    for (int k = 0; k < K1; k++) {
      acc += W[wOff + e * K + k] * state[so + k];
    }
    acc += W[wOff + e * K + K1] * x;
    for (int k = 0; k < K1 - 1; k++) {
      state[so + k] = state[so + k + 1];
    }
    if (K1 > 0) {
      state[so + K1 - 1] = x;
    }
    return acc / (1f + exp(-acc));
  }

  /**
   * [rows, P, R, N, dbcOff, rstdOff], eps: each row's parts [0, R), [R, R+N), [R+N, R+2N) of
   * act[dbcOff + row·P ...] become v·r with r = 1/sqrt(mean(v²) + eps), a thread per (row, part)
   * ({@code RmsNorm.rmsnormColumnsForward}); r goes to act[rstdOff + part·rows + row] when rstdOff
   * ≥ 0 (the training backward's).
   */
  private void segmentNorms(int p) {
    int rows = plan[p + 1];
    int P = plan[p + 2];
    int R = plan[p + 3];
    int N = plan[p + 4];
    int dbcOff = plan[p + 5];
    int rstdOff = plan[p + 6];
    float eps = planF[p];
    for (int i = getGlobalId(); i < rows * 3; i += getGlobalSize()) {
      int row = i / 3;
      int part = i - row * 3;
      int o = dbcOff + row * P;
      int n = R;
      if (part > 0) {
        o += R + (part - 1) * N;
        n = N;
      }
      float ss = 0f;
      for (int j = 0; j < n; j++) {
        float v = act[o + j];
        ss += v * v;
      }
      float r = 1f / sqrt(ss / n + eps);
      for (int j = 0; j < n; j++) {
        act[o + j] = act[o + j] * r;
      }
      if (rstdOff >= 0) {
        act[rstdOff + part * rows + row] = r;
      }
    }
  }

  /**
   * [rows, P, R, N, dbcOff, rstdOff, dOff]: the gradient of {@link #segmentNorms}, in place in
   * gact[dOff + row·P ...], from its output v·r (act[dbcOff ...]) and r: with y = v·r and dy the
   * gradient of y, dv = r·(dy − y·Σ dy·y / n) ({@code RmsNorm.rmsnormColumnsBackward}'s r·dy −
   * r³/n·v·Σ dy·v, written with the output the forward kept), a thread per (row, part).
   */
  private void segmentNormsBackward(int p) {
    int rows = plan[p + 1];
    int P = plan[p + 2];
    int R = plan[p + 3];
    int N = plan[p + 4];
    int dbcOff = plan[p + 5];
    int rstdOff = plan[p + 6];
    int dOff = plan[p + 7];
    for (int i = getGlobalId(); i < rows * 3; i += getGlobalSize()) {
      int row = i / 3;
      int part = i - row * 3;
      int o = row * P;
      int n = R;
      if (part > 0) {
        o += R + (part - 1) * N;
        n = N;
      }
      float dot = 0f;
      for (int j = 0; j < n; j++) {
        dot += gact[dOff + o + j] * act[dbcOff + o + j];
      }
      float r = act[rstdOff + part * rows + row];
      float m = dot / n;
      for (int j = 0; j < n; j++) {
        gact[dOff + o + j] = r * (gact[dOff + o + j] - act[dbcOff + o + j] * m);
      }
    }
  }

  /**
   * The conv step of one (row m, channel e) on its new input x (in_proj's output column e), fused
   * into in_proj's epilogue; operands at record ints 16.. [convCols = ED, K, wOff, biasOff,
   * stateOff, xsOff]. The same arithmetic as {@link #stepConv}.
   */
  private void stepConvOne(int p, int m, int e, float x) {
    int ED = plan[p + 16];
    int K = plan[p + 17];
    int so = plan[p + 20] + (m * ED + e) * (K - 1);
    act[plan[p + 21] + m * ED + e] = convSilu(e, K, plan[p + 18], plan[p + 19], so, x);
  }

  /**
   * [B, ED, N, dbcOff, P, R, uOff, zOff, zStride, yOff, a2Off, dOff, hOff, dtSlab, dtOff,
   * dtBiasOff, falcon], eps: per (b, e), Δ = softplus(Σ_r δ[b, r]·dt_proj[e, r] + bias[e]) with
   * dt_proj (ED, R) in W (dtSlab −1) or a slab, then h[n] = exp(Δ·A[n])·h[n] + Δ·B[n]·u for the
   * state h (B, N, ED) at hOff, y = Σ C[n]·h[n] + D·u, gated by SiLU(z); δ, B and C are columns
   * 0.., R.. and R+N.. of the x_proj row (stride P). Falcon-Mamba (falcon 1): δ, B and C each
   * scaled by the 1/rms of its part of the row first.
   */
  private void stepScanDt(int p) {
    int B = plan[p + 1];
    int ED = plan[p + 2];
    int N = plan[p + 3];
    int dbcOff = plan[p + 4];
    int P = plan[p + 5];
    int R = plan[p + 6];
    int uOff = plan[p + 7];
    int zOff = plan[p + 8];
    int zStride = plan[p + 9];
    int yOff = plan[p + 10];
    int a2Off = plan[p + 11];
    int dOff = plan[p + 12];
    int hOff = plan[p + 13];
    int dtSlab = plan[p + 14];
    int dtOff = plan[p + 15];
    int dtBiasOff = plan[p + 16];
    int falcon = plan[p + 17];
    float eps = planF[p];
    if (B * ED >= getNumGroups() / 8 * STEP_THREADS) {
      stepScanDtThreads(p);
      return;
    }
    int lid = getLocalId();
    // G lanes per (b, e), G = 16 when the N states fit (a half-warp), else 32: they split the R
    // terms of Δ (a coalesced row of dt_proj) and the N states. A thread per (b, e) would leave
    // most of the device idle at small B (B·ED threads) and read dt_proj's rows R floats apart,
    // one load after another; 16 lanes for 16 states keep every lane of the states' loop busy and
    // give a group 16 channels an iteration.
    int G = N <= 16 ? 16 : 32;
    int lane = lid & (G - 1);
    int teams = STEP_THREADS / G;
    int red = lid - lane; // this team's G floats of lmem for its sums
    for (int c0 = getGroupId() * teams; c0 < B * ED; c0 += getNumGroups() * teams) {
      int i = c0 + lid / G;
      int on = i < B * ED ? 1 : 0; // a team past the end joins the sums' barriers only
      if (on == 0) {
        i = 0;
      }
      int b = i / ED;
      int e = i - b * ED;
      int row = dbcOff + b * P;
      float rD = 1f;
      float rB = 1f;
      float rC = 1f;
      if (falcon == 1) {
        float sD = 0f;
        for (int r = lane; r < R; r += G) {
          sD += act[row + r] * act[row + r];
        }
        float sB = 0f;
        float sC = 0f;
        for (int n = lane; n < N; n += G) {
          sB += act[row + R + n] * act[row + R + n];
          sC += act[row + R + N + n] * act[row + R + N + n];
        }
        rD = 1f / sqrt(teamSum(sD, red, lane, G) / R + eps);
        rB = 1f / sqrt(teamSum(sB, red, lane, G) / N + eps);
        rC = 1f / sqrt(teamSum(sC, red, lane, G) / N + eps);
      }
      float part = 0f;
      for (int r = lane; r < R; r += G) {
        int j = dtOff + e * R + r;
        float w = dtSlab < 0 ? W[j] : slabFloat(dtSlab, j);
        part += act[row + r] * w;
      }
      float dt = teamSum(part, red, lane, G) * rD;
      if (dtBiasOff >= 0) {
        dt += W[dtBiasOff + e];
      }
      if (dt <= 20f) {
        dt = log1p(exp(dt));
      }
      float u = act[uOff + i];
      float du = dt * u;
      int h0 = hOff + b * N * ED + e;
      float yPart = 0f;
      for (int n = lane; n < N; n += G) {
        int hi = h0 + n * ED;
        float h = exp2(dt * W[a2Off + n * ED + e]) * state[hi] + du * act[row + R + n] * rB;
        if (on == 1) {
          state[hi] = h;
        }
        yPart += act[row + R + N + n] * rC * h;
      }
      float y = teamSum(yPart, red, lane, G) + W[dOff + e] * u;
      if (on == 1 && lane == 0) {
        float z = act[zOff + b * zStride + e];
        act[yOff + i] = y * z / (1f + exp(-z));
      }
    }
  }

  /**
   * {@link #stepScanDt} with a thread per (b, e), when there are enough channels to give every
   * compute unit a group of them (B·ED ≥ 256 · units): no sums across lanes, so no barriers, which
   * otherwise bound the pass (twelve a channel for its two sums over a team). The states (B, N, ED)
   * and A (N, ED) are read coalesced along e; a dt_proj row is R consecutive floats.
   */
  private void stepScanDtThreads(int p) {
    int B = plan[p + 1];
    int ED = plan[p + 2];
    int N = plan[p + 3];
    int dbcOff = plan[p + 4];
    int P = plan[p + 5];
    int R = plan[p + 6];
    int uOff = plan[p + 7];
    int zOff = plan[p + 8];
    int zStride = plan[p + 9];
    int yOff = plan[p + 10];
    int a2Off = plan[p + 11];
    int dOff = plan[p + 12];
    int hOff = plan[p + 13];
    int dtSlab = plan[p + 14];
    int dtOff = plan[p + 15];
    int dtBiasOff = plan[p + 16];
    int falcon = plan[p + 17];
    float eps = planF[p];
    for (int i = getGlobalId(); i < B * ED; i += getGlobalSize()) {
      int b = i / ED;
      int e = i - b * ED;
      int row = dbcOff + b * P;
      float rD = 1f;
      float rB = 1f;
      float rC = 1f;
      if (falcon == 1) {
        float sD = 0f;
        for (int r = 0; r < R; r++) {
          sD += act[row + r] * act[row + r];
        }
        float sB = 0f;
        float sC = 0f;
        for (int n = 0; n < N; n++) {
          sB += act[row + R + n] * act[row + R + n];
          sC += act[row + R + N + n] * act[row + R + N + n];
        }
        rD = 1f / sqrt(sD / R + eps);
        rB = 1f / sqrt(sB / N + eps);
        rC = 1f / sqrt(sC / N + eps);
      }
      float dt = 0f;
      for (int r = 0; r < R; r++) {
        int j = dtOff + e * R + r;
        float w = dtSlab < 0 ? W[j] : slabFloat(dtSlab, j);
        dt += act[row + r] * w;
      }
      dt = dt * rD;
      if (dtBiasOff >= 0) {
        dt += W[dtBiasOff + e];
      }
      if (dt <= 20f) {
        dt = log1p(exp(dt));
      }
      float u = act[uOff + i];
      float du = dt * u;
      int h0 = hOff + b * N * ED + e;
      float y = W[dOff + e] * u;
      for (int n = 0; n < N; n++) {
        int hi = h0 + n * ED;
        float h = exp2(dt * W[a2Off + n * ED + e]) * state[hi] + du * act[row + R + n] * rB;
        state[hi] = h;
        y += act[row + R + N + n] * rC * h;
      }
      float z = act[zOff + b * zStride + e];
      act[yOff + i] = y * z / (1f + exp(-z));
    }
  }

  /**
   * Σ of v over the G (a power of two ≤ 32) lanes of a team, through lmem[red, red + G); every lane
   * gets it. Every thread of the group calls it (its barriers are the group's).
   */
  private float teamSum(float v, int red, int lane, int G) {
    localBarrier();
    lmem[red + lane] = v;
    localBarrier();
    for (int off = G / 2; off > 0; off = off / 2) {
      if (lane < off) {
        lmem[red + lane] += lmem[red + lane + off];
      }
      localBarrier();
    }
    return lmem[red];
  }
}
