package org.mambaspark.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.mambaspark.Fixtures;

/**
 * The fast matmul (forward and backward; Vector API and scalar micro-kernels) against the
 * triple-loop reference, the backward against finite differences of a double-precision forward,
 * results against the thread count, and the Vector API path at other vector lengths (forked JVMs).
 * Tolerance: ||fast − ref|| / ||ref|| below 1e-5 per tensor; the largest error seen is printed.
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

  /**
   * {BT, C, OC, inOff, inPad (inStride − C), outOff, outPad}: degenerate sizes, every remainder
   * against the 4-row and 4-vector tile, the few-rows (decoding) path, and the Mamba projections at
   * small BT (dt_proj reading 48 of x_proj's 80 columns).
   */
  static final int[][] FIXED = {
    {1, 1, 1, 0, 0, 0, 0},
    {1, 2, 3, 1, 0, 2, 1},
    {1, 7, 3, 2, 1, 3, 5},
    {2, 3, 1, 0, 2, 0, 0},
    {3, 17, 2, 0, 4, 1, 0},
    {7, 33, 65, 5, 0, 0, 3},
    {8, 16, 64, 0, 0, 0, 0},
    {9, 100, 129, 1, 3, 2, 7},
    {17, 1, 17, 0, 0, 0, 0},
    {17, 17, 1, 0, 1, 3, 0},
    {33, 2, 300, 0, 0, 1, 0},
    {64, 513, 17, 0, 5, 0, 0},
    {130, 48, 80, 0, 32, 0, 0},
    {257, 300, 70, 3, 0, 0, 2},
    {1, 768, 3072, 0, 0, 0, 0}, // in_proj, decoding
    {3, 1536, 80, 0, 0, 0, 0}, // x_proj, decoding
    {1, 48, 1536, 0, 32, 0, 0}, // dt_proj, decoding
    {66, 768, 600, 0, 0, 0, 0}, // in_proj-like, two K blocks
    {37, 1536, 80, 0, 0, 0, 0}, // x_proj
    {37, 48, 1536, 0, 32, 0, 0}, // dt_proj
    {21, 1536, 200, 7, 0, 5, 11}, // out_proj-like
    {520, 40, 140, 0, 0, 0, 0}, // more rows than one job holds
  };

  /** The fixed shapes and 40 random ones (sizes 1 .. 300, offsets and paddings 0 .. 9). */
  static List<int[]> shapes() {
    List<int[]> s = new ArrayList<>(Arrays.asList(FIXED));
    SplittableRandom r = new SplittableRandom(7);
    for (int i = 0; i < 40; i++) {
      int BT = i % 3 == 0 ? 1 + r.nextInt(9) : 1 + r.nextInt(300);
      s.add(
          new int[] {
            BT,
            1 + r.nextInt(300),
            1 + r.nextInt(300),
            r.nextInt(10),
            r.nextInt(10),
            r.nextInt(10),
            r.nextInt(10)
          });
    }
    return s;
  }

  /** The micro-kernels to test: the scalar ones always, the Vector API ones where loaded. */
  static boolean[] paths() {
    return Simd.ENABLED ? new boolean[] {true, false} : new boolean[] {false};
  }

  /** Largest forward error over all shapes, bias null and not, for one path. */
  static double forwardWorst(boolean simd) {
    SplittableRandom r = new SplittableRandom(1);
    double worst = 0;
    for (int[] s : shapes()) {
      int BT = s[0], C = s[1], OC = s[2], inOff = s[3], inStride = C + s[4];
      int outOff = s[5], outStride = OC + s[6];
      float[] inp = rand(r, inOff + BT * inStride), w = rand(r, OC * C);
      for (float[] bias : new float[][] {null, rand(r, OC)}) {
        float[] ref = rand(r, outOff + BT * outStride), fast = ref.clone();
        Matmul.matmulForwardReference(
            ref, outOff, outStride, inp, inOff, inStride, w, bias, BT, C, OC);
        Matmul.forward(simd, fast, outOff, outStride, inp, inOff, inStride, w, bias, BT, C, OC);
        double err = Fixtures.relErr(fast, ref);
        worst = Math.max(worst, err);
        assertTrue(err < TOL, "simd " + simd + " " + Arrays.toString(s) + " err " + err);
        // the padding between rows, and what lies before the offset, is left alone
        for (int t = 0; t < BT; t++) {
          for (int o = OC; o < outStride && outOff + t * outStride + o < ref.length; o++) {
            assertEquals(ref[outOff + t * outStride + o], fast[outOff + t * outStride + o]);
          }
        }
        for (int i = 0; i < outOff; i++) {
          assertEquals(ref[i], fast[i]);
        }
      }
    }
    return worst;
  }

  @Test
  void forwardEqualsReference() {
    for (boolean simd : paths()) {
      System.out.printf(
          "matmul forward %s vs reference: largest rel err %.2e%n",
          simd ? "Vector API" : "scalar", forwardWorst(simd));
    }
  }

  /** Largest backward error over all shapes, for one path, each of dinp/dweight/dbias alone too. */
  static double backwardWorst(boolean simd) {
    SplittableRandom r = new SplittableRandom(2);
    double worst = 0;
    for (int[] s : shapes()) {
      int BT = s[0], C = s[1], OC = s[2], inOff = s[3], inStride = C + s[4];
      int outOff = s[5], outStride = OC + s[6];
      float[] inp = rand(r, inOff + BT * inStride), w = rand(r, OC * C);
      float[] dout = rand(r, outOff + BT * outStride);
      for (int wanted = 1; wanted < 8; wanted++) { // bits: dinp, dweight, dbias
        float[] dinpRef = (wanted & 1) != 0 ? rand(r, inOff + BT * inStride) : null;
        float[] dwRef = (wanted & 2) != 0 ? rand(r, OC * C) : null;
        float[] dbRef = (wanted & 4) != 0 ? rand(r, OC) : null;
        float[] dinp = dinpRef == null ? null : dinpRef.clone();
        float[] dw = dwRef == null ? null : dwRef.clone();
        float[] db = dbRef == null ? null : dbRef.clone();
        Matmul.matmulBackwardReference(
            dinpRef, inOff, inStride, dwRef, dbRef, dout, outOff, outStride, inp, inOff, inStride,
            w, BT, C, OC);
        Matmul.backward(
            simd, dinp, inOff, inStride, dw, db, dout, outOff, outStride, inp, inOff, inStride, w,
            BT, C, OC);
        double err = 0;
        if (dinp != null) {
          err = Math.max(err, Fixtures.relErr(dinp, dinpRef));
        }
        if (dw != null) {
          err = Math.max(err, Fixtures.relErr(dw, dwRef));
        }
        if (db != null) {
          err = Math.max(err, Fixtures.relErr(db, dbRef));
        }
        worst = Math.max(worst, err);
        assertTrue(
            err < TOL,
            "simd " + simd + " " + Arrays.toString(s) + " wanted " + wanted + " err " + err);
      }
    }
    return worst;
  }

  @Test
  void backwardEqualsReference() {
    for (boolean simd : paths()) {
      System.out.printf(
          "matmul backward %s vs reference: largest rel err %.2e%n",
          simd ? "Vector API" : "scalar", backwardWorst(simd));
    }
  }

  /**
   * Σ g ⊙ (inp @ wᵀ + b), all in double: linear in each argument, so central differences are exact.
   */
  private static double loss(float[] inp, float[] w, float[] b, float[] g, int BT, int C, int OC) {
    double s = 0;
    for (int t = 0; t < BT; t++) {
      for (int o = 0; o < OC; o++) {
        double y = b[o];
        for (int c = 0; c < C; c++) {
          y += (double) inp[t * C + c] * w[o * C + c];
        }
        s += g[t * OC + o] * y;
      }
    }
    return s;
  }

  @Test
  void backwardMatchesFiniteDifferences() {
    // loss = Σ g ⊙ matmul(inp, w, b): its gradients are what matmulBackward returns for dout = g
    SplittableRandom r = new SplittableRandom(3);
    int BT = 9, C = 6, OC = 5;
    float[] inp = rand(r, BT * C), w = rand(r, OC * C), b = rand(r, OC), g = rand(r, BT * OC);
    for (boolean simd : paths()) {
      float[] dinp = new float[BT * C], dw = new float[OC * C], db = new float[OC];
      Matmul.backward(simd, dinp, 0, C, dw, db, g, 0, OC, inp, 0, C, w, BT, C, OC);
      double worst = 0;
      for (float[][] pair : new float[][][] {{inp, dinp}, {w, dw}, {b, db}}) {
        float[] x = pair[0], grad = pair[1];
        for (int i = 0; i < x.length; i++) {
          float keep = x[i];
          float h = 0.125f; // exact in float: keep ± h rounds, so divide by the step actually taken
          x[i] = keep + h;
          double up = loss(inp, w, b, g, BT, C, OC), hu = (double) x[i] - keep;
          x[i] = keep - h;
          double down = loss(inp, w, b, g, BT, C, OC), hd = (double) keep - x[i];
          x[i] = keep;
          double fd = (up - down) / (hu + hd);
          worst = Math.max(worst, Math.abs(fd - grad[i]) / Math.max(1e-3, Math.abs(fd)));
        }
      }
      System.out.printf(
          "matmul backward %s vs finite differences (double): largest rel err %.2e%n",
          simd ? "Vector API" : "scalar", worst);
      assertTrue(worst < 1e-4, "rel err " + worst);
    }
  }

  @Test
  void resultsDoNotDependOnTheThreadCount() {
    int keep = Parallel.threads();
    SplittableRandom r = new SplittableRandom(4);
    int BT = 150, C = 300, OC = 700;
    float[] inp = rand(r, BT * C), w = rand(r, OC * C), bias = rand(r, OC), dout = rand(r, BT * OC);
    float[][] first = null;
    try {
      for (int threads : new int[] {1, 2, 3, 5}) {
        Parallel.setThreads(threads);
        float[] out = new float[BT * OC], dinp = new float[BT * C], dw = new float[OC * C];
        float[] db = new float[OC], dec = new float[2 * OC];
        Matmul.matmulForward(out, 0, OC, inp, 0, C, w, bias, BT, C, OC);
        Matmul.matmulForward(dec, 0, OC, inp, 0, C, w, bias, 2, C, OC);
        Matmul.matmulBackward(dinp, 0, C, dw, db, dout, 0, OC, inp, 0, C, w, BT, C, OC);
        float[][] now = {out, dec, dinp, dw, db};
        if (first == null) {
          first = now;
        } else {
          for (int i = 0; i < now.length; i++) {
            assertArrayEquals(first[i], now[i], "tensor " + i + " with " + threads + " threads");
          }
        }
      }
    } finally {
      Parallel.setThreads(keep);
    }
  }
}
