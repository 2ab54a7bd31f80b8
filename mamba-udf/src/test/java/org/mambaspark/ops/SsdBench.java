package org.mambaspark.ops;

import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Milliseconds per call of {@link Ssd} on one Mamba-2 layer, by default mamba2-130m's (H = 24 heads
 * of P = 64, G = 1, N = 128, chunk Q = 256) at batch 1, L = 512: the chunked forward against the
 * sequential reference, the backward, and the decode step. A plain main, not a test: speed is
 * measured, never asserted.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector \
 *   -cp mamba-udf/target/classes:mamba-udf/target/test-classes:$(deps) \
 *   org.mambaspark.ops.SsdBench [threads=2] [seconds per op=2] [batch=1] [L=512] [H=24] [P=64]
 *   [G=1] [N=128] [Q=256]
 * </pre>
 *
 * {@code -Dssd.only=PREFIX} runs only the ops whose name starts with it. Median of the timed calls
 * after a warm-up of the same length: with threads = 1 this thread's CPU time (robust on a busy
 * machine; every op then runs on the calling thread), otherwise wall clock.
 */
public final class SsdBench {
  private SsdBench() {}

  public static void main(String[] args) {
    int[] v = {2, 2, 1, 512, 24, 64, 1, 128, 256};
    for (int i = 2; i < args.length && i < v.length; i++) {
      v[i] = Integer.parseInt(args[i]);
    }
    int threads = args.length > 0 ? Integer.parseInt(args[0]) : v[0];
    double seconds = args.length > 1 ? Double.parseDouble(args[1]) : 2.0;
    int batch = v[2], L = v[3], H = v[4], P = v[5], G = v[6], N = v[7], Q = v[8];
    Parallel.setThreads(threads);
    System.out.printf(
        Locale.ROOT,
        "ssd: threads %d, simd %s, batch %d, L %d, H %d, P %d, G %d, N %d, Q %d%n",
        Parallel.threads(),
        Simd.ENABLED,
        batch,
        L,
        H,
        P,
        G,
        N,
        Q);
    SplittableRandom r = new SplittableRandom(1);
    int conv = H * P + 2 * G * N, rows = batch * L, bOff = H * P, cOff = bOff + G * N;
    float[] xbc = SelectiveScanTest.rand(r, rows * conv, -1, 1);
    float[] dt = SelectiveScanTest.rand(r, rows * H, 0.001, 0.1);
    float[] A = SelectiveScanTest.rand(r, H, -8, -1);
    float[] Dskip = SelectiveScanTest.rand(r, H, 0.5, 1.5);
    float[] y = new float[rows * H * P], dy = SelectiveScanTest.rand(r, y.length, -1, 1);
    float[] state = new float[batch * H * P * N];
    float[] saved = new float[Ssd.savedSize(batch, L, H, P, N, Q)];
    float[] dxbc = new float[xbc.length], ddt = new float[dt.length];
    float[] dA = new float[H], dD = new float[H];
    time(
        "forward (chunked)",
        seconds,
        L,
        () ->
            Ssd.ssdForward(
                y, 0, H * P, null, saved, xbc, 0, conv, dt, 0, H, A, xbc, bOff, conv, xbc, cOff,
                conv, Dskip, batch, L, H, P, G, N, Q));
    time(
        "forward (reference)",
        seconds,
        L,
        () ->
            Ssd.ssdScanReference(
                y, 0, H * P, state, xbc, 0, conv, dt, 0, H, A, xbc, bOff, conv, xbc, cOff, conv,
                Dskip, batch, L, H, P, G, N));
    time(
        "backward (chunked)",
        seconds,
        L,
        () ->
            Ssd.ssdBackward(
                dxbc, 0, conv, ddt, 0, H, dA, dxbc, bOff, conv, dxbc, cOff, conv, dD, null, dy, 0,
                H * P, saved, xbc, 0, conv, dt, 0, H, A, xbc, bOff, conv, xbc, cOff, conv, Dskip,
                batch, L, H, P, G, N, Q));
    time(
        "L decode steps",
        seconds,
        L,
        () -> {
          for (int t = 0; t < L; t++) {
            Ssd.ssdStep(
                y,
                t * H * P,
                L * H * P,
                state,
                xbc,
                t * conv,
                L * conv,
                dt,
                t * H,
                L * H,
                A,
                xbc,
                bOff + t * conv,
                L * conv,
                xbc,
                cOff + t * conv,
                L * conv,
                Dskip,
                batch,
                H,
                P,
                G,
                N);
          }
        });
  }

  private static final java.lang.management.ThreadMXBean CPU =
      java.lang.management.ManagementFactory.getThreadMXBean();

  private static long now() {
    return Parallel.threads() == 1 ? CPU.getCurrentThreadCpuTime() : System.nanoTime();
  }

  private static void time(String what, double seconds, int L, Runnable op) {
    if (!what.startsWith(System.getProperty("ssd.only", ""))) { // -Dssd.only=forward: a profile
      return;
    }
    run(op, seconds); // warm-up
    double[] ms = run(op, seconds);
    java.util.Arrays.sort(ms);
    double med = ms[ms.length / 2];
    System.out.printf(
        Locale.ROOT,
        "%-22s %9.3f ms/call (median of %d; min %.3f)  %8.1f µs/position%n",
        what,
        med,
        ms.length,
        ms[0],
        1000 * med / L);
  }

  private static double[] run(Runnable op, double seconds) {
    double[] ms = new double[10000];
    int n = 0;
    long end = System.nanoTime() + (long) (seconds * 1e9);
    do {
      long t0 = now();
      op.run();
      ms[n++] = (now() - t0) / 1e6;
    } while (n < 3 || (System.nanoTime() < end && n < ms.length));
    return java.util.Arrays.copyOf(ms, n);
  }
}
