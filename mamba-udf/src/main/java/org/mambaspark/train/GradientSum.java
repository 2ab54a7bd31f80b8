package org.mambaspark.train;

import java.io.Serializable;
import java.util.List;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.NamedTensor;

/**
 * What one share of a step's batch contributes: the gradient of the SUM of its token losses (one
 * float[] per parameter, in {@link MambaWeights#parameters()} order), that sum, and the counts.
 * Sums of shares are a share of the union: this is the value Spark's treeAggregate combines (it is
 * {@link Serializable}); the driver divides by the token count once, so the update does not depend
 * on how the batch was split.
 */
public final class GradientSum implements Serializable {
  private static final long serialVersionUID = 1L;

  /** Per parameter, in parameters() order. */
  public final float[][] grads;

  public double lossSum;
  public long tokens;
  public long sequences;

  /**
   * Time spent computing the shares (Σ over the shares summed), and the longest single share:
   * measurements for the logs and benchmarks, not part of the math.
   */
  public long computeNanos;

  public long maxComputeNanos;

  /** A sum over g's parameter arrays themselves (not copied): zeros for a sum that starts empty. */
  public GradientSum(MambaWeights g) {
    List<NamedTensor> ps = g.parameters();
    grads = new float[ps.size()][];
    for (int i = 0; i < ps.size(); i++) {
      grads[i] = ps.get(i).data;
    }
  }

  /** this += other; returns this (a Spark combOp). */
  public GradientSum add(GradientSum other) {
    if (other.grads.length != grads.length) {
      throw new IllegalArgumentException("gradient sums of different models cannot be added");
    }
    for (int i = 0; i < grads.length; i++) {
      float[] a = grads[i], b = other.grads[i];
      for (int j = 0; j < a.length; j++) {
        a[j] += b[j];
      }
    }
    lossSum += other.lossSum;
    tokens += other.tokens;
    sequences += other.sequences;
    computeNanos += other.computeNanos;
    maxComputeNanos = Math.max(maxComputeNanos, other.maxComputeNanos);
    return this;
  }

  /** Copies the gradient into g (shaped like the model), times scale. */
  public void copyInto(MambaWeights g, float scale) {
    List<NamedTensor> ps = g.parameters();
    for (int i = 0; i < grads.length; i++) {
      float[] src = grads[i], dst = ps.get(i).data;
      for (int j = 0; j < src.length; j++) {
        dst[j] = src[j] * scale;
      }
    }
  }

  public long bytes() {
    long n = 0;
    for (float[] a : grads) {
      n += 4L * a.length;
    }
    return n;
  }
}
