package org.mambaspark.ops;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.mambaspark.Fixtures;

/**
 * The chunked SSD against the sequential recurrence on many shapes (groups, chunk sizes, odd
 * lengths, strided views, an initial state); decoding step by step against one pass; the reference
 * backward against finite differences of a double-precision forward; the chunked backward against
 * the reference backward.
 */
class SsdTest {
  /** Chunked forward and backward vs the references, float32, relative error of the norm. */
  static final double TOL = 1e-5;

  /** The double reference backward vs central differences (step 1e-6) of the double forward. */
  static final double FD_TOL = 1e-6;

  /**
   * One problem: x | B | C in a conv-output buffer with padding columns (row stride > H·P + 2GN), Δ
   * in a wider in_proj-like buffer, y in a strided buffer, all at non-zero offsets.
   */
  static final class Problem {
    final int batch, L, H, P, G, N, Q;
    final int convStride, xOff, bOff, cOff, dtOff, dtStride, yOff, yStride;
    final float[] conv, dt, A, Dskip, h0;

    Problem(long seed, int batch, int L, int H, int P, int G, int N, int Q, boolean withH0) {
      this.batch = batch;
      this.L = L;
      this.H = H;
      this.P = P;
      this.G = G;
      this.N = N;
      this.Q = Q;
      SplittableRandom r = new SplittableRandom(seed);
      convStride = H * P + 2 * G * N + 3;
      xOff = 2;
      bOff = xOff + H * P;
      cOff = bOff + G * N;
      dtStride = H + 5;
      dtOff = 4;
      yStride = H * P + 1;
      yOff = 3;
      conv = SelectiveScanTest.rand(r, 2 + batch * L * convStride, -1, 1);
      dt = SelectiveScanTest.rand(r, dtOff + batch * L * dtStride, 0.01, 0.6);
      A = SelectiveScanTest.rand(r, H, -3, -0.2);
      Dskip = SelectiveScanTest.rand(r, H, 0.5, 1.5);
      h0 = withH0 ? SelectiveScanTest.rand(r, batch * H * P * N, -1, 1) : null;
    }

    int ySize() {
      return yOff + batch * L * yStride;
    }

    void reference(float[] y, float[] state) {
      Ssd.ssdScanReference(
          y,
          yOff,
          yStride,
          state,
          conv,
          xOff,
          convStride,
          dt,
          dtOff,
          dtStride,
          A,
          conv,
          bOff,
          convStride,
          conv,
          cOff,
          convStride,
          Dskip,
          batch,
          L,
          H,
          P,
          G,
          N);
    }

    void chunked(float[] y, float[] state, float[] saved) {
      Ssd.ssdForward(
          y,
          yOff,
          yStride,
          state,
          saved,
          conv,
          xOff,
          convStride,
          dt,
          dtOff,
          dtStride,
          A,
          conv,
          bOff,
          convStride,
          conv,
          cOff,
          convStride,
          Dskip,
          batch,
          L,
          H,
          P,
          G,
          N,
          Q);
    }

    /** y of the recurrence in double, for finite differences. */
    double[] forwardDouble() {
      int hpg = H / G, PN = P * N;
      double[] y = new double[batch * L * H * P];
      double[] s = new double[PN];
      for (int b = 0; b < batch; b++) {
        for (int h = 0; h < H; h++) {
          int g = h / hpg;
          for (int i = 0; i < PN; i++) {
            s[i] = h0 == null ? 0 : h0[(b * H + h) * PN + i];
          }
          for (int t = 0; t < L; t++) {
            int row = b * L + t;
            double d = dt[dtOff + row * dtStride + h], a = Math.exp(d * A[h]);
            for (int p = 0; p < P; p++) {
              double xp = conv[xOff + row * convStride + h * P + p], acc = Dskip[h] * xp;
              for (int n = 0; n < N; n++) {
                s[p * N + n] =
                    a * s[p * N + n] + d * xp * conv[bOff + row * convStride + g * N + n];
                acc += s[p * N + n] * conv[cOff + row * convStride + g * N + n];
              }
              y[(row * H + h) * P + p] = acc;
            }
          }
        }
      }
      return y;
    }
  }

  /** batch, L, H, P, G, N, Q, with h0 (1) or not (0). */
  static final int[][] SHAPES = {
    {1, 1, 1, 1, 1, 1, 1, 0},
    {2, 11, 4, 3, 2, 5, 4, 1}, // L not a multiple of Q
    {1, 9, 6, 4, 3, 2, 3, 1}, // G = 3 with H = 6
    {2, 7, 3, 2, 3, 4, 16, 0}, // G = H, Q > L
    {1, 20, 2, 1, 1, 1, 1, 1}, // P = 1, N = 1, Q = 1
    {3, 1, 4, 5, 1, 6, 8, 1}, // L = 1
    {1, 70, 4, 16, 1, 32, 32, 1}, // several full chunks plus a tail
    {2, 64, 8, 8, 2, 16, 64, 0}, // one exact chunk
    {1, 130, 3, 17, 1, 9, 50, 1},
    {2, 200, 12, 4, 1, 8, 150, 1}, // chunks of several triangular row blocks; 12 heads a group
    {1, 97, 20, 3, 2, 5, 130, 0},
  };

  static Problem problem(int[] s) {
    return new Problem(Arrays.hashCode(s), s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7] == 1);
  }

  /** y rows of (b·L + t) compared over the H·P real columns only (strides skip the rest). */
  static float[] rows(float[] y, int off, int stride, int rows, int width) {
    float[] out = new float[rows * width];
    for (int r = 0; r < rows; r++) {
      System.arraycopy(y, off + r * stride, out, r * width, width);
    }
    return out;
  }

  @Test
  void chunkedForwardEqualsRecurrence() {
    double worst = 0;
    for (int[] s : SHAPES) {
      Problem p = problem(s);
      float[] yRef = new float[p.ySize()], yFast = new float[p.ySize()];
      Arrays.fill(yFast, 7f); // must be overwritten
      Arrays.fill(yRef, 7f);
      float[] hRef = p.h0 == null ? null : p.h0.clone(), hFast = hRef == null ? null : hRef.clone();
      float[] saved = new float[Ssd.savedSize(p.batch, p.L, p.H, p.P, p.N, p.Q)];
      p.reference(yRef, hRef);
      p.chunked(yFast, hFast, saved);
      double ey = Fixtures.relErr(yFast, yRef);
      double eh = hRef == null ? 0 : Fixtures.relErr(hFast, hRef);
      // without a carried state the final state is still in the saved buffer's last slot
      float[] hEnd = new float[p.batch * p.H * p.P * p.N];
      float[] hEndRef = hEnd.clone();
      p.reference(new float[p.ySize()], hEndRef);
      int nc = Ssd.chunkCount(p.L, p.Q), bhpn = p.H * p.P * p.N;
      for (int b = 0; b < p.batch; b++) {
        System.arraycopy(saved, (b * (nc + 1) + nc) * bhpn, hEnd, b * bhpn, bhpn);
      }
      double es = p.h0 == null ? Fixtures.relErr(hEnd, hEndRef) : 0;
      System.out.printf(
          "ssd %s: y rel err %.2e, final state %.2e, saved final %.2e%n",
          Arrays.toString(s), ey, eh, es);
      worst = Math.max(worst, Math.max(ey, Math.max(eh, es)));
      assertTrue(ey < TOL && eh < TOL && es < TOL, Arrays.toString(s));
      // the padding between rows of y is left alone
      assertTrue(yFast[0] == 7f && yFast[p.yOff + p.H * p.P] == 7f, "y padding written");
    }
    System.out.printf("ssd chunked vs recurrence: largest rel err %.2e%n", worst);
  }

  @Test
  void stepsEqualOnePass() {
    double worst = 0;
    for (int[] s : SHAPES) {
      Problem p = problem(s);
      float[] yRef = new float[p.ySize()];
      float[] hRef = p.h0 == null ? new float[p.batch * p.H * p.P * p.N] : p.h0.clone();
      float[] h = hRef.clone();
      p.reference(yRef, hRef);
      float[] y = new float[p.ySize()];
      // positions t of every batch row in one step call: rows b·L + t, batch stride L rows
      for (int t = 0; t < p.L; t++) {
        Ssd.ssdStep(
            y,
            p.yOff + t * p.yStride,
            p.L * p.yStride,
            h,
            p.conv,
            p.xOff + t * p.convStride,
            p.L * p.convStride,
            p.dt,
            p.dtOff + t * p.dtStride,
            p.L * p.dtStride,
            p.A,
            p.conv,
            p.bOff + t * p.convStride,
            p.L * p.convStride,
            p.conv,
            p.cOff + t * p.convStride,
            p.L * p.convStride,
            p.Dskip,
            p.batch,
            p.H,
            p.P,
            p.G,
            p.N);
      }
      double e = Math.max(Fixtures.relErr(y, yRef), Fixtures.relErr(h, hRef));
      worst = Math.max(worst, e);
      assertTrue(e < TOL, Arrays.toString(s) + " " + e);
    }
    System.out.printf(
        "ssd steps vs one pass: largest rel err %.2e (simd %s)%n", worst, Simd.ENABLED);
  }

  /** Gradients of one problem into fresh buffers shaped like its inputs. */
  static final class Grads {
    final float[] dconv, ddt, dA, dD, dh0;

    Grads(Problem p) {
      dconv = new float[p.conv.length];
      ddt = new float[p.dt.length];
      dA = new float[p.H];
      dD = new float[p.H];
      dh0 = new float[p.batch * p.H * p.P * p.N];
    }

    float[][] all() {
      return new float[][] {dconv, ddt, dA, dD, dh0};
    }
  }

  static float[] randomDy(Problem p) {
    return SelectiveScanTest.rand(new SplittableRandom(p.L * 977L + p.H), p.ySize(), -1, 1);
  }

  static void referenceBackward(Problem p, float[] dy, Grads g) {
    Ssd.ssdBackwardReference(
        g.dconv,
        p.xOff,
        p.convStride,
        g.ddt,
        p.dtOff,
        p.dtStride,
        g.dA,
        g.dconv,
        p.bOff,
        p.convStride,
        g.dconv,
        p.cOff,
        p.convStride,
        g.dD,
        g.dh0,
        dy,
        p.yOff,
        p.yStride,
        p.h0,
        p.conv,
        p.xOff,
        p.convStride,
        p.dt,
        p.dtOff,
        p.dtStride,
        p.A,
        p.conv,
        p.bOff,
        p.convStride,
        p.conv,
        p.cOff,
        p.convStride,
        p.Dskip,
        p.batch,
        p.L,
        p.H,
        p.P,
        p.G,
        p.N);
  }

  static void chunkedBackward(Problem p, float[] dy, float[] saved, Grads g) {
    Ssd.ssdBackward(
        g.dconv,
        p.xOff,
        p.convStride,
        g.ddt,
        p.dtOff,
        p.dtStride,
        g.dA,
        g.dconv,
        p.bOff,
        p.convStride,
        g.dconv,
        p.cOff,
        p.convStride,
        g.dD,
        g.dh0,
        dy,
        p.yOff,
        p.yStride,
        saved,
        p.conv,
        p.xOff,
        p.convStride,
        p.dt,
        p.dtOff,
        p.dtStride,
        p.A,
        p.conv,
        p.bOff,
        p.convStride,
        p.conv,
        p.cOff,
        p.convStride,
        p.Dskip,
        p.batch,
        p.L,
        p.H,
        p.P,
        p.G,
        p.N,
        p.Q);
  }

  @Test
  void referenceBackwardMatchesFiniteDifferences() {
    double worst = 0;
    int[][] shapes = {{2, 5, 4, 2, 2, 3, 1, 1}, {1, 6, 6, 2, 3, 2, 1, 1}, {1, 4, 2, 3, 1, 2, 1, 0}};
    for (int[] s : shapes) {
      Problem p = problem(s);
      float[] dy = randomDy(p);
      Grads g = new Grads(p);
      referenceBackward(p, dy, g);
      // the loss Σ dy ⊙ y over y's real columns
      java.util.function.DoubleSupplier loss =
          () -> {
            double[] y = p.forwardDouble();
            double l = 0;
            for (int row = 0; row < p.batch * p.L; row++) {
              for (int c = 0; c < p.H * p.P; c++) {
                l += dy[p.yOff + row * p.yStride + c] * y[row * p.H * p.P + c];
              }
            }
            return l;
          };
      float[][] params = {p.conv, p.dt, p.A, p.Dskip, p.h0};
      String[] names = {"conv (x|B|C)", "dt", "A", "Dskip", "h0"};
      float[][] grads = g.all();
      for (int k = 0; k < params.length; k++) {
        if (params[k] == null) {
          continue;
        }
        double e = finiteDifferences(params[k], grads[k], loss);
        System.out.printf(
            "ssd reference backward %s %-12s vs finite differences: rel err %.2e%n",
            Arrays.toString(s), names[k], e);
        worst = Math.max(worst, e);
        assertTrue(e < FD_TOL, names[k] + " " + e);
      }
    }
    System.out.printf(
        "ssd reference backward vs finite differences: largest rel err %.2e%n", worst);
  }

  /**
   * ||fd − analytic|| / ||fd|| over every entry. The forward is in double but its inputs are
   * floats: the step is applied to a double copy read back through the float array's neighbours, so
   * steps are float-representable ones (2^-14 relative).
   */
  static double finiteDifferences(
      float[] param, float[] analytic, java.util.function.DoubleSupplier loss) {
    double num = 0, den = 0;
    for (int i = 0; i < param.length; i++) {
      float keep = param[i];
      float up = keep + Math.max(Math.abs(keep), 1f) * 0x1p-12f;
      float down = keep - (up - keep);
      param[i] = up;
      double lu = loss.getAsDouble();
      param[i] = down;
      double ld = loss.getAsDouble();
      param[i] = keep;
      double fd = (lu - ld) / ((double) up - down);
      num += (fd - analytic[i]) * (fd - analytic[i]);
      den += fd * fd;
    }
    return Math.sqrt(num / Math.max(den, 1e-30));
  }

  @Test
  void chunkedBackwardEqualsReferenceBackward() {
    double worst = 0;
    for (int[] s : SHAPES) {
      Problem p = problem(s);
      float[] dy = randomDy(p);
      Grads ref = new Grads(p), fast = new Grads(p);
      float[] saved = new float[Ssd.savedSize(p.batch, p.L, p.H, p.P, p.N, p.Q)];
      p.chunked(new float[p.ySize()], p.h0 == null ? null : p.h0.clone(), saved);
      // gradients accumulate: start both from the same non-zero values
      for (float[][] gs : new float[][][] {ref.all(), fast.all()}) {
        for (float[] a : gs) {
          a[0] += 0.25f;
        }
      }
      referenceBackward(p, dy, ref);
      chunkedBackward(p, dy, saved, fast);
      String[] names = {"dconv", "ddt", "dA", "dDskip", "dh0"};
      StringBuilder line = new StringBuilder();
      for (int k = 0; k < names.length; k++) {
        if (k == 4 && p.h0 == null) {
          continue;
        }
        double e = Fixtures.relErr(fast.all()[k], ref.all()[k]);
        line.append(String.format(" %s %.2e", names[k], e));
        worst = Math.max(worst, e);
        assertTrue(e < TOL, Arrays.toString(s) + " " + names[k] + " " + e);
      }
      System.out.printf("ssd backward %s:%s%n", Arrays.toString(s), line);
    }
    System.out.printf("ssd chunked backward vs reference: largest rel err %.2e%n", worst);
  }

  @Test
  void resultsDoNotDependOnThreadCount() {
    Problem p = problem(SHAPES[SHAPES.length - 2]);
    float[] dy = randomDy(p);
    int keep = Parallel.threads();
    float[][] runs = new float[2][];
    try {
      for (int k = 0; k < 2; k++) {
        Parallel.setThreads(k == 0 ? 1 : 3);
        float[] y = new float[p.ySize()];
        float[] saved = new float[Ssd.savedSize(p.batch, p.L, p.H, p.P, p.N, p.Q)];
        p.chunked(y, p.h0.clone(), saved);
        Grads g = new Grads(p);
        chunkedBackward(p, dy, saved, g);
        runs[k] = concat(y, g.dconv, g.ddt, g.dA, g.dD, g.dh0);
      }
    } finally {
      Parallel.setThreads(keep);
    }
    assertTrue(Arrays.equals(runs[0], runs[1]), "1 and 3 threads differ");
  }

  static float[] concat(float[]... parts) {
    int n = 0;
    for (float[] a : parts) {
      n += a.length;
    }
    float[] out = new float[n];
    int o = 0;
    for (float[] a : parts) {
      System.arraycopy(a, 0, out, o, a.length);
      o += a.length;
    }
    return out;
  }

  @Test
  void badShapesAreRejected() {
    Problem p = problem(SHAPES[1]);
    assertThrows(
        IllegalArgumentException.class,
        () ->
            Ssd.ssdForward(
                new float[p.ySize()],
                p.yOff,
                p.yStride,
                null,
                null,
                p.conv,
                p.xOff,
                p.convStride,
                p.dt,
                p.dtOff,
                p.dtStride,
                p.A,
                p.conv,
                p.bOff,
                p.convStride,
                p.conv,
                p.cOff,
                p.convStride,
                p.Dskip,
                p.batch,
                p.L,
                5,
                p.P,
                2,
                p.N,
                p.Q));
    assertThrows(IllegalArgumentException.class, () -> Ssd.savedSize(1, 8, 2, 2, 2, 0));
    assertThrows(
        IllegalArgumentException.class,
        () -> chunkedBackward(p, randomDy(p), new float[3], new Grads(p)));
  }
}
