package org.mambaspark.train;

import java.util.Arrays;
import java.util.List;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.NamedTensor;

/**
 * Operations on a gradient held as a {@link MambaWeights}: the flat buffer that micro-batches
 * accumulate into and that Spark sums across partitions.
 */
public final class Gradients {
  private Gradients() {}

  public static void zero(MambaWeights g) {
    for (NamedTensor t : g.parameters()) {
      Arrays.fill(t.data, 0f);
    }
  }

  /** a += b (same shapes). */
  public static void addInPlace(MambaWeights a, MambaWeights b) {
    List<NamedTensor> as = a.parameters(), bs = b.parameters();
    for (int i = 0; i < as.size(); i++) {
      float[] x = as.get(i).data, y = bs.get(i).data;
      for (int j = 0; j < x.length; j++) {
        x[j] += y[j];
      }
    }
  }

  /** g *= s. */
  public static void scale(MambaWeights g, float s) {
    for (NamedTensor t : g.parameters()) {
      float[] x = t.data;
      for (int j = 0; j < x.length; j++) {
        x[j] *= s;
      }
    }
  }

  /** √(Σ g²) over every parameter (a tied head counted once), accumulated in double. */
  public static double globalNorm(MambaWeights g) {
    double ss = 0;
    for (NamedTensor t : g.parameters()) {
      for (float x : t.data) {
        ss += (double) x * x;
      }
    }
    return Math.sqrt(ss);
  }

  /**
   * {@code torch.nn.utils.clip_grad_norm_}: scales g by min(1, maxNorm / (norm + 1e-6)); returns
   * the norm before clipping. A non-positive maxNorm only measures.
   */
  public static double clipGlobalNorm(MambaWeights g, double maxNorm) {
    double norm = globalNorm(g);
    if (maxNorm > 0) {
      double coef = maxNorm / (norm + 1e-6);
      if (coef < 1) {
        scale(g, (float) coef);
      }
    }
    return norm;
  }

  /** True when every entry is finite. */
  public static boolean allFinite(MambaWeights g) {
    for (NamedTensor t : g.parameters()) {
      for (float x : t.data) {
        if (!Float.isFinite(x)) {
          return false;
        }
      }
    }
    return true;
  }
}
