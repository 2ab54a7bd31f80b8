package org.mambaspark.ops;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * GFLOP/s of {@link Matmul} on the Mamba-130m shapes (D = 768, ED = 1536, N = 16, R = 48, V =
 * 50280), forward at BT = 512 and BT = 1 and backward at BT = 512, against the plain reference loop
 * on one shape. A plain main, not a test: speed is measured, never asserted.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector \
 *   -cp mamba-udf/target/classes:mamba-udf/target/test-classes:$(deps) \
 *   org.mambaspark.ops.MatmulBench [threads=2] [seconds per shape=1] [BT=512]
 * </pre>
 *
 * FLOPs are 2·BT·C·OC per forward and twice that per backward (dinp and dweight). At BT = 1 the
 * product is bound by reading the weight, so GB/s of weight read is printed as well (the weights
 * are hot: all but lm_head's fit in L3 here, unlike a real decode step that streams 24 layers).
 * With threads = 1 the times are this thread's CPU time, robust on a busy machine; otherwise wall
 * clock. {@code -Dmamba.simd=false} measures the scalar path.
 */
public final class MatmulBench {
  private MatmulBench() {}

  /** One linear layer of the model: name, C (in features), OC (out features), inp row stride. */
  private record Shape(String name, int C, int OC, int inStride) {}

  private static final Shape[] SHAPES = {
    new Shape("in_proj", 768, 3072, 768),
    new Shape("x_proj", 1536, 80, 1536),
    new Shape("dt_proj", 48, 1536, 80),
    new Shape("out_proj", 1536, 768, 1536),
    new Shape("lm_head", 768, 50280, 768),
  };

  /** Per-token FLOPs of the model's matmuls: 24 layers of the four projections plus lm_head. */
  private static double flopsPerToken() {
    double layer = 0;
    for (int i = 0; i < 4; i++) {
      layer += 2.0 * SHAPES[i].C * SHAPES[i].OC;
    }
    return 24 * layer + 2.0 * SHAPES[4].C * SHAPES[4].OC;
  }

  public static void main(String[] args) {
    int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
    double seconds = args.length > 1 ? Double.parseDouble(args[1]) : 1.0;
    int bigBT = args.length > 2 ? Integer.parseInt(args[2]) : 512;
    Parallel.setThreads(threads);
    System.out.printf(
        Locale.ROOT,
        "threads %d, simd %s, %s, %.1f s per shape%n",
        Parallel.threads(),
        Simd.ENABLED,
        Matmul.describe(),
        seconds);
    SplittableRandom r = new SplittableRandom(42);
    double[] layerTime = new double[2];
    int[] bts = {bigBT, 1};
    for (int b = 0; b < bts.length; b++) {
      int BT = bts[b];
      for (int s = 0; s < SHAPES.length; s++) {
        Shape sh = SHAPES[s];
        double sec = forwardSeconds(r, sh, BT, seconds, false);
        double flops = 2.0 * BT * sh.C * sh.OC;
        String extra =
            BT <= 4
                ? String.format(Locale.ROOT, "  %6.1f GB/s weight", 4.0 * sh.C * sh.OC / sec / 1e9)
                : "";
        System.out.printf(
            Locale.ROOT,
            "forward  BT=%-4d %-9s C=%-5d OC=%-6d %8.3f ms %7.1f GFLOP/s%s%n",
            BT,
            sh.name,
            sh.C,
            sh.OC,
            sec * 1e3,
            flops / sec / 1e9,
            extra);
        layerTime[b] += (s < 4 ? 24 : 1) * sec;
      }
      System.out.printf(
          Locale.ROOT,
          "forward  BT=%-4d all matmuls of one forward: %.1f ms = %.0f tokens/s (%.1f GFLOP/s)%n",
          BT,
          layerTime[b] * 1e3,
          BT / layerTime[b],
          BT * flopsPerToken() / layerTime[b] / 1e9);
    }
    for (int s = 0; s < SHAPES.length; s++) {
      Shape sh = SHAPES[s];
      double sec = backwardSeconds(r, sh, bigBT, seconds);
      System.out.printf(
          Locale.ROOT,
          "backward BT=%-4d %-9s C=%-5d OC=%-6d %8.3f ms %7.1f GFLOP/s%n",
          bigBT,
          sh.name,
          sh.C,
          sh.OC,
          sec * 1e3,
          4.0 * bigBT * sh.C * sh.OC / sec / 1e9);
    }
    Shape ref = SHAPES[3];
    double fast = forwardSeconds(r, ref, bigBT, seconds, false);
    double slow = forwardSeconds(r, ref, bigBT, seconds, true);
    double flops = 2.0 * bigBT * ref.C * ref.OC;
    System.out.printf(
        Locale.ROOT,
        "%s BT=%d: fast %.1f GFLOP/s, reference loop (1 thread) %.1f GFLOP/s, speed-up %.1fx%n",
        ref.name,
        bigBT,
        flops / fast / 1e9,
        flops / slow / 1e9,
        slow / fast);
  }

  private static float[] rand(SplittableRandom r, int n) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (2 * r.nextDouble() - 1);
    }
    return a;
  }

  /** Seconds per forward of one shape, the fast path or the reference loop (see {@link #time}). */
  private static double forwardSeconds(
      SplittableRandom r, Shape sh, int BT, double seconds, boolean reference) {
    int C = sh.C, OC = sh.OC, inStride = sh.inStride;
    float[] inp = rand(r, BT * inStride), w = rand(r, OC * C), bias = rand(r, OC);
    float[] out = new float[BT * OC];
    Runnable call =
        reference
            ? () -> Matmul.matmulForwardReference(out, 0, OC, inp, 0, inStride, w, bias, BT, C, OC)
            : () -> Matmul.matmulForward(out, 0, OC, inp, 0, inStride, w, bias, BT, C, OC);
    return time(call, seconds);
  }

  private static double backwardSeconds(SplittableRandom r, Shape sh, int BT, double seconds) {
    int C = sh.C, OC = sh.OC, inStride = sh.inStride;
    float[] inp = rand(r, BT * inStride), w = rand(r, OC * C), dout = rand(r, BT * OC);
    float[] dinp = new float[BT * inStride], dw = new float[OC * C], db = new float[OC];
    return time(
        () ->
            Matmul.matmulBackward(
                dinp, 0, inStride, dw, db, dout, 0, OC, inp, 0, inStride, w, BT, C, OC),
        seconds);
  }

  private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

  /**
   * Nanoseconds: wall clock, or with one thread (the pool then runs every call inline) this
   * thread's CPU time, which other processes on a shared machine do not inflate.
   */
  private static long now() {
    return Parallel.threads() == 1 ? THREADS.getCurrentThreadCpuTime() : System.nanoTime();
  }

  /** Seconds per call: the best 50 ms batch after a warm-up, over {@code seconds} of wall clock. */
  private static double time(Runnable call, double seconds) {
    long warmEnd = System.nanoTime() + (long) (0.3 * seconds * 1e9);
    int n = 0;
    do {
      call.run();
      n++;
    } while (System.nanoTime() < warmEnd || n < 3);
    double best = Double.MAX_VALUE;
    long end = System.nanoTime() + (long) (seconds * 1e9);
    int reps = 0;
    // best of several batches: on a shared machine the best batch is the kernel's speed
    do {
      long t0 = now();
      int k = 0;
      do {
        call.run();
        k++;
      } while (now() - t0 < 50_000_000L);
      best = Math.min(best, (now() - t0) / 1e9 / k);
      reps++;
    } while (System.nanoTime() < end || reps < 3);
    return best;
  }
}
