package org.mambaspark.model;

import java.util.List;

/**
 * One Mamba-1 (or Falcon-Mamba) residual block: {@code backbone.layers.{i}.norm} ({@link #norm})
 * and {@code backbone.layers.{i}.mixer.*}. Flat row-major arrays in the checkpoint's own layout
 * (PyTorch Linear weights are (out, in)).
 */
public final class LayerWeights extends BlockWeights {
  public final float[] inProj; //       (2ED, D)   rows [0, ED): conv input x; [ED, 2ED): gate z
  public final float[] inProjBias; //   (2ED) or null unless use_bias
  public final float[] conv1dWeight; // (ED, K)    checkpoint shape (ED, 1, K)
  public final float[] conv1dBias; //   (ED) or null unless use_conv_bias
  public final float[] xProj; //        (R+2N, ED) rows: Δ rank R, then B (N), then C (N)
  public final float[] dtProj; //       (ED, R)
  public final float[] dtProjBias; //   (ED)
  public final float[] aLog; //         (ED, N)    A = -exp(A_log)
  public final float[] dSkip; //        (ED)       the "D" skip parameter
  public final float[] outProj; //      (D, ED)
  public final float[] outProjBias; //  (D) or null unless use_bias

  public LayerWeights(MambaConfig c) {
    this(c, FRESH, FRESH);
  }

  /**
   * @param zeros makes every array: fresh zeros, or empty ones (the shapes alone)
   * @param matrices makes in_proj, x_proj and out_proj: empty ones where an inference model holds
   *     them
   */
  LayerWeights(MambaConfig c, Zeros zeros, Zeros matrices) {
    super(c, zeros);
    int D = c.hiddenSize,
        ED = c.intermediateSize,
        N = c.stateSize,
        R = c.timeStepRank,
        K = c.convKernel;
    inProj = matrices.of(2 * ED * D);
    inProjBias = c.useBias ? zeros.of(2 * ED) : null;
    conv1dWeight = zeros.of(ED * K);
    conv1dBias = c.useConvBias ? zeros.of(ED) : null;
    xProj = matrices.of((R + 2 * N) * ED);
    dtProj = zeros.of(ED * R);
    dtProjBias = zeros.of(ED);
    aLog = zeros.of(ED * N);
    dSkip = zeros.of(ED);
    outProj = matrices.of(D * ED);
    outProjBias = c.useBias ? zeros.of(D) : null;
  }

  @Override
  void addMixerParameters(List<NamedTensor> p, String mx, MambaConfig c) {
    long D = c.hiddenSize, ED = c.intermediateSize, N = c.stateSize, R = c.timeStepRank;
    long K = c.convKernel;
    p.add(new NamedTensor(mx + "in_proj.weight", new long[] {2 * ED, D}, inProj));
    if (inProjBias != null) {
      p.add(new NamedTensor(mx + "in_proj.bias", new long[] {2 * ED}, inProjBias));
    }
    p.add(new NamedTensor(mx + "conv1d.weight", new long[] {ED, 1, K}, conv1dWeight));
    if (conv1dBias != null) {
      p.add(new NamedTensor(mx + "conv1d.bias", new long[] {ED}, conv1dBias));
    }
    p.add(new NamedTensor(mx + "x_proj.weight", new long[] {R + 2 * N, ED}, xProj));
    p.add(new NamedTensor(mx + "dt_proj.weight", new long[] {ED, R}, dtProj));
    p.add(new NamedTensor(mx + "dt_proj.bias", new long[] {ED}, dtProjBias));
    p.add(new NamedTensor(mx + "A_log", new long[] {ED, N}, aLog));
    p.add(new NamedTensor(mx + "D", new long[] {ED}, dSkip));
    p.add(new NamedTensor(mx + "out_proj.weight", new long[] {D, ED}, outProj));
    if (outProjBias != null) {
      p.add(new NamedTensor(mx + "out_proj.bias", new long[] {D}, outProjBias));
    }
  }
}
