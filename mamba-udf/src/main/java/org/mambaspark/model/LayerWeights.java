package org.mambaspark.model;

/**
 * One residual block: {@code backbone.layers.{i}.norm} and {@code backbone.layers.{i}.mixer.*}.
 * Flat row-major arrays in the checkpoint's own layout (PyTorch Linear weights are (out, in)).
 */
public final class LayerWeights {
  public final float[] norm; //         (D)
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
    this(c, true);
  }

  /** With {@code allocate} false, every array is empty: the shapes alone, for checking a file. */
  LayerWeights(MambaConfig c, boolean allocate) {
    int D = c.hiddenSize,
        ED = c.intermediateSize,
        N = c.stateSize,
        R = c.timeStepRank,
        K = c.convKernel;
    norm = zeros(D, allocate);
    inProj = zeros(2 * ED * D, allocate);
    inProjBias = c.useBias ? zeros(2 * ED, allocate) : null;
    conv1dWeight = zeros(ED * K, allocate);
    conv1dBias = c.useConvBias ? zeros(ED, allocate) : null;
    xProj = zeros((R + 2 * N) * ED, allocate);
    dtProj = zeros(ED * R, allocate);
    dtProjBias = zeros(ED, allocate);
    aLog = zeros(ED * N, allocate);
    dSkip = zeros(ED, allocate);
    outProj = zeros(D * ED, allocate);
    outProjBias = c.useBias ? zeros(D, allocate) : null;
  }

  static float[] zeros(int n, boolean allocate) {
    return new float[allocate ? n : 0];
  }
}
