package org.mambaspark.kernel;

import java.util.Arrays;
import org.mambaspark.model.Architecture;
import org.mambaspark.model.MambaConfig;

/**
 * The passes of one decode step for B sequences ({@link StepKernel}). Per layer, with few rows (the
 * products run as GEMV): in_proj with the layer's rmsnorm and the conv step fused, x_proj, dt_proj
 * + scan step (Falcon-Mamba's part norms inside), out_proj into the residual stream; then lm_head
 * with the final norm fused, into {@code out} (and, for greedy steps, each row's argmax into ids).
 * With more rows the wide products are tiled and the norms and the conv run as passes of their own.
 * Each matrix is read where it lives (W, or its slab as fp32 bits or bf16). Built once per batch
 * size; the records go to the device once.
 */
final class DecodePlan {
  /** The step's passes (the last writes the logits into out), then one argmax pass. */
  final int[] records;

  final float[] eps;

  /** Passes up to the logits; the argmax pass after them is launched only for greedy steps. */
  final int passes;

  final int batch;
  private final DeviceWeights wl;
  private final int[] rec;
  private final float[] recEps;
  private int added; // records written so far

  /**
   * @param ssmOff per layer, the scan state (B, N, ED) in the state array
   * @param convOff per layer, the conv's kept inputs (B, ED, K−1)
   */
  DecodePlan(MambaConfig c, DeviceWeights wl, Layout a, int[] ssmOff, int[] convOff, int idsOff) {
    this.wl = wl;
    this.batch = a.B;
    int layers = c.numLayers;
    int most = 7 * layers + 5;
    this.rec = new int[most * StepKernel.REC];
    this.recEps = new float[most * StepKernel.REC];
    int B = a.B;
    int D = c.hiddenSize;
    int ED = c.intermediateSize;
    int N = c.stateSize;
    int R = c.timeStepRank;
    int P = c.xProjSize();
    int V = c.vocabSize;
    int K = c.convKernel;
    float e = c.layerNormEpsilon;
    boolean falcon = c.architecture == Architecture.FALCON_MAMBA;
    boolean ssd = c.architecture == Architecture.MAMBA2;
    add(e, StepKernel.P_EMBED, B, D, idsOff, a.x, (int) wl.emb);
    for (int l = 0; l < layers && ssd; l++) {
      add(e, StepKernel.P_RMSNORM, B, D, a.x, a.xNorm, wl.norm[l]);
      ssdLayer(c, l, a, ssmOff[l], convOff[l]);
    }
    for (int l = 0; l < layers && !ssd; l++) {
      int[] in = matrix(l, wl.inProj[l]);
      if (kind(B, 2 * ED) == StepKernel.P_GEMV) {
        add(
            e,
            StepKernel.P_GEMV,
            B,
            2 * ED,
            D,
            a.x,
            D,
            in[0],
            in[1],
            StepKernel.C_ACT,
            a.xz,
            2 * ED,
            wl.inProjBias[l],
            0,
            0,
            StepKernel.FUSE_NORM | StepKernel.FUSE_CONV,
            wl.norm[l],
            ED,
            K,
            wl.convW[l],
            wl.convB[l],
            convOff[l],
            a.xs);
      } else {
        add(e, StepKernel.P_RMSNORM, B, D, a.x, a.xNorm, wl.norm[l]);
        product(in, B, 2 * ED, D, a.xNorm, D, a.xz, 2 * ED, wl.inProjBias[l], 0);
        add(
            0f,
            StepKernel.P_CONV,
            B,
            ED,
            K,
            a.xz,
            2 * ED,
            a.xs,
            wl.convW[l],
            wl.convB[l],
            convOff[l]);
      }
      product(matrix(l, wl.xProj[l]), B, P, ED, a.xs, ED, a.dbc, P, -1, 0);
      int[] dt = matrix(l, wl.dtProj[l]);
      add(
          c.mixerRmsEps,
          StepKernel.P_SCAN_DT,
          B,
          ED,
          N,
          a.dbc,
          P,
          R,
          a.xs,
          a.xz + ED,
          2 * ED,
          a.y,
          wl.a2[l],
          wl.dSkip[l],
          ssmOff[l],
          dt[0],
          dt[1],
          wl.dtProjBias[l],
          falcon ? 1 : 0);
      product(matrix(l, wl.outProj[l]), B, D, ED, a.y, ED, a.x, D, wl.outProjBias[l], 1);
    }
    int headSlab = wl.staged ? wl.lmHeadSlab : -1;
    int head = (int) wl.lmHead;
    if (kind(B, V) == StepKernel.P_GEMV) {
      add(
          e,
          StepKernel.P_GEMV,
          B,
          V,
          D,
          a.x,
          D,
          headSlab,
          head,
          StepKernel.C_OUT,
          0,
          V,
          -1,
          0,
          0,
          StepKernel.FUSE_NORM,
          wl.normF);
    } else {
      add(e, StepKernel.P_RMSNORM, B, D, a.x, a.hidden, wl.normF);
      add(
          0f,
          StepKernel.P_GEMM,
          B,
          V,
          D,
          a.hidden,
          D,
          headSlab,
          head,
          StepKernel.C_OUT,
          0,
          V,
          -1,
          0,
          0);
    }
    this.passes = added;
    add(0f, StepKernel.P_ARGMAX, B, V, a.next);
    this.records = Arrays.copyOf(rec, added * StepKernel.REC);
    this.eps = Arrays.copyOf(recEps, added * StepKernel.REC);
  }

  /**
   * A Mamba-2 mixer's step after its norm: in_proj, the conv step over xBC, the SSD step, the gated
   * norm, out_proj into the residual stream (as {@code SsdMixer.forward} with L = 1).
   */
  private void ssdLayer(MambaConfig c, int l, Layout a, int ssmOff, int convOff) {
    int B = a.B;
    int D = c.hiddenSize;
    int ED = c.intermediateSize;
    int I = c.inProjSize();
    int C = c.convChannels();
    product(matrix(l, wl.inProj[l]), B, I, D, a.xNorm, D, a.xz, I, wl.inProjBias[l], 0);
    add(
        0f,
        StepKernel.P_CONV,
        B,
        C,
        c.convKernel,
        a.xz + ED,
        I,
        a.xs,
        wl.convW[l],
        wl.convB[l],
        convOff);
    add(
        SsdRecords.scan(c, wl, l, a, 1, ssmOff, StepKernel.STEP_LOCAL),
        c.timeStepLimitMin,
        c.timeStepLimitMax);
    add(SsdRecords.gatedNorm(c, wl, l, a), c.layerNormEpsilon);
    product(matrix(l, wl.outProj[l]), B, D, ED, a.dbc, ED, a.x, D, wl.outProjBias[l], 1);
  }

  private void add(int[] r, float... floats) {
    add(0f, r);
    System.arraycopy(floats, 0, recEps, (added - 1) * StepKernel.REC, floats.length);
  }

  /**
   * Where layer l's matrix at W offset wOff is read: {slab, offset}, the slab −1 for W; in the
   * staged placement its slab, whose layer layout mirrors the stage area's.
   */
  private int[] matrix(int l, int wOff) {
    if (!wl.staged) {
      return new int[] {-1, wOff};
    }
    return new int[] {wl.layerSlab[l], (int) (wl.layerAt[l] + wOff - wl.stage)};
  }

  /** act[cOff] (B, N) (+)= act[aOff] (B, K) · the matrix (N, K)ᵀ at {slab, offset} w. */
  private void product(
      int[] w, int B, int N, int K, int aOff, int aRs, int cOff, int cRs, int biasOff, int acc) {
    add(
        0f,
        kind(B, N),
        B,
        N,
        K,
        aOff,
        aRs,
        w[0],
        w[1],
        StepKernel.C_ACT,
        cOff,
        cRs,
        biasOff,
        acc,
        0);
  }

  /**
   * The tiled product for more than eight rows and enough columns to give every compute unit a
   * tile; the GEMV otherwise (its weight loads, not A's, bound it there).
   */
  static int kind(int M, int N) {
    return M > 8 && N >= 16 * StepKernel.TILE ? StepKernel.P_GEMM : StepKernel.P_GEMV;
  }

  private void add(float epsilon, int... r) {
    System.arraycopy(r, 0, rec, added * StepKernel.REC, r.length);
    recEps[added * StepKernel.REC] = epsilon;
    added++;
  }
}
