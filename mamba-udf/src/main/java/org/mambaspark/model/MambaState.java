package org.mambaspark.model;

import java.util.Arrays;

/**
 * The recurrent state of B sequences, O(1) in their length: per layer the last K-1 conv inputs and
 * the SSM state h. Carrying it from one call of {@link MambaModel#forward} to the next makes the
 * pieces equal one pass; it is what prefill leaves behind for generation.
 */
public final class MambaState {
  public final int batch;

  /** Per layer (B, ED, K-1): the last K-1 inputs of the causal conv, oldest first. */
  public final float[][] conv;

  /** Per layer (B, N, ED): the SSM state h (transposed from HF's (B, ED, N), see SelectiveScan). */
  public final float[][] ssm;

  public MambaState(MambaConfig c, int batch) {
    if (batch <= 0) {
      throw new IllegalArgumentException("batch must be positive, got " + batch);
    }
    this.batch = batch;
    int ED = c.intermediateSize;
    conv = new float[c.numLayers][batch * ED * (c.convKernel - 1)];
    ssm = new float[c.numLayers][batch * c.stateSize * ED];
  }

  /** Back to the empty history (all zeros), as at the start of a sequence. */
  public void reset() {
    for (float[] a : conv) {
      Arrays.fill(a, 0f);
    }
    for (float[] a : ssm) {
      Arrays.fill(a, 0f);
    }
  }

  public long bytes() {
    long n = 0;
    for (int i = 0; i < conv.length; i++) {
      n += conv[i].length + ssm[i].length;
    }
    return 4 * n;
  }
}
