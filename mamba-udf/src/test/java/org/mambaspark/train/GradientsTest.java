package org.mambaspark.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.mambaspark.ops.Bf16;
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

  /** a as pieces of at most k elements each (as a slice cut across tensors is read). */
  private static Gradients.Pieces inPieces(float[] a, int k) {
    return (from, to, run) -> {
      for (int at = from; at < to; ) {
        int n = Math.min(to - at, k - at % k); // runs break at multiples of k
        float[] copy = new float[n + 3]; // a run's array need not start at the run
        System.arraycopy(a, at, copy, 3, n);
        run.accept(copy, 3, at, n);
        at += n;
      }
    };
  }

  @Test
  void sumInOrderIsTheOrderedSumAndItsScaledSquaresOnAnyThreadCount() {
    int n = 3 * 65536 + 1234; // several blocks and a partial one
    float scale = 1f / 4099;
    List<float[]> ps = parts(3, n);
    float[] want = new float[n], wantHalf = new float[n];
    double wantSs = 0, wantOneSs = 0;
    for (int j = 0; j < n; j++) {
      float v = ps.get(0)[j], h = Bf16.widen(Bf16.round(v));
      for (float[] p : ps.subList(1, ps.size())) {
        v += p[j];
        h += Bf16.widen(Bf16.round(p[j]));
      }
      want[j] = v;
      wantHalf[j] = h;
      wantSs += (double) (v * scale) * (v * scale);
      float one = ps.get(0)[j] * scale;
      wantOneSs += (double) one * one;
    }
    List<Gradients.Pieces> whole = new ArrayList<>(), cut = new ArrayList<>();
    for (float[] p : ps) {
      whole.add(Gradients.Pieces.of(p));
      cut.add(inPieces(p, 10_007));
    }
    int saved = Parallel.threads();
    try {
      double first = Double.NaN;
      for (int t : new int[] {1, 3}) {
        Parallel.setThreads(t);
        for (List<Gradients.Pieces> parts : List.of(whole, cut)) {
          float[] sum = new float[n];
          double ss = Gradients.sumInOrder(parts, n, sum, scale, false);
          assertArrayEquals(want, sum, "sum at " + t + " threads");
          double rel = Math.abs(ss - wantSs) / wantSs;
          System.out.printf("sumInOrder at %d threads: Σ(scale·g)² rel err %.2e%n", t, rel);
          assertEquals(wantSs, ss, 1e-12 * wantSs);
          if (Double.isNaN(first)) {
            first = ss;
          } else {
            assertEquals(first, ss, 0.0, "Σg² must not depend on the thread count or the pieces");
          }
          float[] half = new float[n];
          Gradients.sumInOrder(parts, n, half, scale, true);
          assertArrayEquals(wantHalf, half, "bf16-rounded parts at " + t + " threads");
          double one = Gradients.sumInOrder(parts.subList(0, 1), n, null, scale, false);
          assertEquals(wantOneSs, one, 1e-12 * wantOneSs, "one part, its own sum");
        }
      }
    } finally {
      Parallel.setThreads(saved);
    }
  }
}
