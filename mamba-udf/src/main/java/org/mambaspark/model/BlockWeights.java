package org.mambaspark.model;

import java.util.List;

/**
 * One residual block's weights: the pre-norm {@code backbone.layers.{i}.norm} every architecture
 * has, and its mixer's own parameters ({@code backbone.layers.{i}.mixer.*}) in a subclass: {@link
 * LayerWeights} (Mamba-1, Falcon-Mamba) or {@link Mamba2LayerWeights}.
 */
public abstract class BlockWeights {
  public final float[] norm; // (D)

  /** With {@code allocate} false, every array is empty: the shapes alone, for checking a file. */
  BlockWeights(MambaConfig c, boolean allocate) {
    norm = zeros(c.hiddenSize, allocate);
  }

  static float[] zeros(int n, boolean allocate) {
    return new float[allocate ? n : 0];
  }

  /**
   * Appends the mixer's parameters in checkpoint order.
   *
   * @param mixer the name prefix, {@code backbone.layers.{i}.mixer.}
   */
  abstract void addMixerParameters(List<NamedTensor> p, String mixer, MambaConfig c);
}
