package org.mambaspark.ops;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.mambaspark.Fixtures;

/**
 * The fast scan against the sequential reference, on odd sizes; pieces with the state carried equal
 * one pass.
 */
class SelectiveScanTest {
  static final double TOL = 1e-5;

  static float[] rand(SplittableRandom r, int n, double lo, double hi) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (lo + (hi - lo) * r.nextDouble());
    }
    return a;
  }

  /** Inputs of one scan problem. */
  static final class Problem {
    final int B, L, ED, N, R;
    final float[] u, delta, A, dbc, D, xz, h0;

    Problem(long seed, int B, int L, int ED, int N, int R) {
      this.B = B;
      this.L = L;
      this.ED = ED;
      this.N = N;
      this.R = R;
      SplittableRandom r = new SplittableRandom(seed);
      u = rand(r, B * L * ED, -2, 2);
      delta = rand(r, B * L * ED, 0.001, 0.5);
      A = rand(r, N * ED, -8, -0.5);
      dbc = rand(r, B * L * (R + 2 * N), -1, 1);
      D = rand(r, ED, 0.5, 1.5);
      xz = rand(r, B * L * 2 * ED, -3, 3);
      h0 = rand(r, B * N * ED, -1, 1);
    }
  }

  @Test
  void fastEqualsReferenceOnOddSizes() {
    double worst = 0;
    int[][] sizes = {
      {1, 1, 1, 1, 1},
      {2, 5, 7, 3, 2},
      {1, 37, 33, 16, 3},
      {3, 64, 100, 17, 5},
      {2, 129, 16, 16, 1},
      {1, 300, 257, 4, 8}
    };
    for (int[] s : sizes) {
      Problem p = new Problem(s[0] * 31L + s[1], s[0], s[1], s[2], s[3], s[4]);
      float[] yRef = new float[p.B * p.L * p.ED], yFast = new float[yRef.length];
      float[] hRef = p.h0.clone(), hFast = p.h0.clone();
      SelectiveScan.scanForwardReference(
          yRef, hRef, p.u, p.delta, p.A, p.dbc, p.R, p.D, p.xz, p.ED, 2 * p.ED, p.B, p.L, p.ED,
          p.N);
      SelectiveScan.scanForward(
          yFast, hFast, p.u, p.delta, p.A, p.dbc, p.R, p.D, p.xz, p.ED, 2 * p.ED, p.B, p.L, p.ED,
          p.N);
      double ey = Fixtures.relErr(yFast, yRef), eh = Fixtures.relErr(hFast, hRef);
      System.out.printf(
          "scan %s: y rel err %.2e, state rel err %.2e (simd %s)%n",
          Arrays.toString(s), ey, eh, Simd.ENABLED);
      worst = Math.max(worst, Math.max(ey, eh));
      assertTrue(ey < TOL && eh < TOL, Arrays.toString(s));
    }
    System.out.printf("scan fast vs reference: largest rel err %.2e%n", worst);
  }

  @Test
  void piecesWithCarriedStateEqualOnePass() {
    Problem p = new Problem(7, 2, 50, 40, 16, 3);
    int B = p.B, L = p.L, ED = p.ED, N = p.N, P = p.R + 2 * N;
    float[] yWhole = new float[B * L * ED];
    float[] h = p.h0.clone();
    SelectiveScan.scanForward(
        yWhole, h, p.u, p.delta, p.A, p.dbc, p.R, p.D, p.xz, ED, 2 * ED, B, L, ED, N);
    // B = 1 rows, in pieces of 1, 7 and the rest
    double worst = 0;
    for (int b = 0; b < B; b++) {
      float[] hb = Arrays.copyOfRange(p.h0, b * N * ED, (b + 1) * N * ED);
      int t0 = 0;
      for (int len : new int[] {1, 7, L - 8}) {
        float[] y = new float[len * ED];
        int row = b * L + t0;
        SelectiveScan.scanForward(
            y,
            hb,
            Arrays.copyOfRange(p.u, row * ED, (row + len) * ED),
            Arrays.copyOfRange(p.delta, row * ED, (row + len) * ED),
            p.A,
            Arrays.copyOfRange(p.dbc, row * P, (row + len) * P),
            p.R,
            p.D,
            Arrays.copyOfRange(p.xz, row * 2 * ED, (row + len) * 2 * ED),
            ED,
            2 * ED,
            1,
            len,
            ED,
            N);
        worst =
            Math.max(
                worst, Fixtures.relErr(y, Arrays.copyOfRange(yWhole, row * ED, (row + len) * ED)));
        t0 += len;
      }
      worst =
          Math.max(worst, Fixtures.relErr(hb, Arrays.copyOfRange(h, b * N * ED, (b + 1) * N * ED)));
    }
    System.out.printf("scan in pieces vs one pass: largest rel err %.2e%n", worst);
    assertTrue(worst < 1e-6);
  }
}
