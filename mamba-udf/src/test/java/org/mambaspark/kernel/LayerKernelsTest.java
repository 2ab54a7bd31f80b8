package org.mambaspark.kernel;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.mambaspark.Fixtures;
import org.mambaspark.ops.Activations;
import org.mambaspark.ops.Conv1d;
import org.mambaspark.ops.Matmul;
import org.mambaspark.ops.RmsNorm;

/**
 * Each layer kernel of {@link MambaKernel} against its CPU reference in {@code org.mambaspark.ops},
 * on odd sizes (not multiples of the 128×128×8 GEMM tile, one row, views with strides and offsets):
 * forward within 1e-5 relative error, backward within 1e-4. Each test prints its largest error.
 */
class LayerKernelsTest {
  static final double FWD_TOL = 1e-5;
  static final double BWD_TOL = 1e-4;
  static DeviceOps ops;

  @BeforeAll
  static void open() {
    if (OpenClTests.available()) {
      ops = new DeviceOps(OpenClTests.device());
    }
  }

  @BeforeEach
  void needsOpenCl() {
    OpenClTests.assumeOpenCl();
  }

  @AfterAll
  static void close() {
    if (ops != null) {
      ops.close();
    }
  }

  static float[] rand(SplittableRandom r, int n, double lo, double hi) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (lo + (hi - lo) * r.nextDouble());
    }
    return a;
  }

  static double check(String what, float[] got, float[] want, double tol) {
    double err = Fixtures.relErr(got, want);
    System.out.printf("%s: rel err %.2e%n", what, err);
    assertTrue(err < tol, what + " rel err " + err);
    return err;
  }

  /**
   * {BT, C, OC}: GEMV (BT ≤ 64, in blocks of 8 rows: 8, 9, 37, 64), partial tiles, K not a multiple
   * of 8, more than one tile; the last has the weight gradient's K = BT = 3000 over one tile, which
   * takes the split-K path.
   */
  static final int[][] GEMM_SIZES = {
    {1, 1, 1},
    {3, 17, 5},
    {8, 64, 200},
    {9, 33, 7},
    {37, 50, 70},
    {64, 20, 9},
    {65, 31, 40},
    {130, 77, 129},
    {200, 300, 260},
    {257, 9, 33},
    {3000, 9, 33}
  };

  @Test
  void matmulForwardWithViewsBiasAndSoftplus() {
    double worst = 0;
    for (int[] s : GEMM_SIZES) {
      int BT = s[0], C = s[1], OC = s[2];
      SplittableRandom r = new SplittableRandom(BT * 1000L + C);
      // inp is a view: columns [2, 2+C) of rows of C+5; out a view: columns [3, 3+OC) of OC+4
      int inStride = C + 5, outStride = OC + 4;
      float[] inp = rand(r, BT * inStride, -1, 1);
      float[] w = rand(r, OC * C, -1, 1);
      float[] bias = rand(r, OC, -1, 1);
      for (boolean softplus : new boolean[] {false, true}) {
        float[] want = rand(r, BT * outStride, -1, 1);
        float[] got = want.clone();
        Matmul.matmulForwardReference(want, 3, outStride, inp, 2, inStride, w, bias, BT, C, OC);
        if (softplus) {
          Activations.softplusForward(want, 3, outStride, BT, OC);
        }
        ops.matmulForward(got, 3, outStride, inp, 2, inStride, w, bias, BT, C, OC, softplus);
        worst =
            Math.max(
                worst,
                check(
                    "matmul fwd BT="
                        + BT
                        + " C="
                        + C
                        + " OC="
                        + OC
                        + (softplus ? " +softplus" : ""),
                    got,
                    want,
                    FWD_TOL));
      }
    }
    System.out.printf("matmul forward kernel (GEMM): largest rel err %.2e%n", worst);
  }

  @Test
  void matmulBackwardBothProductsAndBias() {
    double worst = 0;
    for (int[] s : GEMM_SIZES) {
      int BT = s[0], C = s[1], OC = s[2];
      SplittableRandom r = new SplittableRandom(BT * 7L + OC);
      int inStride = C + 3, doutStride = OC + 2;
      float[] inp = rand(r, BT * inStride, -1, 1);
      float[] w = rand(r, OC * C, -1, 1);
      float[] dout = rand(r, BT * doutStride, -1, 1);
      float[] dinp = rand(r, BT * inStride, -1, 1); // += into existing values
      float[] dw = rand(r, OC * C, -1, 1);
      float[] db = rand(r, OC, -1, 1);
      float[] gdinp = dinp.clone(), gdw = dw.clone(), gdb = db.clone();
      Matmul.matmulBackwardReference(
          dinp, 1, inStride, dw, db, dout, 2, doutStride, inp, 1, inStride, w, BT, C, OC);
      ops.matmulBackward(
          gdinp, 1, inStride, gdw, gdb, dout, 2, doutStride, inp, 1, inStride, w, BT, C, OC);
      String at = " BT=" + BT + " C=" + C + " OC=" + OC;
      worst = Math.max(worst, check("matmul bwd dinp" + at, gdinp, dinp, BWD_TOL));
      worst = Math.max(worst, check("matmul bwd dweight" + at, gdw, dw, BWD_TOL));
      worst = Math.max(worst, check("matmul bwd dbias" + at, gdb, db, BWD_TOL));
    }
    System.out.printf("matmul backward kernels (GEMM): largest rel err %.2e%n", worst);
  }

  @Test
  void rmsnormForwardAndBackward() {
    double worst = 0;
    for (int[] s : new int[][] {{1, 1}, {3, 7}, {17, 130}, {300, 33}}) {
      int BT = s[0], D = s[1];
      SplittableRandom r = new SplittableRandom(BT + 31L * D);
      float[] x = rand(r, BT * D, -2, 2);
      float[] w = rand(r, D, 0.5, 1.5);
      float[] out = new float[BT * D], rstd = new float[BT];
      float[] gout = new float[BT * D], grstd = new float[BT];
      RmsNorm.rmsnormForward(out, rstd, x, w, BT, D, 1e-5f);
      ops.rmsnormForward(gout, grstd, x, w, BT, D, 1e-5f);
      worst = Math.max(worst, check("rmsnorm fwd BT=" + BT + " D=" + D, gout, out, FWD_TOL));
      worst = Math.max(worst, check("rmsnorm rstd BT=" + BT + " D=" + D, grstd, rstd, FWD_TOL));
      float[] dout = rand(r, BT * D, -1, 1);
      float[] dx = rand(r, BT * D, -1, 1), dw = rand(r, D, -1, 1);
      float[] gdx = dx.clone(), gdw = dw.clone();
      RmsNorm.rmsnormBackward(dx, dw, dout, x, w, rstd, BT, D);
      ops.rmsnormBackward(gdx, gdw, dout, x, w, rstd, BT, D);
      worst = Math.max(worst, check("rmsnorm bwd dx BT=" + BT + " D=" + D, gdx, dx, BWD_TOL));
      worst = Math.max(worst, check("rmsnorm bwd dw BT=" + BT + " D=" + D, gdw, dw, BWD_TOL));
    }
    System.out.printf("rmsnorm kernels: largest rel err %.2e%n", worst);
  }

  @Test
  void convForwardStateAndBackward() {
    double worst = 0;
    // {B, L, ED, K}: L shorter than the kernel, K = 1, odd channel counts
    for (int[] s :
        new int[][] {{1, 1, 1, 4}, {2, 2, 5, 4}, {3, 37, 19, 4}, {1, 300, 7, 3}, {2, 9, 6, 1}}) {
      int B = s[0], L = s[1], ED = s[2], K = s[3];
      SplittableRandom r = new SplittableRandom(B * 100L + L);
      float[] xz = rand(r, B * L * 2 * ED, -2, 2);
      float[] w = rand(r, ED * K, -1, 1);
      float[] bias = rand(r, ED, -1, 1);
      float[] state = rand(r, B * ED * (K - 1), -1, 1);
      String at = " B=" + B + " L=" + L + " ED=" + ED + " K=" + K;
      for (boolean withState : new boolean[] {false, true}) {
        float[] want = new float[B * L * ED], got = new float[B * L * ED];
        float[] st = withState ? state.clone() : null;
        float[] gst = withState ? state.clone() : null;
        Conv1d.convForward(want, null, xz, 0, 2 * ED, st, w, bias, B, L, ED, K);
        if (withState) {
          Conv1d.updateState(st, xz, 0, 2 * ED, B, L, ED, K);
        }
        ops.convForward(got, xz, 0, 2 * ED, gst, w, bias, B, L, ED, K);
        String tag = "conv fwd" + (withState ? " +state" : "") + at;
        worst = Math.max(worst, check(tag, got, want, FWD_TOL));
        if (withState && st.length > 0) {
          worst = Math.max(worst, check("conv state update" + at, gst, st, FWD_TOL));
        }
      }
      float[] pre = new float[B * L * ED], out = new float[B * L * ED];
      Conv1d.convForward(out, pre, xz, 0, 2 * ED, null, w, bias, B, L, ED, K);
      float[] dout = rand(r, B * L * ED, -1, 1);
      float[] dxz = rand(r, B * L * 2 * ED, -1, 1), dw = rand(r, ED * K, -1, 1);
      float[] db = rand(r, ED, -1, 1);
      float[] gdxz = dxz.clone(), gdw = dw.clone(), gdb = db.clone();
      Conv1d.convBackward(dxz, dw, db, dout, pre, xz, 0, 2 * ED, w, B, L, ED, K);
      ops.convBackward(gdxz, gdw, gdb, dout, xz, 0, 2 * ED, w, bias, B, L, ED, K);
      worst = Math.max(worst, check("conv bwd dx" + at, gdxz, dxz, BWD_TOL));
      worst = Math.max(worst, check("conv bwd dweight" + at, gdw, dw, BWD_TOL));
      worst = Math.max(worst, check("conv bwd dbias" + at, gdb, db, BWD_TOL));
    }
    System.out.printf("conv kernels: largest rel err %.2e%n", worst);
  }

  @Test
  void softplusBackwardFromItsOutput() {
    SplittableRandom r = new SplittableRandom(5);
    int n = 1001;
    float[] pre = rand(r, n, -30, 30); // both sides of the threshold (20), and far below zero
    float[] delta = pre.clone();
    Activations.softplusForward(delta, 0, n, 1, n);
    float[] dy = rand(r, n, -1, 1);
    float[] got = dy.clone();
    Activations.softplusBackward(dy, pre, 0, n, 1, n);
    ops.softplusBackward(got, delta);
    double err = check("softplus bwd (from Δ)", got, dy, BWD_TOL);
    System.out.printf("softplus backward kernel: largest rel err %.2e%n", err);
  }

  @Test
  void crossEntropyLossAndGradient() {
    double worst = 0;
    for (int[] s : new int[][] {{1, 1}, {3, 7}, {5, 513}, {4, 50280}}) {
      int rows = s[0], V = s[1];
      SplittableRandom r = new SplittableRandom(rows * 3L + V);
      float[] logits = rand(r, rows * V, -8, 8);
      int[] tgt = new int[rows];
      for (int i = 0; i < rows; i++) {
        tgt[i] = i == rows - 1 && rows > 1 ? -1 : r.nextInt(V); // the last row: no target
      }
      float scale = 0.25f;
      float[] loss = new float[rows], dlog = new float[rows * V];
      for (int i = 0; i < rows; i++) {
        if (tgt[i] >= 0) {
          double lse = Activations.logSumExp(logits, i * V, V);
          loss[i] = (float) (lse - logits[i * V + tgt[i]]);
          for (int v = 0; v < V; v++) {
            dlog[i * V + v] =
                (float) (scale * (Math.exp(logits[i * V + v] - lse) - (v == tgt[i] ? 1 : 0)));
          }
        }
      }
      float[] gloss = new float[rows], glog = logits.clone();
      ops.crossEntropy(gloss, glog, tgt, rows, V, scale, true);
      String at = " rows=" + rows + " V=" + V;
      worst = Math.max(worst, check("cross-entropy loss" + at, gloss, loss, FWD_TOL));
      worst = Math.max(worst, check("cross-entropy dlogits" + at, glog, dlog, BWD_TOL));
    }
    System.out.printf("cross-entropy kernel: largest rel err %.2e%n", worst);
  }

  @Test
  void embeddingGatherAndScatter() {
    SplittableRandom r = new SplittableRandom(9);
    int V = 37, D = 11, BT = 101;
    float[] emb = rand(r, V * D, -1, 1);
    int[] ids = new int[BT];
    for (int t = 0; t < BT; t++) {
      ids[t] = r.nextInt(V / 2) * 2; // repeated ids, and rows never used
    }
    float[] dx = rand(r, BT * D, -1, 1);
    float[] x = new float[BT * D], dEmb = new float[V * D];
    float[] gx = new float[BT * D], gdEmb = rand(r, V * D, -1, 1);
    float[] dEmbRef = gdEmb.clone();
    for (int t = 0; t < BT; t++) {
      System.arraycopy(emb, ids[t] * D, x, t * D, D);
      for (int i = 0; i < D; i++) {
        dEmbRef[ids[t] * D + i] += dx[t * D + i];
      }
    }
    System.arraycopy(gdEmb, 0, dEmb, 0, dEmb.length);
    ops.embedding(gx, dEmb, dx, emb, ids, BT, D);
    double e1 = check("embedding gather", gx, x, FWD_TOL);
    double e2 = check("embedding scatter (backward)", dEmb, dEmbRef, BWD_TOL);
    System.out.printf("embedding kernels: largest rel err %.2e%n", Math.max(e1, e2));
  }
}
