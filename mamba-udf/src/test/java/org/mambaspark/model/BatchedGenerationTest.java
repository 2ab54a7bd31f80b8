package org.mambaspark.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Several sequences decoded together equal each decoded alone, on the CPU engine and through the
 * GPU backend (PoCL in CI): greedy and seeded sampling, prompts of different lengths (one longer
 * than the prefill piece), a row that stops early on a stop token, one that asks for no tokens.
 */
class BatchedGenerationTest {
  @AfterEach
  void clear() {
    new BackendsTest().clear();
  }

  @Test
  void batchedRowsEqualEachRowAloneOnTheCpu() {
    MambaModel m = BackendsTest.randomModel();
    try (ModelRunner cpu = Backends.cpu().open(m)) {
      check(cpu, "cpu");
    }
  }

  @Test
  void batchedRowsEqualEachRowAloneOnTheGpu() {
    MambaModel m = BackendsTest.randomModel();
    try (ModelRunner gpu = BackendsTest.gpu().open(m)) {
      check(gpu, "gpu");
    }
  }

  /** Whether a[0..n) holds v. */
  private static boolean contains(int[] a, int n, int v) {
    for (int i = 0; i < n; i++) {
      if (a[i] == v) {
        return true;
      }
    }
    return false;
  }

  private static void check(ModelRunner runner, String where) {
    int V = runner.model().config.vocabSize;
    int[][] prompts = {
      BackendsTest.ids(5, V, 1),
      BackendsTest.ids(1, V, 2),
      BackendsTest.ids(23, V, 3), // longer than the piece: prefilled in three calls
      BackendsTest.ids(5, V, 1), // row 0's prompt again, with other sampling
      BackendsTest.ids(3, V, 5),
    };
    Generator g = new Generator(runner, 10);
    // a stop token greedy row 3 first reaches after its first token
    int[] free = g.generate(prompts[3], SamplingParams.greedy(8), null);
    int stopAt = 1;
    while (contains(free, stopAt, free[stopAt])) {
      stopAt++; // fails (out of bounds) if greedy repeats one token: pick another prompt then
    }
    SamplingParams[] params = {
      SamplingParams.greedy(9),
      new SamplingParams(12, 0.8f, 20, 0.9f, 7, new int[] {-1}),
      new SamplingParams(7, 1.2f, 0, 1f, 8, new int[] {-1}),
      new SamplingParams(9, 0f, 0, 1f, 0, new int[] {free[stopAt]}),
      SamplingParams.greedy(0),
    };
    List<int[]> streamed = new ArrayList<>();
    for (int r = 0; r < prompts.length; r++) {
      streamed.add(new int[0]);
    }
    int[][] batched =
        g.generate(
            prompts,
            params,
            (row, token) -> {
              int[] a = streamed.get(row);
              int[] b = Arrays.copyOf(a, a.length + 1);
              b[a.length] = token;
              streamed.set(row, b);
            });
    for (int r = 0; r < prompts.length; r++) {
      int[] alone = g.generate(prompts[r], params[r], null);
      System.out.printf(
          "[%s] row %d batched %s alone %s%n",
          where, r, Arrays.toString(batched[r]), Arrays.toString(alone));
      assertArrayEquals(alone, batched[r], where + " row " + r);
      assertArrayEquals(alone, streamed.get(r), where + " row " + r + " streamed");
    }
    assertEquals(stopAt + 1, batched[3].length, "row 3 stops on its stop token");
    assertEquals(0, batched[4].length, "row 4 asked for none");
    assertThrows(
        IllegalArgumentException.class,
        () -> g.generate(new int[][] {{1}, {}}, new SamplingParams[] {params[0], params[0]}, null));
  }
}
