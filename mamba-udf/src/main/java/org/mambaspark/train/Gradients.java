package org.mambaspark.train;

import java.util.Arrays;
import java.util.List;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.NamedTensor;
import org.mambaspark.ops.Bf16;
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

  /**
   * A vector of n floats held in pieces (a slice cut across tensors, or one array): hands over the
   * elements [from, to) as runs of arrays.
   */
  @FunctionalInterface
  public interface Pieces {
    void forEach(int from, int to, Run run);

    /** The whole vector in one array. */
    static Pieces of(float[] a) {
      return (from, to, run) -> run.accept(a, from, from, to - from);
    }
  }

  /** A run of a {@link Pieces}: a[offset + i] is element at + i, for i &lt; n. */
  @FunctionalInterface
  public interface Run {
    void accept(float[] a, int offset, int at, int n);
  }

  /** Elements per block of {@link #sumInOrder}: fixed, so its result does not depend on threads. */
  private static final int SUM_BLOCK = 1 << 16;

  /**
   * sum = parts[0] + parts[1] + … + parts[k-1] (n elements each), added in list order on the
   * engine's threads, each value first rounded to bfloat16 when {@code bf16} (as such a gradient
   * crosses the wire: a part read where it was computed then adds up as one that crossed); returns
   * Σ (scale · sum)² in double, summed per block of {@value #SUM_BLOCK} and the blocks in order, so
   * the value is the same on any thread count. With one part and no rounding, {@code sum} may be
   * null: the part is its own sum and only its squares are computed.
   */
  public static double sumInOrder(
      List<Pieces> parts, int n, float[] sum, float scale, boolean bf16) {
    if (sum == null && (parts.size() != 1 || bf16)) {
      throw new IllegalArgumentException("only one unrounded part is its own sum");
    }
    int blocks = (n + SUM_BLOCK - 1) / SUM_BLOCK;
    double[] squares = new double[blocks];
    Parallel.forEachBlock(
        blocks,
        b -> {
          int from = b * SUM_BLOCK, to = Math.min(n, from + SUM_BLOCK);
          if (sum == null) {
            double[] ss = {0};
            parts
                .get(0)
                .forEach(
                    from,
                    to,
                    (a, off, at, k) -> {
                      double s2 = 0;
                      for (int i = 0; i < k; i++) {
                        float v = a[off + i] * scale;
                        s2 += (double) v * v;
                      }
                      ss[0] += s2;
                    });
            squares[b] = ss[0];
            return;
          }
          for (int p = 0; p < parts.size(); p++) {
            boolean first = p == 0;
            parts
                .get(p)
                .forEach(
                    from,
                    to,
                    (a, off, at, k) -> {
                      for (int i = 0; i < k; i++) {
                        float x = bf16 ? Bf16.widen(Bf16.round(a[off + i])) : a[off + i];
                        sum[at + i] = first ? x : sum[at + i] + x;
                      }
                    });
          }
          double ss = 0;
          for (int j = from; j < to; j++) {
            float v = sum[j] * scale;
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
