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
 *   <li>{@link #OP_GEMM}, {@link #OP_GEMV}, {@link #OP_GEMM_SPLIT_FIN}: the matrix products, in
 *       {@link ProductKernel};
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
public class MambaKernel extends ProductKernel {
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

  int stSlab; //   OP_STAGE: W[stDst + i] = the slab's element stSrc + i, for i < stN
  int stSrc;
  int stDst;
  int stN;
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
    } else if (op == OP_SCAN_BWD_CARRY) {
      scanBackwardCarry();
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
