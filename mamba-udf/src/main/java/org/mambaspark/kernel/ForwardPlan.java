package org.mambaspark.kernel;

import org.mambaspark.model.Architecture;
import org.mambaspark.model.MambaConfig;

/**
 * The forward as launches of the model kernel ({@code MambaModel.forward}, {@code SelectiveMixer}
 * and {@code SsdMixer} forward): the embedding, each layer (Mamba-1 and Falcon-Mamba's selective
 * mixer, Mamba-2's SSD mixer through the launch table), norm_f, lm_head and the per-token
 * cross-entropy; a decode step as one launch of {@link DecodePlan}'s passes; the staging of a
 * layer's matrices when the weights live in slabs. The training backward recomputes each layer
 * through {@link #layerForward}.
 */
final class ForwardPlan {
  private final LaunchContext ctx;
  private final MambaKernel kernel;
  private final MambaConfig c;
  private final DeviceWeights wl;
  private final DeviceState states;
  private final boolean falcon;
  private final boolean ssd;

  /** The decode step's records, for its batch size, or null before the first step. */
  private DecodePlan plan;

  /**
   * The layout (2·BT, + 1 when training: a training layout's gradient offsets) whose Falcon-Mamba
   * part-norm records head the launch table, or -1.
   */
  private long normRows = -1;

  /** (B, L, with a state) of the Mamba-2 forward records in the table, or null. */
  private String ssdRecordsFor;

  ForwardPlan(LaunchContext ctx, MambaConfig c, DeviceWeights wl, DeviceState states) {
    this.ctx = ctx;
    this.kernel = ctx.kernel;
    this.c = c;
    this.wl = wl;
    this.states = states;
    this.falcon = c.architecture == Architecture.FALCON_MAMBA;
    this.ssd = c.architecture == Architecture.MAMBA2;
  }

  /** act[x] = the embeddings of the call's ids. */
  private void embed(Layout a) {
    int D = c.hiddenSize;
    kernel.eN = a.BT * D;
    kernel.eDstOff = a.x;
    kernel.embOff = (int) wl.emb;
    kernel.embD = D;
    kernel.idsOff = a.ids;
    ctx.launch(MambaKernel.OP_EMBED, a.BT * D, 256);
  }

  /**
   * The embedding, every layer and norm_f into act[hidden] (training: each layer's input saved, the
   * norms' 1/rms kept).
   */
  void forwardAll(Layout a, boolean withState) {
    int D = c.hiddenSize;
    embed(a);
    for (int l = 0; l < c.numLayers; l++) {
      if (a.training) {
        ctx.copy(MambaKernel.SEL_SAVED, l * a.BT * D, MambaKernel.SEL_ACT, a.x, a.BT * D);
      }
      layerForward(a, l, MambaKernel.SEL_ACT, a.x, withState, true);
    }
    rmsnormInto(a, MambaKernel.SEL_ACT, a.x, a.hidden, wl.normF, a.training ? a.rstdF : -1);
  }

  /** hidden[hiddenOff, + BT·D) = norm_f's output of the forward just run. */
  void readHidden(Layout a, float[] hidden, int hiddenOff) {
    ensureHid(a.BT * c.hiddenSize);
    ctx.copy(MambaKernel.SEL_HID, 0, MambaKernel.SEL_ACT, a.hidden, a.BT * c.hiddenSize);
    kernel.get(kernel.hid);
    System.arraycopy(kernel.hid, 0, hidden, hiddenOff, a.BT * c.hiddenSize);
  }

  /** The forward, then every position's next-token loss into the kernel's out (read back). */
  void losses(Layout a) {
    forwardAll(a, false);
    for (int r0 = 0; r0 < a.BT; r0 += a.logitRows) {
      lmHeadCrossEntropy(a, r0, Math.min(a.logitRows, a.BT - r0), 0f, false);
    }
    kernel.get(kernel.out);
  }

  /**
   * logits (B, V) = the last position's logits of each sequence; with a state and one token a
   * sequence, a decode step ({@link #decodeStep}) when {@code stepPlan}.
   */
  void lastLogits(float[] logits, Layout a, boolean withState, boolean stepPlan) {
    int B = a.B;
    int L = a.L;
    int V = c.vocabSize;
    if (stepPlanRuns(B, L, withState, stepPlan)) {
      decodeStep(a, false);
    } else {
      forwardAll(a, withState);
      int D = c.hiddenSize;
      lmHead(B, a.hidden + (L - 1) * D, L * D, MambaKernel.SEL_OUT, 0, V);
    }
    kernel.get(kernel.out);
    System.arraycopy(kernel.out, 0, logits, 0, B * V);
  }

  /** Whether a call of B rows of L tokens runs as a decode step ({@link DecodePlan}). */
  static boolean stepPlanRuns(int B, int L, boolean withState, boolean stepPlan) {
    return L == 1 && withState && B <= MambaKernel.GEMV_MAX_M && stepPlan;
  }

  /**
   * A decode step whose tokens are each row's argmax, picked on the device: only the B ids come
   * back. The caller has checked {@link #stepPlanRuns}.
   */
  void greedyStep(int[] next, Layout a) {
    decodeStep(a, true);
    kernel.get(kernel.ids);
    System.arraycopy(kernel.ids, a.next, next, 0, a.B);
  }

  /**
   * One token a sequence through {@link StepKernel}: a single launch of the plan's passes, with the
   * argmax pass when {@code argmax}.
   */
  private void decodeStep(Layout a, boolean argmax) {
    int B = a.B;
    if (plan == null || plan.batch != B || ctx.tableTail != plan) {
      int[] ssm = new int[c.numLayers];
      int[] conv = new int[c.numLayers];
      for (int l = 0; l < c.numLayers; l++) {
        ssm[l] = states.ssmOff(l, B);
        conv[l] = states.convOff(l, B);
      }
      plan = new DecodePlan(c, wl, a, ssm, conv, a.ids);
      int head = ctx.forwardSlots() * StepKernel.REC;
      ctx.ensureTable(head + plan.records.length);
      System.arraycopy(plan.records, 0, kernel.plan, head, plan.records.length);
      System.arraycopy(plan.eps, 0, kernel.planF, head, plan.eps.length);
      ctx.putTable();
      ctx.tableTail = plan;
    }
    int n = plan.passes + (argmax ? 1 : 0);
    ctx.passes(ctx.forwardSlots(), n, "decode step (" + n + " passes)");
  }

  /**
   * Falcon-Mamba: the weightless norms of x_proj's Δ-rank, B and C parts, in place, their 1/rms
   * kept for the backward ({@link BackwardPlan}, the table's next record).
   */
  private void partNorms(Layout a) {
    long key = 2L * a.BT + (a.training ? 1 : 0); // a training layout's gradient offsets
    if (normRows != key) {
      ctx.ensureTable(2 * StepKernel.REC);
      int P = c.xProjSize();
      int R = c.timeStepRank;
      int N = c.stateSize;
      int[] fwd = {StepKernel.P_SEGNORM, a.BT, P, R, N, a.dbc, a.partRstd};
      int[] bwd = {StepKernel.P_SEGNORM_BWD, a.BT, P, R, N, a.dbc, a.partRstd, a.ddbc};
      System.arraycopy(fwd, 0, kernel.plan, 0, fwd.length);
      System.arraycopy(bwd, 0, kernel.plan, StepKernel.REC, bwd.length);
      kernel.planF[0] = c.mixerRmsEps;
      ctx.putTable();
      normRows = key;
    }
    ctx.passes(0, 1, "falcon part norms");
  }

  /**
   * One layer from its input (act's residual stream, or saved for the backward's recompute):
   * rmsnorm, in_proj, conv + silu, x_proj, dt_proj + softplus, scan; then, unless recomputing,
   * out_proj added into the residual stream.
   */
  void layerForward(Layout a, int l, int inSel, int inOff, boolean withState, boolean residual) {
    if (ssd) {
      ssdLayerForward(a, l, inSel, inOff, withState, residual);
      return;
    }
    int BT = a.BT;
    int D = c.hiddenSize;
    int ED = c.intermediateSize;
    int R = c.timeStepRank;
    int P = c.xProjSize();
    boolean fromSlab = readsSlabs(a);
    if (!fromSlab) {
      stageLayer(l);
    }
    rmsnormInto(a, inSel, inOff, a.xNorm, wl.norm[l], a.training ? a.rstd : -1);
    layerProduct(
        l,
        fromSlab,
        BT,
        2 * ED,
        D,
        a.xNorm,
        D,
        wl.inProj[l],
        a.xz,
        2 * ED,
        wl.inProjBias[l],
        false,
        MambaKernel.ACT_NONE);
    setConv(a, l, withState);
    ctx.launch(MambaKernel.OP_CONV, ctx.gridStride(BT * ED), 256);
    if (withState) {
      ctx.launch(MambaKernel.OP_CONV_STATE, a.B * ED, 256);
    }
    layerProduct(
        l, fromSlab, BT, P, ED, a.xs, ED, wl.xProj[l], a.dbc, P, -1, false, MambaKernel.ACT_NONE);
    if (falcon) {
      partNorms(a);
    }
    layerProduct(
        l,
        fromSlab,
        BT,
        ED,
        R,
        a.dbc,
        P,
        wl.dtProj[l],
        a.delta,
        ED,
        wl.dtProjBias[l],
        false,
        MambaKernel.ACT_SOFTPLUS);
    setScan(a, l, withState);
    kernel.sSave = a.training && !residual ? 1 : 0; // the backward's recompute saves chunk states
    ScanTiling t = a.scanFwd;
    kernel.sCe = t.ce;
    kernel.sSeg = t.segments;
    kernel.sItems = t.items;
    ctx.launch(ScanKernel.OP_SCAN_FWD4, a.B * ((ED + t.ce - 1) / t.ce) * t.threads(), t.threads());
    if (residual) {
      layerProduct(
          l,
          fromSlab,
          BT,
          D,
          ED,
          a.y,
          ED,
          wl.outProj[l],
          a.x,
          D,
          wl.outProjBias[l],
          true,
          MambaKernel.ACT_NONE);
    }
  }

  /**
   * A Mamba-2 layer: rmsnorm, in_proj, the causal conv + silu over xBC, then {@link SsdKernel}'s
   * scan and gated norm as two passes of the launch table, and, unless recomputing for the
   * backward, out_proj added into the residual stream ({@code SsdMixer.forward}).
   */
  private void ssdLayerForward(
      Layout a, int l, int inSel, int inOff, boolean withState, boolean residual) {
    int BT = a.BT;
    int D = c.hiddenSize;
    int ED = c.intermediateSize;
    int I = c.inProjSize();
    int C = c.convChannels();
    int none = MambaKernel.ACT_NONE;
    rmsnormInto(a, inSel, inOff, a.xNorm, wl.norm[l], a.training ? a.rstd : -1);
    productWithMatrix(
        -1,
        BT,
        I,
        D,
        a.xNorm,
        D,
        wl.inProj[l],
        MambaKernel.SEL_ACT,
        a.xz,
        I,
        wl.inProjBias[l],
        false,
        none);
    setSsdConv(a, l, withState);
    ctx.launch(MambaKernel.OP_CONV, ctx.gridStride(BT * C), 256);
    if (withState) {
      ctx.launch(MambaKernel.OP_CONV_STATE, a.B * C, 256);
    }
    ssdRecords(a, withState);
    ctx.passes(2 * l, 2, "ssd scan + gated norm", SsdKernel.SCAN_LOCAL);
    if (!residual) {
      return;
    }
    productWithMatrix(
        -1,
        BT,
        D,
        ED,
        a.dbc,
        ED,
        wl.outProj[l],
        MambaKernel.SEL_ACT,
        a.x,
        D,
        wl.outProjBias[l],
        true,
        none);
  }

  /** Mamba-2: records [2l, 2l + 2) of the launch table are layer l's scan and gated norm. */
  private void ssdRecords(Layout a, boolean withState) {
    String key = a.B + "x" + a.L + (withState ? " state" : "") + (a.training ? " training" : "");
    if (key.equals(ssdRecordsFor)) {
      return;
    }
    int REC = StepKernel.REC;
    ctx.ensureTable(ctx.forwardSlots() * REC);
    for (int l = 0; l < c.numLayers; l++) {
      int[] scan =
          SsdRecords.scan(
              c,
              wl,
              l,
              a,
              withState ? 1 : 0,
              withState ? states.ssmOff(l, a.B) : a.training ? a.hc : -1,
              SsdKernel.SCAN_LOCAL);
      System.arraycopy(scan, 0, kernel.plan, 2 * l * REC, scan.length);
      kernel.planF[2 * l * REC] = c.timeStepLimitMin;
      kernel.planF[2 * l * REC + 1] = c.timeStepLimitMax;
      int[] norm = SsdRecords.gatedNorm(c, wl, l, a);
      System.arraycopy(norm, 0, kernel.plan, (2 * l + 1) * REC, norm.length);
      kernel.planF[(2 * l + 1) * REC] = c.layerNormEpsilon;
    }
    ctx.putTable();
    ssdRecordsFor = key;
  }

  /**
   * Staged placement, few rows (a decode step: the products run as GEMV): the layer's matrices are
   * read from their slabs where they live, each element decoded once, instead of being staged
   * (which would write and read them again as fp32).
   */
  private boolean readsSlabs(Layout a) {
    return wl.staged && a.BT <= MambaKernel.GEMV_MAX_M;
  }

  /**
   * act[cOff] (M, N) (+)= act[aOff] (M, K) · layer l's matrix at W offset wOff (N, K)ᵀ (+ bias,
   * then act), the matrix read from its slab when fromSlab.
   */
  private void layerProduct(
      int l,
      boolean fromSlab,
      int M,
      int N,
      int K,
      int aOff,
      int aRs,
      int wOff,
      int cOff,
      int cRs,
      int biasOff,
      boolean accumulate,
      int act) {
    int slab = -1;
    int bOff = wOff;
    if (fromSlab) {
      slab = wl.layerSlab[l];
      bOff = (int) (wl.layerAt[l] + wOff - wl.stage); // the stage area mirrors the slab's layout
    }
    productWithMatrix(
        slab, M, N, K, aOff, aRs, bOff, MambaKernel.SEL_ACT, cOff, cRs, biasOff, accumulate, act);
  }

  void setConv(Layout a, int l, boolean withState) {
    int ED = c.intermediateSize;
    kernel.cvB = a.B;
    kernel.cvL = a.L;
    kernel.cvED = ED;
    kernel.cvK = c.convKernel;
    kernel.cvInOff = a.xz;
    kernel.cvInStride = 2 * ED;
    kernel.cvOutOff = a.xs;
    kernel.cvWOff = wl.convW[l];
    kernel.cvBiasOff = wl.convB[l];
    kernel.cvStateOff = withState && c.convKernel > 1 ? states.convOff(l, a.B) : -1;
  }

  /** {@link #setConv} for Mamba-2's conv over xBC, in_proj's columns [ED, ED + C). */
  void setSsdConv(Layout a, int l, boolean withState) {
    setConv(a, l, withState);
    kernel.cvED = c.convChannels();
    kernel.cvInOff = a.xz + c.intermediateSize;
    kernel.cvInStride = c.inProjSize();
  }

  void setScan(Layout a, int l, boolean withState) {
    int ED = c.intermediateSize;
    kernel.sB = a.B;
    kernel.sL = a.L;
    kernel.sED = ED;
    kernel.sN = c.stateSize;
    kernel.sR = c.timeStepRank;
    kernel.sP = c.xProjSize();
    kernel.sChunks = a.chunks;
    kernel.sHasState = withState ? 1 : 0;
    kernel.sWriteState = withState ? 1 : 0;
    kernel.uOff = a.xs;
    kernel.dtOff = a.delta;
    kernel.dbcOff = a.dbc;
    kernel.zOff = a.xz + ED;
    kernel.zStride = 2 * ED;
    kernel.yOff = a.y;
    kernel.hcOff = a.hc;
    kernel.a2Off = wl.a2[l];
    kernel.dOff = wl.dSkip[l];
    kernel.hOff = withState ? states.ssmOff(l, a.B) : 0;
  }

  private void rmsnormInto(Layout a, int inSel, int inOff, int outOff, int wOff, int rstdOff) {
    kernel.rnD = c.hiddenSize;
    kernel.rnEps = c.layerNormEpsilon;
    kernel.rnInSel = inSel;
    kernel.rnInOff = inOff;
    kernel.rnOutSel = MambaKernel.SEL_ACT;
    kernel.rnOutOff = outOff;
    kernel.rnWOff = wOff;
    kernel.rnRstdOff = rstdOff;
    ctx.launch(MambaKernel.OP_RMSNORM, a.BT * 128, 128);
  }

  /**
   * C (rows, V) at (cSel, cOff, row stride cRs) = hidden rows at act[aOff + r·aRs] (D) @ lm_headᵀ:
   * in one product when lm_head is in W, else in blocks of its rows staged into the stage area.
   */
  private void lmHead(int rows, int aOff, int aRs, int cSel, int cOff, int cRs) {
    int D = c.hiddenSize;
    int V = c.vocabSize;
    if (wl.staged && rows <= MambaKernel.GEMV_MAX_M) {
      // a decode step's logits: lm_head read where it lives
      productWithMatrix(
          wl.lmHeadSlab,
          rows,
          V,
          D,
          aOff,
          aRs,
          (int) wl.lmHead,
          cSel,
          cOff,
          cRs,
          -1,
          false,
          MambaKernel.ACT_NONE);
      return;
    }
    int block = wl.staged ? wl.stageFloats / D : V;
    for (int v0 = 0; v0 < V; v0 += block) {
      int n = Math.min(block, V - v0);
      int bOff = (int) wl.lmHead;
      if (wl.staged) {
        stage(wl.lmHeadSlab, wl.lmHead + (long) v0 * D, wl.stage, n * D);
        bOff = wl.stage;
      }
      productWithMatrix(
          -1, rows, n, D, aOff, aRs, bOff, cSel, cOff + v0, cRs, -1, false, MambaKernel.ACT_NONE);
    }
  }

  /**
   * C[cSel] (M, N) (+)= act rows (M, K) · a weight matrix (N, K)ᵀ at bOff of W, or of slab {@code
   * slab} when ≥ 0 (few rows: the GEMV reads slabs), + bias (W offset, or -1), then act.
   */
  private void productWithMatrix(
      int slab,
      int M,
      int N,
      int K,
      int aOff,
      int aRs,
      int bOff,
      int cSel,
      int cOff,
      int cRs,
      int biasOff,
      boolean accumulate,
      int act) {
    kernel.gBSlab = slab;
    try {
      ctx.matmul(
          new Product(
              M,
              N,
              K,
              new Product.View(MambaKernel.SEL_ACT, aOff, aRs, 1),
              new Product.View(MambaKernel.SEL_W, bOff, 1, K),
              new Product.View(cSel, cOff, cRs, 1),
              biasOff,
              accumulate,
              act));
    } finally {
      kernel.gBSlab = -1;
    }
  }

  /** logits of rows [r0, r0+n) through lm_head, then their cross-entropy (and its gradient). */
  void lmHeadCrossEntropy(Layout a, int r0, int n, float scale, boolean grad) {
    int D = c.hiddenSize;
    int V = c.vocabSize;
    lmHead(n, a.hidden + r0 * D, D, MambaKernel.SEL_ACT, a.logits, V);
    kernel.ceV = V;
    kernel.ceLogOff = a.logits;
    kernel.ceTgtOff = a.tgt + r0;
    kernel.ceLossOff = r0;
    kernel.ceGrad = grad ? 1 : 0;
    kernel.ceScale = scale;
    ctx.launch(MambaKernel.OP_CROSS_ENTROPY, n * 256, 256);
  }

  /** Decodes layer l's matrices into W's stage area (staged placement only). */
  private void stageLayer(int l) {
    if (wl.staged) {
      stage(wl.layerSlab[l], wl.layerAt[l], wl.stage, wl.layerFloats);
    }
  }

  private void stage(int slab, long from, int to, int n) {
    kernel.stSlab = slab;
    kernel.stSrc = (int) from;
    kernel.stDst = to;
    kernel.stN = n;
    ctx.launch(MambaKernel.OP_STAGE, ctx.gridStride(n), 256);
  }

  /** Σ of the call's per-token losses; logprobs[off + b·(L-1) + t] = -loss when not null. */
  double sumLosses(Layout a, float[] logprobs, int off) {
    double sum = 0;
    int L = a.L;
    for (int b = 0; b < a.B; b++) {
      for (int t = 0; t < L - 1; t++) {
        float loss = kernel.out[b * L + t];
        sum += loss;
        if (logprobs != null) {
          logprobs[off + b * (L - 1) + t] = -loss;
        }
      }
    }
    return sum;
  }

  private void ensureHid(int n) {
    if (kernel.hid.length < n) {
      kernel.hid = new float[n];
    }
  }

  /**
   * Tests: the forward with every layer's residual stream and norm_f's output (hs, numLayers+1
   * arrays of (B·L, D), as HF's output_hidden_states without the embedding) and all logits (B·L,
   * V).
   */
  void everyHiddenState(float[][] hs, float[] logits, Layout a) {
    int BT = a.BT;
    int D = c.hiddenSize;
    int V = c.vocabSize;
    ensureHid((c.numLayers + 1) * BT * D + BT * V);
    embed(a);
    for (int l = 0; l < c.numLayers; l++) {
      layerForward(a, l, MambaKernel.SEL_ACT, a.x, false, true);
      ctx.copy(MambaKernel.SEL_HID, l * BT * D, MambaKernel.SEL_ACT, a.x, BT * D);
    }
    rmsnormInto(a, MambaKernel.SEL_ACT, a.x, a.hidden, wl.normF, -1);
    int hOff = c.numLayers * BT * D;
    ctx.copy(MambaKernel.SEL_HID, hOff, MambaKernel.SEL_ACT, a.hidden, BT * D);
    lmHead(BT, a.hidden, D, MambaKernel.SEL_HID, hOff + BT * D, V);
    kernel.get(kernel.hid);
    for (int l = 0; l <= c.numLayers; l++) {
      System.arraycopy(kernel.hid, l * BT * D, hs[l], 0, BT * D);
    }
    System.arraycopy(kernel.hid, hOff + BT * D, logits, 0, BT * V);
  }
}
