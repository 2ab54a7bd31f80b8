package org.mambaspark.ops;

import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The machine's read bandwidth as the Vector API sees it: a 512 MB float array (far beyond L3)
 * streamed by 1 and 2 threads, each taking a contiguous half, as a dot product with a short vector
 * held in L1 (a decode step's matrix-vector product with the weights never reused). A plain main,
 * not a test: it measures the ceiling the decode step is compared with.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp mamba-udf/target/classes:mamba-udf/target/test-classes \
 *   org.mambaspark.ops.BandwidthProbe [MB=512] [reps=5]
 * </pre>
 */
public final class BandwidthProbe {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

  private BandwidthProbe() {}

  public static void main(String[] args) throws Exception {
    int mb = args.length > 0 ? Integer.parseInt(args[0]) : 512;
    int reps = args.length > 1 ? Integer.parseInt(args[1]) : 5;
    int n = mb * (1 << 20) / 4;
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (i % 7) * 0.25f;
    }
    float[] x = new float[768];
    java.util.Arrays.fill(x, 1f);
    ExecutorService pool = Executors.newFixedThreadPool(2);
    for (int threads = 1; threads <= 2; threads++) {
      double best = 0;
      float sink = 0;
      for (int rep = 0; rep < reps + 1; rep++) {
        int t = threads;
        long t0 = System.nanoTime();
        Future<?>[] f = new Future<?>[t];
        float[] part = new float[t];
        for (int k = 0; k < t; k++) {
          int kk = k;
          long from = (long) n * k / t, to = (long) n * (k + 1) / t;
          Callable<Void> c =
              () -> {
                part[kk] = dot(a, (int) from, (int) to, x);
                return null;
              };
          f[k] = pool.submit(c);
        }
        for (Future<?> g : f) {
          g.get();
        }
        double s = (System.nanoTime() - t0) * 1e-9;
        for (float p : part) {
          sink += p;
        }
        if (rep > 0) {
          best = Math.max(best, 4.0 * n / s / 1e9);
        }
      }
      System.out.printf(
          Locale.ROOT,
          "%d thread(s): %.1f GB/s best of %d over %d MB (sink %.0f)%n",
          threads,
          best,
          reps,
          mb,
          sink);
    }
    pool.shutdown();
  }

  /** Σ a[i]·x[i mod 768] over [from, to), four accumulators. */
  private static float dot(float[] a, int from, int to, float[] x) {
    int vl = S.length();
    FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
    int i = from;
    int xo = 0;
    for (; i + 4 * vl <= to; i += 4 * vl) {
      s0 = FloatVector.fromArray(S, a, i).fma(FloatVector.fromArray(S, x, xo), s0);
      s1 = FloatVector.fromArray(S, a, i + vl).fma(FloatVector.fromArray(S, x, xo + vl), s1);
      s2 =
          FloatVector.fromArray(S, a, i + 2 * vl).fma(FloatVector.fromArray(S, x, xo + 2 * vl), s2);
      s3 =
          FloatVector.fromArray(S, a, i + 3 * vl).fma(FloatVector.fromArray(S, x, xo + 3 * vl), s3);
      xo += 4 * vl;
      if (xo + 4 * vl > x.length) {
        xo = 0;
      }
    }
    float s = s0.add(s1).add(s2).add(s3).reduceLanes(VectorOperators.ADD);
    for (; i < to; i++) {
      s += a[i];
    }
    return s;
  }
}
