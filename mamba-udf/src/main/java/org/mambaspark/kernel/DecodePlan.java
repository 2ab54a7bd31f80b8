package org.mambaspark.kernel;

import org.mambaspark.model.Architecture;
import org.mambaspark.model.MambaConfig;

/**
 * The passes of one decode step for B sequences ({@link StepKernel}): per layer rmsnorm, in_proj,
 * conv step, x_proj (Falcon-Mamba: its parts' norms), dt_proj + softplus, scan step, out_proj into
 * the residual stream (Mamba-2: rmsnorm, in_proj, conv step over xBC, {@link SsdKernel}'s scan step
 * and gated norm, out_proj); then the final norm and lm_head into {@code out}. Each matrix is read
 * where it lives (W, or its slab as fp32 bits or bf16). Built once per batch size; the records go
 * to the device once.
 */
final class DecodePlan {
  final int[] records;
  final float[] eps;
  final int passes;
  final int batch;
  private final DeviceWeights wl;
  private int added; // records written so far

  /**
   * @param ssmOff per layer, the scan state (B, N, ED) in the state array
   * @param convOff per layer, the conv's kept inputs (B, ED, K−1)
   */
  DecodePlan(
      MambaConfig c, DeviceWeights wl, GpuModel.Layout a, int[] ssmOff, int[] convOff, int idsOff) {
    this.wl = wl;
    this.batch = a.B;
    int layers = c.numLayers;
    boolean falcon = c.architecture == Architecture.FALCON_MAMBA;
    boolean ssd = c.architecture == Architecture.MAMBA2;
    this.passes = (ssd ? 6 : falcon ? 8 : 7) * layers + 3;
    this.records = new int[passes * StepKernel.REC];
    this.eps = new float[passes * StepKernel.REC];
    int B = a.B;
    int D = c.hiddenSize;
    int ED = c.intermediateSize;
    int N = c.stateSize;
    int R = c.timeStepRank;
    int P = c.xProjSize();
    float e = c.layerNormEpsilon;
    add(e, StepKernel.P_EMBED, B, D, idsOff, a.x, (int) wl.emb);
    for (int l = 0; l < layers && ssd; l++) {
      add(e, StepKernel.P_RMSNORM, B, D, a.x, a.xNorm, wl.norm[l]);
      ssdLayer(c, l, a, ssmOff[l], convOff[l]);
    }
    for (int l = 0; l < layers && !ssd; l++) {
      add(e, StepKernel.P_RMSNORM, B, D, a.x, a.xNorm, wl.norm[l]);
      product(l, B, 2 * ED, D, a.xNorm, D, wl.inProj[l], a.xz, 2 * ED, wl.inProjBias[l], 0, 0);
      add(
          0f,
          StepKernel.P_CONV,
          B,
          ED,
          c.convKernel,
          a.xz,
          2 * ED,
          a.xs,
          wl.convW[l],
          wl.convB[l],
          convOff[l]);
      product(l, B, P, ED, a.xs, ED, wl.xProj[l], a.dbc, P, -1, 0, 0);
      if (falcon) {
        add(c.mixerRmsEps, StepKernel.P_SEGNORM, B, P, R, N, a.dbc);
      }
      product(l, B, ED, R, a.dbc, P, wl.dtProj[l], a.delta, ED, wl.dtProjBias[l], 0, 1);
      add(
          0f,
          StepKernel.P_SCAN,
          B,
          ED,
          N,
          a.dbc,
          P,
          R,
          a.xs,
          a.delta,
          a.xz + ED,
          2 * ED,
          a.y,
          wl.a2[l],
          wl.dSkip[l],
          ssmOff[l]);
      product(l, B, D, ED, a.y, ED, wl.outProj[l], a.x, D, wl.outProjBias[l], 1, 0);
    }
    int V = c.vocabSize;
    add(e, StepKernel.P_RMSNORM, B, D, a.x, a.hidden, wl.normF);
    int headSlab = wl.staged ? wl.lmHeadSlab : -1;
    add(
        0f,
        kind(B, V),
        B,
        V,
        D,
        a.hidden,
        D,
        headSlab,
        (int) wl.lmHead,
        StepKernel.C_OUT,
        0,
        V,
        -1,
        0,
        0);
  }

  /**
   * A Mamba-2 mixer's step after its norm: in_proj, the conv step over xBC, the SSD step, the gated
   * norm, out_proj into the residual stream (as {@code SsdMixer.forward} with L = 1).
   */
  private void ssdLayer(MambaConfig c, int l, GpuModel.Layout a, int ssmOff, int convOff) {
    int B = a.B;
    int D = c.hiddenSize;
    int ED = c.intermediateSize;
    int I = c.inProjSize();
    int C = c.convChannels();
    product(l, B, I, D, a.xNorm, D, wl.inProj[l], a.xz, I, wl.inProjBias[l], 0, 0);
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
    add(SsdRecords.scan(c, wl, l, a, 1, ssmOff), c.timeStepLimitMin, c.timeStepLimitMax);
    add(SsdRecords.gatedNorm(c, wl, l, a), c.layerNormEpsilon);
    product(l, B, D, ED, a.dbc, ED, wl.outProj[l], a.x, D, wl.outProjBias[l], 1, 0);
  }

  private void add(int[] rec, float... floats) {
    add(0f, rec);
    System.arraycopy(floats, 0, eps, (added - 1) * StepKernel.REC, floats.length);
  }

  /**
   * act[cOff] (B, N) (+)= act[aOff] (B, K) · layer l's matrix at W offset wOff (N, K)ᵀ: read from
   * its slab in the staged placement, whose layer layout mirrors the stage area's.
   */
  private void product(
      int l,
      int B,
      int N,
      int K,
      int aOff,
      int aRs,
      int wOff,
      int cOff,
      int cRs,
      int biasOff,
      int accumulate,
      int softplus) {
    int slab = -1;
    int bOff = wOff;
    if (wl.staged) {
      slab = wl.layerSlab[l];
      bOff = (int) (wl.layerAt[l] + wOff - wl.stage);
    }
    add(
        0f,
        kind(B, N),
        B,
        N,
        K,
        aOff,
        aRs,
        slab,
        bOff,
        StepKernel.C_ACT,
        cOff,
        cRs,
        biasOff,
        accumulate,
        softplus);
  }

  /**
   * The tiled product for more than eight rows and enough columns to give every compute unit a
   * tile; the GEMV otherwise (its weight loads, not A's, bound it there).
   */
  static int kind(int M, int N) {
    return M > 8 && N >= 16 * StepKernel.TILE ? StepKernel.P_GEMM : StepKernel.P_GEMV;
  }

  private void add(float epsilon, int... rec) {
    System.arraycopy(rec, 0, records, added * StepKernel.REC, rec.length);
    eps[added * StepKernel.REC] = epsilon;
    added++;
  }
}
