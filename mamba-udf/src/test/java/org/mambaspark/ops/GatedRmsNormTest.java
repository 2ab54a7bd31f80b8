package org.mambaspark.ops;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.mambaspark.Fixtures;

/**
 * The gated RMSNorm against the formula written out in double, and its backward against central
 * differences of that double formula, with one group and several.
 */
class GatedRmsNormTest {
  /** The float forward vs the double formula. */
  static final double TOL = 1e-6;

  /**
   * The float backward vs finite differences of the double formula: about 1e-7 for groups of 12
   * channels or more, 1e-5 for groups of two, where the two terms of du nearly cancel.
   */
  static final double FD_TOL = 1e-4;

  static final float EPS = 1e-5f;

  /** One problem: z in a wider in_proj-like buffer at an offset. */
  static final class Problem {
    final int BT, ED, G, zOff, zStride;
    final float[] y, z, weight, dout;

    Problem(long seed, int BT, int ED, int G) {
      this.BT = BT;
      this.ED = ED;
      this.G = G;
      zOff = 3;
      zStride = 2 * ED + 5;
      SplittableRandom r = new SplittableRandom(seed);
      y = SelectiveScanTest.rand(r, BT * ED, -2, 2);
      z = SelectiveScanTest.rand(r, zOff + BT * zStride, -4, 4);
      weight = SelectiveScanTest.rand(r, ED, 0.5, 1.5);
      dout = SelectiveScanTest.rand(r, BT * ED, -1, 1);
    }

    /** out by the formula, in double: per group u / sqrt(mean(u²) + eps) · weight. */
    double[] formula() {
      int K = ED / G;
      double[] out = new double[BT * ED];
      for (int t = 0; t < BT; t++) {
        for (int g = 0; g < G; g++) {
          double[] u = new double[K];
          double ss = 0;
          for (int k = 0; k < K; k++) {
            int e = g * K + k;
            double zz = z[zOff + t * zStride + e];
            u[k] = y[t * ED + e] * zz / (1 + Math.exp(-zz));
            ss += u[k] * u[k];
          }
          double r = 1 / Math.sqrt(ss / K + EPS);
          for (int k = 0; k < K; k++) {
            out[t * ED + g * K + k] = u[k] * r * weight[g * K + k];
          }
        }
      }
      return out;
    }

    /** The forward into out; returns the saved rstd. */
    float[] forward(float[] out) {
      float[] rstd = new float[BT * G];
      GatedRmsNorm.gatedRmsnormForward(out, rstd, y, z, zOff, zStride, weight, BT, ED, G, EPS);
      return rstd;
    }

    double loss() {
      double[] out = formula();
      double l = 0;
      for (int i = 0; i < out.length; i++) {
        l += dout[i] * out[i];
      }
      return l;
    }
  }

  /**
   * BT, ED, G. No group of one channel: there out = sign(u)·(1 − O(eps/u²)) and its gradient, of
   * order eps, is below float's resolution of the two terms that cancel to give it.
   */
  static final int[][] SHAPES = {{1, 2, 1}, {5, 12, 1}, {4, 12, 3}, {3, 32, 16}, {7, 48, 4}};

  @Test
  void forwardMatchesFormula() {
    double worst = 0;
    for (int[] s : SHAPES) {
      Problem p = new Problem(s[0] * 7L + s[1] + s[2], s[0], s[1], s[2]);
      float[] out = new float[p.BT * p.ED];
      p.forward(out);
      double[] ref = p.formula();
      float[] refF = new float[ref.length];
      for (int i = 0; i < ref.length; i++) {
        refF[i] = (float) ref[i];
      }
      double e = Fixtures.relErr(out, refF);
      worst = Math.max(worst, e);
      assertTrue(e < TOL, java.util.Arrays.toString(s) + " " + e);
    }
    System.out.printf("gated rmsnorm vs formula: largest rel err %.2e%n", worst);
  }

  @Test
  void backwardMatchesFiniteDifferences() {
    double worst = 0;
    for (int[] s : SHAPES) {
      Problem p = new Problem(s[0] * 11L + s[1] + s[2], s[0], s[1], s[2]);
      float[] rstd = p.forward(new float[p.BT * p.ED]);
      float[] dy = new float[p.y.length], dz = new float[p.z.length], dw = new float[p.ED];
      GatedRmsNorm.gatedRmsnormBackward(
          dy, dz, p.zOff, p.zStride, dw, p.dout, p.y, p.z, p.zOff, p.zStride, p.weight, rstd, p.BT,
          p.ED, p.G);
      double ey = SsdTest.finiteDifferences(p.y, dy, p::loss);
      double ez = SsdTest.finiteDifferences(p.z, dz, p::loss); // z's other columns: gradient 0
      double ew = SsdTest.finiteDifferences(p.weight, dw, p::loss);
      System.out.printf(
          "gated rmsnorm %s vs finite differences: dy %.2e dz %.2e dweight %.2e%n",
          java.util.Arrays.toString(s), ey, ez, ew);
      worst = Math.max(worst, Math.max(ey, Math.max(ez, ew)));
      assertTrue(ey < FD_TOL && ez < FD_TOL && ew < FD_TOL, java.util.Arrays.toString(s));
    }
    System.out.printf(
        "gated rmsnorm backward vs finite differences: largest rel err %.2e%n", worst);
  }

  @Test
  void groupsMustDivideChannels() {
    Problem p = new Problem(1, 2, 12, 1);
    assertThrows(
        IllegalArgumentException.class,
        () ->
            GatedRmsNorm.gatedRmsnormForward(
                new float[24], null, p.y, p.z, p.zOff, p.zStride, p.weight, 2, 12, 5, EPS));
  }
}
