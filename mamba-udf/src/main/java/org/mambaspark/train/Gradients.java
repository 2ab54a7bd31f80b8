package org.mambaspark.train;

import java.util.Arrays;
import java.util.List;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.NamedTensor;
import org.mambaspark.ops.Parallel;

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

  /** Elements per block of {@link #sumScaled}: fixed, so its result does not depend on threads. */
  private static final int SUM_BLOCK = 1 << 16;

  /**
   * parts[0] = (parts[0] + parts[1] + … + parts[k-1]) · scale, added in list order, on the engine's
   * threads; returns Σ of the result's squares in double, summed per block of {@value #SUM_BLOCK}
   * and the blocks in order, so the value is the same on any thread count.
   */
  public static double sumScaled(List<float[]> parts, float scale) {
    float[] sum = parts.get(0);
    int n = sum.length;
    int blocks = (n + SUM_BLOCK - 1) / SUM_BLOCK;
    double[] squares = new double[blocks];
    Parallel.forEachBlock(
        blocks,
        b -> {
          int from = b * SUM_BLOCK, to = Math.min(n, from + SUM_BLOCK);
          for (float[] g : parts.subList(1, parts.size())) {
            for (int j = from; j < to; j++) {
              sum[j] += g[j];
            }
          }
          double ss = 0;
          for (int j = from; j < to; j++) {
            float v = sum[j] * scale;
            sum[j] = v;
            ss += (double) v * v;
          }
          squares[b] = ss;
        });
    double total = 0;
    for (double ss : squares) {
      total += ss;
    }
    return total;
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
