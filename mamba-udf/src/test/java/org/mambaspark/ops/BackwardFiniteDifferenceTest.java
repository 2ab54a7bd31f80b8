package org.mambaspark.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Each backward method against central finite differences of its forward, on small random inputs:
 * the loss is Σ g ⊙ forward(x) for a fixed random g, so the analytic gradient is the backward
 * method with dout = g. Forwards run in float, so differences use a step of 1e-2 and compare whole
 * gradient vectors (relative error of the norm).
 */
class BackwardFiniteDifferenceTest {
  static final double TOL = 2e-3;

  /** A scalar function of the current values of the arrays it closes over. */
  interface Loss {
    double value();
  }

  static float[] rand(SplittableRandom r, int n, double lo, double hi) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (lo + (hi - lo) * r.nextDouble());
    }
    return a;
  }

  static double dot(float[] g, float[] y) {
    double s = 0;
    for (int i = 0; i < g.length; i++) {
      s += (double) g[i] * y[i];
    }
    return s;
  }

  /** ||fd − analytic|| / ||fd|| over every entry of x. */
  static double check(String what, float[] x, float[] analytic, Loss f) {
    double num = 0, den = 0;
    for (int i = 0; i < x.length; i++) {
      float keep = x[i];
      double h = 1e-2;
      x[i] = (float) (keep + h);
      double up = f.value();
      x[i] = (float) (keep - h);
      double down = f.value();
      x[i] = keep;
      double fd = (up - down) / (2 * h);
      num += (fd - analytic[i]) * (fd - analytic[i]);
      den += fd * fd;
    }
    double err = Math.sqrt(num / Math.max(den, 1e-30));
    System.out.printf("finite differences %-28s rel err %.2e%n", what, err);
    assertTrue(err < TOL, what + " rel err " + err);
    return err;
  }

  @Test
  void rmsnorm() {
    SplittableRandom r = new SplittableRandom(1);
    int BT = 3, D = 7;
    float[] x = rand(r, BT * D, -2, 2), w = rand(r, D, 0.5, 1.5), g = rand(r, BT * D, -1, 1);
    float[] out = new float[BT * D], rstd = new float[BT];
    Loss f =
        () -> {
          RmsNorm.rmsnormForward(out, rstd, x, w, BT, D, 1e-5f);
          return dot(g, out);
        };
    f.value();
    float[] dx = new float[BT * D], dw = new float[D];
    RmsNorm.rmsnormBackward(dx, dw, g, x, w, rstd, BT, D);
    check("rmsnorm dinp", x, dx, f);
    check("rmsnorm dweight", w, dw, f);
  }

  @Test
  void convWithSilu() {
    for (int K : new int[] {2, 3, 4}) {
      SplittableRandom r = new SplittableRandom(K);
      int B = 2, L = 5, ED = 3, stride = 2 * ED;
      float[] x = rand(r, B * L * stride, -2, 2),
          w = rand(r, ED * K, -1, 1),
          b = rand(r, ED, -0.5, 0.5);
      float[] g = rand(r, B * L * ED, -1, 1),
          out = new float[B * L * ED],
          pre = new float[B * L * ED];
      Loss f =
          () -> {
            Conv1d.convForward(out, pre, x, 0, stride, null, w, b, B, L, ED, K);
            return dot(g, out);
          };
      f.value();
      float[] dx = new float[x.length], dw = new float[w.length], db = new float[ED];
      Conv1d.convBackward(dx, dw, db, g, pre, x, 0, stride, w, B, L, ED, K);
      check("conv K=" + K + " dinp", x, dx, f);
      check("conv K=" + K + " dweight", w, dw, f);
      check("conv K=" + K + " dbias", b, db, f);
    }
  }

  /** The fused decode step equals convForward + updateState at L = 1, output and state. */
  @Test
  void convStepIsForwardThenUpdateState() {
    double worst = 0;
    for (int K : new int[] {1, 2, 4, 5}) {
      SplittableRandom r = new SplittableRandom(10 + K);
      int B = 3, ED = 37, inStride = 2 * ED + 3, inOff = 2;
      float[] inp = MatmulTest.rand(r, B * inStride);
      float[] w = MatmulTest.rand(r, ED * K);
      float[] bias = K % 2 == 0 ? MatmulTest.rand(r, ED) : null;
      float[] state = MatmulTest.rand(r, B * ED * (K - 1));
      float[] refState = state.clone();
      float[] ref = new float[B * ED];
      Conv1d.convForward(ref, null, inp, inOff, inStride, refState, w, bias, B, 1, ED, K);
      Conv1d.updateState(refState, inp, inOff, inStride, B, 1, ED, K);
      float[] out = new float[B * ED];
      Conv1d.convStep(out, inp, inOff, inStride, state, w, bias, B, ED, K);
      for (int i = 0; i < out.length; i++) {
        worst = Math.max(worst, Math.abs(out[i] - ref[i]));
      }
      assertArrayEquals(ref, out, 1e-6f, "output, K = " + K);
      assertArrayEquals(refState, state, 0f, "state, K = " + K);
    }
    System.out.printf("conv step vs forward + updateState: largest difference %.3g%n", worst);
  }

  @Test
  void softplus() {
    SplittableRandom r = new SplittableRandom(3);
    int rows = 4, cols = 6;
    float[] pre = rand(r, rows * cols, -25, 25), g = rand(r, rows * cols, -1, 1);
    pre[0] = 19.5f; // both sides of the threshold
    pre[1] = 20.5f;
    float[] y = new float[pre.length];
    Loss f =
        () -> {
          System.arraycopy(pre, 0, y, 0, pre.length);
          Activations.softplusForward(y, 0, cols, rows, cols);
          return dot(g, y);
        };
    float[] d = g.clone();
    Activations.softplusBackward(d, pre, 0, cols, rows, cols);
    check("softplus", pre, d, f);
  }

  @Test
  void selectiveScanChunked() {
    for (int T : new int[] {3, 7, 100}) {
      SplittableRandom r = new SplittableRandom(T);
      int B = 2, L = 7, ED = 5, N = 3, R = 2, P = R + 2 * N;
      float[] u = rand(r, B * L * ED, -1, 1), delta = rand(r, B * L * ED, 0.05, 0.6);
      float[] A = rand(r, N * ED, -2, -0.2),
          dbc = rand(r, B * L * P, -1, 1),
          D = rand(r, ED, 0.5, 1.5);
      float[] xz = rand(r, B * L * 2 * ED, -2, 2), g = rand(r, B * L * ED, -1, 1);
      float[] y = new float[B * L * ED];
      Loss f =
          () -> {
            SelectiveScan.scanForwardReference(
                y, new float[B * N * ED], u, delta, A, dbc, R, D, xz, ED, 2 * ED, B, L, ED, N);
            return dot(g, y);
          };
      float[] hChunks = new float[B * SelectiveScan.chunkCount(L, T) * N * ED];
      SelectiveScan.saveChunkStates(hChunks, T, null, u, delta, A, dbc, R, B, L, ED, N);
      float[] du = new float[u.length], dd = new float[delta.length], dA = new float[A.length];
      float[] ddbc = new float[dbc.length], dD = new float[ED], dxz = new float[xz.length];
      SelectiveScan.scanBackward(
          du, dd, dA, ddbc, dD, dxz, g, hChunks, T, u, delta, A, dbc, R, D, xz, ED, 2 * ED, B, L,
          ED, N);
      String s = "scan T=" + T + " ";
      check(s + "du", u, du, f);
      check(s + "ddelta", delta, dd, f);
      check(s + "dA", A, dA, f);
      check(
          s + "dB,dC",
          dbc,
          ddbc,
          f); // the Δ-rank columns get no gradient here: both sides are 0 there
      check(s + "dD", D, dD, f);
      check(s + "dz", xz, dxz, f);
    }
  }
}
