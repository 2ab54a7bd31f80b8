package org.mambaspark.model;

import java.util.List;

/**
 * One Mamba-2 residual block: {@code backbone.layers.{i}.norm} ({@link #norm}) and {@code
 * backbone.layers.{i}.mixer.*} as transformers' {@code Mamba2Mixer} names them. Flat row-major
 * arrays in the checkpoint's layout (PyTorch Linear weights are (out, in)). With C = ED + 2GN (the
 * conv's channels: x, B, C) and I = ED + C + H (in_proj's rows).
 */
public final class Mamba2LayerWeights extends BlockWeights {
  public final float[] inProj; //       (I, D)  rows: z (ED) | x (ED) B (GN) C (GN) | Δ (H)
  public final float[] inProjBias; //   (I) or null unless use_bias
  public final float[] conv1dWeight; // (C, K)  checkpoint shape (C, 1, K)
  public final float[] conv1dBias; //   (C) or null unless use_conv_bias
  public final float[] dtBias; //       (H)
  public final float[] aLog; //         (H)     A = -exp(A_log), one scalar per head
  public final float[] dSkip; //        (H)     the "D" skip parameter, per head
  public final float[] normWeight; //   (ED)    the gated RMSNorm's weight
  public final float[] outProj; //      (D, ED)
  public final float[] outProjBias; //  (D) or null unless use_bias

  public Mamba2LayerWeights(MambaConfig c) {
    this(c, FRESH, FRESH);
  }

  /** See {@link LayerWeights#LayerWeights(MambaConfig, BlockWeights.Zeros, BlockWeights.Zeros)}. */
  Mamba2LayerWeights(MambaConfig c, Zeros zeros, Zeros matrices) {
    super(c, zeros);
    int D = c.hiddenSize, ED = c.intermediateSize, H = c.numHeads, K = c.convKernel;
    int C = c.convChannels(), I = c.inProjSize();
    inProj = matrices.of(I * D);
    inProjBias = c.useBias ? zeros.of(I) : null;
    conv1dWeight = zeros.of(C * K);
    conv1dBias = c.useConvBias ? zeros.of(C) : null;
    dtBias = zeros.of(H);
    aLog = zeros.of(H);
    dSkip = zeros.of(H);
    normWeight = zeros.of(ED);
    outProj = matrices.of(D * ED);
    outProjBias = c.useBias ? zeros.of(D) : null;
  }

  @Override
  void addMixerParameters(List<NamedTensor> p, String mx, MambaConfig c) {
    long D = c.hiddenSize, ED = c.intermediateSize, H = c.numHeads, K = c.convKernel;
    long C = c.convChannels(), I = c.inProjSize();
    p.add(new NamedTensor(mx + "in_proj.weight", new long[] {I, D}, inProj));
    if (inProjBias != null) {
      p.add(new NamedTensor(mx + "in_proj.bias", new long[] {I}, inProjBias));
    }
    p.add(new NamedTensor(mx + "conv1d.weight", new long[] {C, 1, K}, conv1dWeight));
    if (conv1dBias != null) {
      p.add(new NamedTensor(mx + "conv1d.bias", new long[] {C}, conv1dBias));
    }
    p.add(new NamedTensor(mx + "dt_bias", new long[] {H}, dtBias));
    p.add(new NamedTensor(mx + "A_log", new long[] {H}, aLog));
    p.add(new NamedTensor(mx + "D", new long[] {H}, dSkip));
    p.add(new NamedTensor(mx + "norm.weight", new long[] {ED}, normWeight));
    p.add(new NamedTensor(mx + "out_proj.weight", new long[] {D, ED}, outProj));
    if (outProjBias != null) {
      p.add(new NamedTensor(mx + "out_proj.bias", new long[] {D}, outProjBias));
    }
  }
}
