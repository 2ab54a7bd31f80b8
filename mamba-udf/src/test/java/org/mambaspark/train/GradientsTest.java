package org.mambaspark.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.mambaspark.ops.Parallel;

class GradientsTest {
  /** k parts of n random floats (fresh arrays each call, the same values for the same seed). */
  private static List<float[]> parts(int k, int n) {
    SplittableRandom r = new SplittableRandom(7);
    List<float[]> ps = new ArrayList<>();
    for (int i = 0; i < k; i++) {
      float[] a = new float[n];
      for (int j = 0; j < n; j++) {
        a[j] = (float) r.nextGaussian() * (float) Math.pow(10, r.nextInt(-4, 2));
      }
      ps.add(a);
    }
    return ps;
  }

  @Test
  void sumScaledIsTheOrderedSumScaledAndItsSquaresOnAnyThreadCount() {
    int n = 3 * 65536 + 1234; // several blocks and a partial one
    float scale = 1f / 4099;
    List<float[]> ref = parts(3, n);
    float[] want = new float[n];
    double wantSs = 0;
    for (int j = 0; j < n; j++) {
      float v = ref.get(0)[j];
      for (float[] p : ref.subList(1, ref.size())) {
        v += p[j];
      }
      want[j] = v * scale;
      wantSs += (double) want[j] * want[j];
    }
    int saved = Parallel.threads();
    try {
      double first = Double.NaN;
      for (int t : new int[] {1, 3}) {
        Parallel.setThreads(t);
        List<float[]> ps = parts(3, n);
        double ss = Gradients.sumScaled(ps, scale);
        assertArrayEquals(want, ps.get(0), "sum at " + t + " threads");
        double rel = Math.abs(ss - wantSs) / wantSs;
        System.out.printf("sumScaled at %d threads: Σg² rel err %.2e%n", t, rel);
        assertEquals(wantSs, ss, 1e-12 * wantSs);
        if (t == 1) {
          first = ss;
        } else {
          assertEquals(first, ss, 0.0, "Σg² must not depend on the thread count");
        }
      }
    } finally {
      Parallel.setThreads(saved);
    }
  }
}
