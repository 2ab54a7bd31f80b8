package org.mambaspark.kernel;

import org.mambaspark.model.Architecture;
import org.mambaspark.model.LayerWeights;
import org.mambaspark.model.Mamba2LayerWeights;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaWeights;

/**
 * The training step's backward as launches of the model kernel ({@code Backprop}): from the
 * cross-entropy through lm_head, norm_f and each layer, last first, to the embeddings, with each
 * layer's forward recomputed from its saved input ({@link ForwardPlan#layerForward}); gradients
 * accumulate in the kernel's G, laid out as the weights in W, and are added into the host's
 * gradient arrays ({@link #addGradients}).
 */
final class BackwardPlan {
  /** Rows per block of the column-sum reductions. */
  static final int COLSUM_ROWS = 256;

  private final LaunchContext ctx;
  private final MambaKernel kernel;
  private final MambaConfig c;
  private final DeviceWeights wl;
  private final ForwardPlan forward;
  private final boolean falcon;
  private final boolean ssd;

  BackwardPlan(LaunchContext ctx, MambaConfig c, DeviceWeights wl, ForwardPlan forward) {
    this.ctx = ctx;
    this.kernel = ctx.kernel;
    this.c = c;
    this.wl = wl;
    this.forward = forward;
    this.falcon = c.architecture == Architecture.FALCON_MAMBA;
    this.ssd = c.architecture == Architecture.MAMBA2;
  }

  void backwardAll(Layout a, float scale) {
    int BT = a.BT;
    int D = c.hiddenSize;
    int V = c.vocabSize;
    int ACT = MambaKernel.SEL_ACT;
    int GA = MambaKernel.SEL_GACT;
    int G = MambaKernel.SEL_G;
    int SAVED = MambaKernel.SEL_SAVED;
    // cross-entropy and lm_head, in row blocks: dhidden, dlm_head
    ctx.fill(GA, a.dhidden, BT * D);
    for (int r0 = 0; r0 < BT; r0 += a.logitRows) {
      int n = Math.min(a.logitRows, BT - r0);
      forward.lmHeadCrossEntropy(a, r0, n, scale, true);
      linearBackward(
          n,
          V,
          D,
          ACT,
          a.logits,
          V,
          (int) wl.lmHead,
          a.hidden + r0 * D,
          D,
          a.dhidden + r0 * D,
          D,
          true);
    }
    // norm_f
    ctx.fill(GA, a.dx, BT * D);
    rmsnormBackward(a, GA, a.dhidden, ACT, a.x, wl.normF, a.rstdF);
    int I = c.inProjSize();
    for (int l = c.numLayers - 1; l >= 0; l--) {
      int in = l * BT * D;
      forward.layerForward(a, l, SAVED, in, false, false);
      ctx.fill(GA, a.dxz, BT * I);
      if (ssd) {
        ssdMixerBackward(a, l);
      } else {
        selectiveMixerBackward(a, l);
      }
      // in_proj
      linearBackward(BT, I, D, GA, a.dxz, I, wl.inProj[l], a.xNorm, D, a.dxNorm, D, false);
      if (wl.inProjBias[l] >= 0) {
        colsum(BT, I, GA, a.dxz, I, G, wl.inProjBias[l]);
      }
      // the layer's rmsnorm
      rmsnormBackward(a, GA, a.dxNorm, SAVED, in, wl.norm[l], a.rstd);
    }
    // embeddings
    kernel.ebTokOff = a.ebTok;
    kernel.ebStartOff = a.ebStart;
    kernel.ebPosOff = a.ebPos;
    kernel.ebDxOff = a.dx;
    kernel.embOff = (int) wl.emb;
    kernel.embD = D;
    ctx.launch(MambaKernel.OP_EMBED_BWD, kernel.ebUnique * D, 256);
  }

  /**
   * A linear layer's backward ({@code Matmul.matmulBackward}) for y (M, N) = x (M, K) · Wᵀ, W (N,
   * K) at wOff: dx (gact, row stride dxRs) (+)= dy · W and dW += dyᵀ · x, with dy at (dySel, dyOff,
   * row stride dyRs) and x in act (row stride xRs); a bias's gradient is the caller's column sum.
   */
  private void linearBackward(
      int M,
      int N,
      int K,
      int dySel,
      int dyOff,
      int dyRs,
      int wOff,
      int xOff,
      int xRs,
      int dxOff,
      int dxRs,
      boolean accumulate) {
    int none = MambaKernel.ACT_NONE;
    ctx.matmul(
        new Product(
            M,
            K,
            N,
            new Product.View(dySel, dyOff, dyRs, 1),
            new Product.View(MambaKernel.SEL_W, wOff, K, 1),
            new Product.View(MambaKernel.SEL_GACT, dxOff, dxRs, 1),
            -1,
            accumulate,
            none));
    ctx.matmul(
        new Product(
            N,
            K,
            M,
            new Product.View(dySel, dyOff, 1, dyRs),
            new Product.View(MambaKernel.SEL_ACT, xOff, xRs, 1),
            new Product.View(MambaKernel.SEL_G, wOff, K, 1),
            -1,
            true,
            none));
  }

  /**
   * dy (BT, ED) = dx · out_proj, d out_proj += dxᵀ · the layer's out_proj input at act[inOff], d
   * bias += Σ_t dx.
   */
  private void outProjBackward(Layout a, int l, int inOff, int dyOff) {
    int BT = a.BT;
    int D = c.hiddenSize;
    int ED = c.intermediateSize;
    int GA = MambaKernel.SEL_GACT;
    int G = MambaKernel.SEL_G;
    linearBackward(BT, D, ED, GA, a.dx, D, wl.outProj[l], inOff, ED, dyOff, ED, false);
    if (wl.outProjBias[l] >= 0) {
      colsum(BT, D, GA, a.dx, D, G, wl.outProjBias[l]);
    }
  }

  /**
   * The causal conv + SiLU's backward for the conv fields set ({@link ForwardPlan#setConv}): from
   * its output's gradient at gact[dxsOff] (BT, channels) into in_proj's output gradient (dxz), and
   * its weight and bias gradients.
   */
  private void convBackward(Layout a, int l, int dxsOff) {
    int BT = a.BT;
    int channels = kernel.cvED;
    kernel.cvOutOff = a.dpre;
    kernel.cvDxsOff = dxsOff;
    kernel.cvDxOff = a.dxz + (kernel.cvInOff - a.xz);
    kernel.cvPartOff = 0;
    kernel.cvRowBlock = COLSUM_ROWS;
    kernel.cvGwOff = wl.convW[l];
    kernel.cvGbOff = wl.convB[l];
    ctx.launch(MambaKernel.OP_CONV_BWD_DPRE, BT * channels, 256);
    ctx.launch(MambaKernel.OP_CONV_BWD_DX, BT * channels, 256);
    ctx.launch(MambaKernel.OP_CONV_BWD_DW, ((BT + COLSUM_ROWS - 1) / COLSUM_ROWS) * channels, 128);
    ctx.launch(MambaKernel.OP_CONV_BWD_DW_FIN, channels * (c.convKernel + 1), 128);
  }

  /**
   * Mamba-1's and Falcon-Mamba's mixer backward, from dx (the layer's output gradient) to dxz
   * (in_proj's output gradient), over the layer's recomputed forward ({@code SelectiveMixer}).
   */
  private void selectiveMixerBackward(Layout a, int l) {
    int BT = a.BT;
    int ED = c.intermediateSize;
    int R = c.timeStepRank;
    int P = c.xProjSize();
    int GA = MambaKernel.SEL_GACT;
    int G = MambaKernel.SEL_G;
    outProjBackward(a, l, a.y, a.dy);
    // scan
    ctx.fill(GA, a.ddbc, BT * P); // the scan writes du (dxs), dΔ and dz; dB|dC are added
    forward.setScan(a, l, false);
    kernel.dyOff = a.dy;
    kernel.duOff = a.dxs;
    kernel.ddtOff = a.ddelta;
    kernel.ddbcOff = a.ddbc;
    kernel.dzOff = a.dxz + ED;
    int nEb = (ED + a.scanBwd.ce - 1) / a.scanBwd.ce;
    int rowParts = a.B * a.scanParts;
    kernel.pBcOff = 0;
    kernel.pAOff = nEb * BT * 2 * c.stateSize;
    kernel.pDOff = kernel.pAOff + rowParts * c.stateSize * ED;
    kernel.pWqOff = kernel.pDOff + rowParts * ED;
    kernel.pWsOff = kernel.pWqOff + rowParts * c.stateSize * ED;
    kernel.sParts = a.scanParts;
    kernel.sGradMode = 1;
    kernel.dAOff = wl.a2[l];
    kernel.dDOff = wl.dSkip[l];
    kernel.sCe = a.scanBwd.ce;
    kernel.sSeg = a.scanBwd.segments;
    kernel.sItems = a.scanBwd.items;
    int threads = a.scanBwd.threads();
    if (a.scanParts > 1) {
      ctx.launch(ScanKernel.OP_SCAN_BWD_CARRY, a.B * nEb * (a.scanParts - 1) * threads, threads);
    }
    ctx.launch(ScanKernel.OP_SCAN_BWD4, rowParts * nEb * threads, threads);
    ctx.launch(ScanKernel.OP_SCAN_BWD_REDUCE, BT * 2 * c.stateSize + c.stateSize * ED + ED, 128);
    // Δ = softplus(dt_proj(dbc[:, :R]))
    kernel.eN = BT * ED;
    kernel.eDstOff = a.ddelta;
    kernel.eSrcOff = a.delta;
    ctx.launch(MambaKernel.OP_SOFTPLUS_BWD, BT * ED, 256);
    linearBackward(BT, ED, R, GA, a.ddelta, ED, wl.dtProj[l], a.dbc, P, a.ddbc, P, true);
    colsum(BT, ED, GA, a.ddelta, ED, G, wl.dtProjBias[l]);
    if (falcon) {
      partNormsBackward();
    }
    // x_proj
    linearBackward(BT, P, ED, GA, a.ddbc, P, wl.xProj[l], a.xs, ED, a.dxs, ED, true);
    forward.setConv(a, l, false);
    convBackward(a, l, a.dxs);
  }

  /**
   * Falcon-Mamba: x_proj's output gradient (ddbc) from the normed parts' gradient, in place; the
   * records are ForwardPlan's part norms, which the layer's recompute has just run.
   */
  private void partNormsBackward() {
    ctx.passes(1, 1, "falcon part norms backward");
  }

  /**
   * Mamba-2's mixer backward ({@code SsdMixer.backward}), from dx to dxz over the layer's
   * recomputed forward: out_proj, then {@link SsdRecords#backward}'s passes (the gated norm, the
   * SSD scan by chunks from the last, dδ, d A_log and d D) as one launch, the column sums of the
   * gated norm's weight and dt_bias gradients, and the conv over xBC.
   */
  private void ssdMixerBackward(Layout a, int l) {
    int BT = a.BT;
    int ED = c.intermediateSize;
    int C = c.convChannels();
    int I = c.inProjSize();
    int GA = MambaKernel.SEL_GACT;
    int G = MambaKernel.SEL_G;
    outProjBackward(a, l, a.dbc, a.ddbc);
    int n = SsdRecords.backwardPasses(a);
    ssdBackwardRecords(a);
    ctx.passes(ctx.forwardSlots() + l * n, n, "ssd backward");
    colsum(BT, ED, GA, a.dpre, ED, G, wl.gatedNorm[l]);
    colsum(BT, c.numHeads, GA, a.dxz + ED + C, I, G, wl.dtProjBias[l]);
    forward.setSsdConv(a, l, false);
    convBackward(a, l, a.dxs);
  }

  /**
   * Mamba-2: each layer's {@link SsdRecords#backward} records after the forward's, where the decode
   * plan's go (which is then rebuilt when next needed).
   */
  private void ssdBackwardRecords(Layout a) {
    Long key = ((long) a.B << 32) | a.L;
    if (key.equals(ctx.tableTail)) {
      return;
    }
    int REC = StepKernel.REC;
    int n = SsdRecords.backwardPasses(a);
    ctx.ensureTable((ctx.forwardSlots() + c.numLayers * n) * REC);
    for (int l = 0; l < c.numLayers; l++) {
      SsdRecords.backward(kernel.plan, kernel.planF, ctx.forwardSlots() + l * n, c, wl, l, a);
    }
    ctx.putTable();
    ctx.tableTail = key;
  }

  /** dinp (dx) += rmsnorm backward; dweight via column partials (Σ_t dout·inp·rstd). */
  private void rmsnormBackward(
      Layout a, int doutSel, int doutOff, int inSel, int inOff, int wOff, int rstdOff) {
    int D = c.hiddenSize;
    kernel.rnD = D;
    kernel.rnInSel = inSel;
    kernel.rnInOff = inOff;
    kernel.rnWOff = wOff;
    kernel.rnRstdOff = rstdOff;
    kernel.rnDoutSel = doutSel;
    kernel.rnDoutOff = doutOff;
    kernel.rnDinpSel = MambaKernel.SEL_GACT;
    kernel.rnDinpOff = a.dx;
    ctx.launch(MambaKernel.OP_RMSNORM_BWD, a.BT * 128, 128);
    kernel.cpBSel = inSel;
    kernel.cpBOff = inOff;
    kernel.cpBStride = D;
    kernel.cpRstdOff = rstdOff;
    columnSums(1, a.BT, D, doutSel, doutOff, D, MambaKernel.SEL_G, wOff);
  }

  /** dst[dstOff + col] += Σ_t src[srcOff + t·stride + col], for a bias gradient. */
  private void colsum(
      int rows, int cols, int srcSel, int srcOff, int stride, int dstSel, int dstOff) {
    columnSums(0, rows, cols, srcSel, srcOff, stride, dstSel, dstOff);
  }

  /**
   * dst[dstOff + col] += Σ_t of row t's term in column col, as partial sums per block of {@link
   * #COLSUM_ROWS} rows and then their sum: a[aOff + t·aStride + col] (mode 0), or that times the B
   * operand and 1/rms set in the kernel (mode 1, rmsnorm's weight gradient).
   */
  private void columnSums(
      int mode, int rows, int cols, int aSel, int aOff, int aStride, int dstSel, int dstOff) {
    kernel.cpRows = rows;
    kernel.cpCols = cols;
    kernel.cpRowBlock = COLSUM_ROWS;
    kernel.cpMode = mode;
    kernel.cpASel = aSel;
    kernel.cpAOff = aOff;
    kernel.cpAStride = aStride;
    kernel.cpPartOff = 0;
    kernel.cpDstSel = dstSel;
    kernel.cpDstOff = dstOff;
    int nRb = (rows + COLSUM_ROWS - 1) / COLSUM_ROWS;
    ctx.launch(MambaKernel.OP_COLSUM_PART, nRb * cols, 128);
    ctx.launch(MambaKernel.OP_COLSUM_FIN, cols, 128);
  }

  void addGradients(MambaWeights grads) {
    float[] G = kernel.G;
    for (int l = 0; l < grads.mamba2Layers.length; l++) {
      Mamba2LayerWeights g = grads.mamba2Layers[l];
      add(g.norm, G, wl.norm[l]);
      add(g.inProj, G, wl.inProj[l]);
      add(g.inProjBias, G, wl.inProjBias[l]);
      add(g.conv1dWeight, G, wl.convW[l]);
      add(g.conv1dBias, G, wl.convB[l]);
      add(g.dtBias, G, wl.dtProjBias[l]);
      add(g.aLog, G, wl.a2[l]);
      add(g.dSkip, G, wl.dSkip[l]);
      add(g.normWeight, G, wl.gatedNorm[l]);
      add(g.outProj, G, wl.outProj[l]);
      add(g.outProjBias, G, wl.outProjBias[l]);
    }
    for (int l = 0; l < grads.layers.length; l++) {
      LayerWeights g = grads.layers[l];
      add(g.norm, G, wl.norm[l]);
      add(g.inProj, G, wl.inProj[l]);
      add(g.inProjBias, G, wl.inProjBias[l]);
      add(g.conv1dWeight, G, wl.convW[l]);
      add(g.conv1dBias, G, wl.convB[l]);
      add(g.xProj, G, wl.xProj[l]);
      add(g.dtProj, G, wl.dtProj[l]);
      add(g.dtProjBias, G, wl.dtProjBias[l]);
      add(g.aLog, G, wl.a2[l]);
      add(g.dSkip, G, wl.dSkip[l]);
      add(g.outProj, G, wl.outProj[l]);
      add(g.outProjBias, G, wl.outProjBias[l]);
    }
    add(grads.normF, G, wl.normF);
    add(grads.embeddings, G, (int) wl.emb);
    if (!c.tieWordEmbeddings) {
      add(grads.lmHead, G, (int) wl.lmHead);
    }
  }

  private static void add(float[] dst, float[] G, int off) {
    if (dst != null) {
      for (int i = 0; i < dst.length; i++) {
        dst[i] += G[off + i];
      }
    }
  }
}
