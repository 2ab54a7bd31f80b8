package org.mambaspark.model;

import java.util.List;

/**
 * One residual block's weights: the pre-norm {@code backbone.layers.{i}.norm} every architecture
 * has, and its mixer's own parameters ({@code backbone.layers.{i}.mixer.*}) in a subclass: {@link
 * LayerWeights} (Mamba-1, Falcon-Mamba) or {@link Mamba2LayerWeights}.
 */
public abstract class BlockWeights {
  public final float[] norm; // (D)

  /** Makes a weights' arrays of n floats, one a call, in the order its constructor needs them. */
  @FunctionalInterface
  interface Zeros {
    float[] of(int n);
  }

  /** Fresh zero-filled arrays. */
  static final Zeros FRESH = n -> new float[n];

  /** Empty arrays: the shapes alone, for checking a file. */
  static final Zeros EMPTY = n -> new float[0];

  BlockWeights(MambaConfig c, Zeros zeros) {
    norm = zeros.of(c.hiddenSize);
  }

  /**
   * Appends the mixer's parameters in checkpoint order.
   *
   * @param mixer the name prefix, {@code backbone.layers.{i}.mixer.}
   */
  abstract void addMixerParameters(List<NamedTensor> p, String mixer, MambaConfig c);
}
