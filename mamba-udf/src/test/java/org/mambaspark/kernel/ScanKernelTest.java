package org.mambaspark.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambaspark.Fixtures;
import org.mambaspark.ops.SelectiveScan;

/**
 * The scan kernels against the CPU reference in {@code ops.SelectiveScan}: forward (y, final state,
 * chunk-boundary states) within 1e-5 relative error, backward (du, dΔ, dA, dB|dC, dD, dz) within
 * 1e-4, on odd sizes: L not a multiple of the chunk, L = 1, ED and N not powers of two, several
 * tilings (one channel per group, one segment, padded channels).
 */
class ScanKernelTest {
  static final double FWD_TOL = 1e-5;
  static final double BWD_TOL = 1e-4;

  static float[] rand(SplittableRandom r, int n, double lo, double hi) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (lo + (hi - lo) * r.nextDouble());
    }
    return a;
  }

  /** One problem: sizes, tilings, inputs, and the CPU's answers. */
  static final class Case {
    final int B, L, ED, N, R, P;
    final ScanTiling fwd, bwd;
    final float[] u, delta, A, dbc, D, xz, h0, dy;

    Case(long seed, int B, int L, int ED, int N, int R, ScanTiling fwd, ScanTiling bwd) {
      this.B = B;
      this.L = L;
      this.ED = ED;
      this.N = N;
      this.R = R;
      this.P = R + 2 * N;
      this.fwd = fwd;
      this.bwd = bwd;
      SplittableRandom r = new SplittableRandom(seed);
      u = rand(r, B * L * ED, -2, 2);
      delta = rand(r, B * L * ED, 0.001, 0.5);
      A = rand(r, N * ED, -8, -0.5);
      dbc = rand(r, B * L * P, -1, 1);
      D = rand(r, ED, 0.5, 1.5);
      xz = rand(r, B * L * 2 * ED, -3, 3);
      h0 = rand(r, B * N * ED, -1, 1);
      dy = rand(r, B * L * ED, -1, 1);
    }

    @Override
    public String toString() {
      return "B=" + B + " L=" + L + " ED=" + ED + " N=" + N + " R=" + R + " fwd " + fwd + " bwd "
          + bwd;
    }
  }

  static ScanTiling t(int ce, int s, int i) {
    return new ScanTiling(ce, s, i);
  }

  static final Case[] CASES = {
    new Case(1, 1, 1, 1, 1, 1, t(1, 1, 1), t(1, 1, 1)),
    new Case(2, 2, 5, 7, 3, 2, t(8, 4, 2), t(4, 2, 4)),
    new Case(3, 1, 37, 33, 16, 3, t(8, 16, 4), t(8, 8, 8)),
    new Case(4, 3, 64, 100, 17, 5, t(8, 4, 4), t(16, 2, 8)),
    new Case(5, 2, 129, 16, 16, 1, t(4, 8, 3), t(8, 4, 6)),
    new Case(6, 1, 300, 26, 5, 8, t(8, 16, 4), t(8, 8, 8)),
    new Case(
        7, 2, 77, 12, 64, 4, t(8, 16, 4), DeviceScan.fit(ScanTiling.BACKWARD, 64, 48 * 1024, true)),
    new Case(8, 2, 150, 37, 17, 5, t(8, 8, 4), t(8, 4, 4)),
    new Case(9, 1, 1, 9, 3, 2, t(4, 2, 4), t(4, 2, 4)),
    new Case(10, 3, 70, 20, 9, 3, t(3, 5, 4), t(3, 5, 4)),
  };

  @Test
  void tilingsShrinkToTheLocalMemoryOfANvidiaGpu() {
    long nvidia = 48 * 1024;
    for (int N : new int[] {1, 16, 17, 64, 128}) {
      ScanTiling f = DeviceScan.fit(ScanTiling.FORWARD, N, nvidia, false);
      ScanTiling b = DeviceScan.fit(ScanTiling.BACKWARD, N, nvidia, true);
      ScanTiling fb = DeviceScan.forwardWithChunk(b, N, nvidia, DeviceScan.VERSION);
      System.out.printf("N=%d: forward %s, backward %s, its forward %s%n", N, f, b, fb);
      assertTrue(4L * DeviceScan.forwardLocal(f, N, DeviceScan.VERSION) <= nvidia);
      assertTrue(4L * DeviceScan.backwardLocal(b, N, DeviceScan.VERSION) <= nvidia);
      assertTrue(4L * DeviceScan.forwardLocal(fb, N, DeviceScan.VERSION) <= nvidia);
      assertTrue(fb.chunk() == b.chunk());
    }
    assertTrue(DeviceScan.fit(ScanTiling.BACKWARD, 16, nvidia, true) == ScanTiling.BACKWARD);
  }

  @Test
  void backwardPartsComeFromThePropertyOrFillTheComputeUnits() {
    ScanTiling narrow = ScanTiling.BACKWARD_FEW_ROWS; // 4 channels, chunk 64
    String key = "mamba.gpu.scanParts";
    try {
      System.clearProperty(key);
      assertEquals(1, ScanTiling.backwardParts(1, 1536, 16384, narrow, 132));
      System.setProperty(key, "auto");
      // 384 groups a row, 4 · 132 wanted: 2 parts; 8 rows fill the device alone
      assertEquals(2, ScanTiling.backwardParts(1, 1536, 16384, narrow, 132));
      assertEquals(1, ScanTiling.backwardParts(8, 1536, 2048, narrow, 132));
      assertEquals(
          ScanTiling.MAX_BACKWARD_PARTS, ScanTiling.backwardParts(1, 4, 1 << 20, narrow, 132));
      assertEquals(3, ScanTiling.backwardParts(1, 4, 150, narrow, 132)); // one part a chunk at most
      System.setProperty(key, "5");
      assertEquals(5, ScanTiling.backwardParts(8, 1536, 2048, narrow, 132));
      assertEquals(1, ScanTiling.backwardParts(8, 1536, 64, narrow, 132));
      System.setProperty(key, "0");
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () -> ScanTiling.backwardParts(1, 1536, 16384, narrow, 132));
      assertTrue(e.getMessage().contains("mamba.gpu.scanParts"), e.getMessage());
    } finally {
      System.clearProperty(key);
    }
  }

  @ParameterizedTest(name = "forward version {0}")
  @ValueSource(ints = {1, 4})
  void forwardMatchesTheCpuReference(int version) {
    double worst = 0;
    for (Case c : CASES) {
      if (DeviceScan.version(c.fwd, version) != version) {
        continue; // version 4 is for 4 positions a thread
      }
      int T = c.fwd.chunk();
      float[] yRef = new float[c.B * c.L * c.ED];
      float[] hRef = c.h0.clone();
      float[] hcRef = new float[c.B * SelectiveScan.chunkCount(c.L, T) * c.N * c.ED];
      SelectiveScan.saveChunkStates(
          hcRef, T, c.h0, c.u, c.delta, c.A, c.dbc, c.R, c.B, c.L, c.ED, c.N);
      SelectiveScan.scanForwardReference(
          yRef, hRef, c.u, c.delta, c.A, c.dbc, c.R, c.D, c.xz, c.ED, 2 * c.ED, c.B, c.L, c.ED,
          c.N);
      float[] y = new float[yRef.length];
      float[] h = new float[hRef.length];
      float[] hc = new float[hcRef.length];
      try (DeviceScan ds =
          new DeviceScan(
              OpenClTests.device(),
              c.B,
              c.L,
              c.ED,
              c.N,
              c.R,
              c.P,
              2 * c.ED,
              c.fwd,
              null,
              false,
              version)) {
        ds.upload(c.u, c.delta, c.A, c.dbc, c.D, c.xz, c.ED, c.h0);
        ds.forward(true);
        ds.download(y, h, hc);
      }
      double ey = Fixtures.relErr(y, yRef);
      double eh = Fixtures.relErr(h, hRef);
      double ec = Fixtures.relErr(hc, hcRef);
      System.out.printf(
          "scan fwd v%d %s: y %.2e, h_L %.2e, chunk states %.2e%n", version, c, ey, eh, ec);
      worst = Math.max(worst, Math.max(ey, Math.max(eh, ec)));
      assertTrue(ey < FWD_TOL && eh < FWD_TOL && ec < FWD_TOL, c.toString());
    }
    System.out.printf("scan forward kernel v%d vs CPU: largest rel err %.2e%n", version, worst);
  }

  @ParameterizedTest(name = "backward version {0}")
  @ValueSource(ints = {1, 4})
  void backwardMatchesTheCpuReference(int version) {
    double worst = 0;
    for (Case c : CASES) {
      if (DeviceScan.version(c.bwd, version) == version) { // version 4: 4 positions a thread
        worst = Math.max(worst, backward(c, version, 1));
      }
    }
    System.out.printf("scan backward kernel v%d vs CPU: largest rel err %.2e%n", version, worst);
  }

  /**
   * Rows split into parts of chunks across work-groups, the adjoint carried between parts by the
   * carry pass: more parts than chunks (empty parts), parts of one chunk, and uneven last parts.
   */
  @ParameterizedTest(name = "backward in {0} parts a row")
  @ValueSource(ints = {2, 3, 7})
  void backwardWithRowsInPartsMatchesTheCpuReference(int parts) {
    double worst = 0;
    for (Case c : CASES) {
      if (DeviceScan.version(c.bwd, 4) == 4) {
        worst = Math.max(worst, backward(c, 4, parts));
      }
    }
    System.out.printf(
        "scan backward kernel in %d parts vs CPU: largest rel err %.2e%n", parts, worst);
  }

  /** The backward of case c on the device against the CPU's: the largest relative error. */
  private static double backward(Case c, int version, int parts) {
    int T = c.bwd.chunk();
    // the forward that saves the chunk states: same chunk
    ScanTiling fwd = DeviceScan.forwardWithChunk(c.bwd, c.N, 1L << 30, version);
    int BT = c.B * c.L;
    float[] hc = new float[c.B * SelectiveScan.chunkCount(c.L, T) * c.N * c.ED];
    // the CPU's backward from a fresh state (training), with the same chunk
    SelectiveScan.saveChunkStates(hc, T, null, c.u, c.delta, c.A, c.dbc, c.R, c.B, c.L, c.ED, c.N);
    float[] du = new float[BT * c.ED], ddt = new float[BT * c.ED], dA = new float[c.N * c.ED];
    float[] ddbc = new float[BT * c.P], dD = new float[c.ED], dz = new float[BT * 2 * c.ED];
    SelectiveScan.scanBackward(
        du, ddt, dA, ddbc, dD, dz, c.dy, hc, T, c.u, c.delta, c.A, c.dbc, c.R, c.D, c.xz, c.ED,
        2 * c.ED, c.B, c.L, c.ED, c.N);
    float[] gdu = new float[du.length], gddt = new float[ddt.length], gdA = new float[dA.length];
    float[] gddbc = new float[ddbc.length], gdD = new float[dD.length], gdz = new float[dz.length];
    try (DeviceScan ds =
        new DeviceScan(
            OpenClTests.device(),
            c.B,
            c.L,
            c.ED,
            c.N,
            c.R,
            c.P,
            2 * c.ED,
            fwd,
            c.bwd,
            true,
            version)) {
      ds.setBackwardParts(parts);
      ds.upload(c.u, c.delta, c.A, c.dbc, c.D, c.xz, c.ED, null);
      ds.forward(true);
      ds.uploadGradient(c.dy);
      ds.backward();
      ds.downloadGradients(gdu, gddt, gdA, gddbc, gdD, gdz);
    }
    double[] errs = {
      Fixtures.relErr(gdu, du),
      Fixtures.relErr(gddt, ddt),
      Fixtures.relErr(gdA, dA),
      Fixtures.relErr(gddbc, ddbc),
      Fixtures.relErr(gdD, dD),
      Fixtures.relErr(gdz, dz)
    };
    System.out.printf(
        "scan bwd v%d %s, %d part(s) a row: du %.2e dΔ %.2e dA %.2e dB|dC %.2e dD %.2e dz %.2e%n",
        version, c, parts, errs[0], errs[1], errs[2], errs[3], errs[4], errs[5]);
    double worst = 0;
    for (double e : errs) {
      worst = Math.max(worst, e);
      assertTrue(e < BWD_TOL, c + " in " + parts + " parts: " + Arrays.toString(errs));
    }
    return worst;
  }
}
