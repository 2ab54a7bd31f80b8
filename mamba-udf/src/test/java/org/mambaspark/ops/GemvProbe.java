package org.mambaspark.ops;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * One thread's matrix-vector product speed per weight format, as a decode step meets it: {@code
 * count} distinct matrices of one shape taken in turn (24 in_proj's stream from memory; 1 stays hot
 * in cache), timed by this thread's CPU time so that other processes' load counts little. With
 * {@code short OC C}: the Vector API dot products against the scalar ones on short rows (dt_proj's
 * C = 48). A plain main, not a test.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp mamba-udf/target/classes:mamba-udf/target/test-classes:DEPS \
 *   org.mambaspark.ops.GemvProbe [OC=3072] [C=768] [count=24] [seconds=2]
 * </pre>
 */
public final class GemvProbe {
  private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

  private GemvProbe() {}

  public static void main(String[] args) {
    if (args.length > 0 && args[0].equals("short")) {
      shortRows(Integer.parseInt(args[1]), Integer.parseInt(args[2]));
      return;
    }
    int OC = args.length > 0 ? Integer.parseInt(args[0]) : 3072;
    int C = args.length > 1 ? Integer.parseInt(args[1]) : 768;
    int count = args.length > 2 ? Integer.parseInt(args[2]) : 24;
    double seconds = args.length > 3 ? Double.parseDouble(args[3]) : 2;
    SplittableRandom r = new SplittableRandom(3);
    float[] x = new float[C];
    for (int i = 0; i < C; i++) {
      x[i] = (float) r.nextGaussian();
    }
    float[] out = new float[OC];
    for (WeightMatrix.Dtype d : WeightMatrix.Dtype.values()) {
      WeightMatrix[] ws = new WeightMatrix[count];
      for (int k = 0; k < count; k++) {
        float[] w = new float[OC * C];
        for (int i = 0; i < w.length; i++) {
          w[i] = (float) r.nextGaussian();
        }
        ws[k] = WeightMatrix.of(w, OC, C, d);
      }
      for (int pass = 0; pass < 2; pass++) { // the first pass warms up
        long t0 = THREADS.getCurrentThreadCpuTime();
        long n = 0;
        while (THREADS.getCurrentThreadCpuTime() - t0 < seconds * 1e9) {
          for (WeightMatrix w : ws) {
            if (d == WeightMatrix.Dtype.FP32) {
              MatmulSimd.dotRows(out, 0, OC, x, 0, C, w.f32, null, 1, C, 0, OC);
            } else {
              WeightMatrixSimd.dotRows(out, 0, OC, x, 0, C, w, null, 1, 0, OC);
            }
            n++;
          }
        }
        double s = (THREADS.getCurrentThreadCpuTime() - t0) / 1e9;
        if (pass == 1) {
          double gw = (double) n * OC * C / s / 1e9;
          System.out.printf(
              Locale.ROOT,
              "%s (%d, %d) x%d: %.3f ms each, %.2f Gweights/s, %.1f GB/s%n",
              d.label(),
              OC,
              C,
              count,
              s * 1e3 / n,
              gw,
              gw * d.bytesPerWeight);
        }
      }
    }
  }

  /** The Vector API dot products against the scalar ones on short rows, hot in cache. */
  static void shortRows(int OC, int C) {
    SplittableRandom r = new SplittableRandom(5);
    float[] w = new float[OC * C], x = new float[C], out = new float[OC];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) r.nextGaussian();
    }
    for (int pass = 0; pass < 4; pass++) {
      boolean simd = pass % 2 == 0;
      long t0 = THREADS.getCurrentThreadCpuTime();
      int n = 0;
      for (; n < 20000; n++) {
        if (simd) {
          MatmulSimd.dotRows(out, 0, OC, x, 0, C, w, null, 1, C, 0, OC);
        } else {
          MatmulGemm.dotRowsScalar(out, 0, OC, x, 0, C, w, null, 1, C, 0, OC);
        }
      }
      System.out.printf(
          Locale.ROOT,
          "(%d, %d) %s: %.2f us each%n",
          OC,
          C,
          simd ? "vector" : "scalar",
          (THREADS.getCurrentThreadCpuTime() - t0) / 1e3 / n);
    }
  }
}
