package org.mambaspark.ops;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.mambaspark.Fixtures;

/**
 * The fast matmul (forward and backward) against the triple-loop reference and finite differences.
 */
class MatmulTest {
  static final double TOL = 1e-5;

  static float[] rand(SplittableRandom r, int n) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (2 * r.nextDouble() - 1);
    }
    return a;
  }

  // {BT, C, OC, inOff, inPad (stride - C), outOff, outPad}
  static final int[][] SHAPES = {
    {1, 1, 1, 0, 0, 0, 0},
    {1, 7, 3, 2, 1, 3, 5},
    {3, 17, 2, 0, 4, 1, 0},
    {7, 33, 65, 5, 0, 0, 3},
    {8, 16, 64, 0, 0, 0, 0},
    {9, 100, 129, 1, 3, 2, 7},
    {130, 48, 80, 0, 32, 0, 0},
    {257, 300, 70, 3, 0, 0, 2},
    {64, 513, 17, 0, 5, 0, 0},
    {33, 2, 300, 0, 0, 1, 0}
  };

  @Test
  void forwardEqualsReference() {
    SplittableRandom r = new SplittableRandom(1);
    double worst = 0;
    for (int[] s : SHAPES) {
      int BT = s[0],
          C = s[1],
          OC = s[2],
          inOff = s[3],
          inStride = C + s[4],
          outOff = s[5],
          outStride = OC + s[6];
      float[] inp = rand(r, inOff + BT * inStride), w = rand(r, OC * C);
      for (float[] bias : new float[][] {null, rand(r, OC)}) {
        float[] ref = rand(r, outOff + BT * outStride), fast = ref.clone();
        Matmul.matmulForwardReference(
            ref, outOff, outStride, inp, inOff, inStride, w, bias, BT, C, OC);
        Matmul.matmulForward(fast, outOff, outStride, inp, inOff, inStride, w, bias, BT, C, OC);
        double err = Fixtures.relErr(fast, ref);
        worst = Math.max(worst, err);
        assertTrue(err < TOL, Arrays.toString(s) + " err " + err);
      }
    }
    System.out.printf(
        "matmul forward fast vs reference (simd %s): largest rel err %.2e%n", Simd.ENABLED, worst);
  }

  @Test
  void backwardEqualsReference() {
    SplittableRandom r = new SplittableRandom(2);
    double worst = 0;
    for (int[] s : SHAPES) {
      int BT = s[0],
          C = s[1],
          OC = s[2],
          inOff = s[3],
          inStride = C + s[4],
          outOff = s[5],
          outStride = OC + s[6];
      float[] inp = rand(r, inOff + BT * inStride),
          w = rand(r, OC * C),
          dout = rand(r, outOff + BT * outStride);
      float[] dinpRef = rand(r, inOff + BT * inStride), dinp = dinpRef.clone();
      float[] dwRef = rand(r, OC * C), dw = dwRef.clone();
      float[] dbRef = rand(r, OC), db = dbRef.clone();
      Matmul.matmulBackwardReference(
          dinpRef, inOff, inStride, dwRef, dbRef, dout, outOff, outStride, inp, inOff, inStride, w,
          BT, C, OC);
      Matmul.matmulBackward(
          dinp, inOff, inStride, dw, db, dout, outOff, outStride, inp, inOff, inStride, w, BT, C,
          OC);
      double err =
          Math.max(
              Fixtures.relErr(dinp, dinpRef),
              Math.max(Fixtures.relErr(dw, dwRef), Fixtures.relErr(db, dbRef)));
      worst = Math.max(worst, err);
      assertTrue(err < TOL, Arrays.toString(s) + " err " + err);
    }
    System.out.printf(
        "matmul backward fast vs reference (simd %s): largest rel err %.2e%n", Simd.ENABLED, worst);
  }

  @Test
  void backwardMatchesFiniteDifferences() {
    // loss = Σ g ⊙ matmul(inp, w, b): its gradients are exactly what matmulBackward returns for
    // dout = g
    SplittableRandom r = new SplittableRandom(3);
    int BT = 5, C = 6, OC = 4;
    float[] inp = rand(r, BT * C), w = rand(r, OC * C), b = rand(r, OC), g = rand(r, BT * OC);
    float[] dinp = new float[BT * C], dw = new float[OC * C], db = new float[OC];
    Matmul.matmulBackward(dinp, 0, C, dw, db, g, 0, OC, inp, 0, C, w, BT, C, OC);
    double worst = 0;
    for (float[][] pair : new float[][][] {{inp, dinp}, {w, dw}, {b, db}}) {
      float[] x = pair[0], grad = pair[1];
      for (int i = 0; i < x.length; i++) {
        float keep = x[i];
        double h = 1e-2;
        x[i] = (float) (keep + h);
        double up = loss(inp, w, b, g, BT, C, OC);
        x[i] = (float) (keep - h);
        double down = loss(inp, w, b, g, BT, C, OC);
        x[i] = keep;
        double fd = (up - down) / (2 * h);
        worst = Math.max(worst, Math.abs(fd - grad[i]) / Math.max(1e-3, Math.abs(fd)));
      }
    }
    System.out.printf("matmul backward vs finite differences: largest rel err %.2e%n", worst);
    assertTrue(worst < 1e-3);
  }

  private static double loss(float[] inp, float[] w, float[] b, float[] g, int BT, int C, int OC) {
    float[] out = new float[BT * OC];
    Matmul.matmulForward(out, 0, OC, inp, 0, C, w, b, BT, C, OC);
    double s = 0;
    for (int i = 0; i < out.length; i++) {
      s += (double) out[i] * g[i];
    }
    return s;
  }
}
