package org.mambaspark.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.mambaspark.Fixtures;
import org.mambaspark.io.Checkpoint;

/**
 * Greedy, temperature, top-k, top-p and seeded sampling; stop tokens and max tokens in generation.
 */
class SamplerTest {
  static final float[] LOGITS = {1f, 3f, 2f, 3f, -1f}; // ties at 1 and 3: argmax takes the lower id

  static int[] counts(SamplingParams p, int draws) {
    Sampler s = new Sampler(p);
    int[] c = new int[LOGITS.length];
    for (int i = 0; i < draws; i++) {
      c[s.sample(LOGITS, 0, LOGITS.length)]++;
    }
    return c;
  }

  @Test
  void greedyAndCuts() {
    assertEquals(1, new Sampler(SamplingParams.greedy(1)).sample(LOGITS, 0, LOGITS.length));
    // top-k = 2 keeps ids 1 and 3 only
    int[] k2 = counts(new SamplingParams(1, 1f, 2, 1f, 5, null), 4000);
    assertEquals(0, k2[0] + k2[2] + k2[4]);
    assertTrue(k2[1] > 1700 && k2[3] > 1700, java.util.Arrays.toString(k2));
    // top-p tiny keeps the single most likely token (stable order: id 1)
    int[] p0 = counts(new SamplingParams(1, 1f, 0, 1e-4f, 5, null), 500);
    assertEquals(500, p0[1]);
  }

  @Test
  void temperatureSamplesTheSoftmax() {
    int n = 200_000;
    float T = 0.7f;
    int[] c = counts(new SamplingParams(1, T, 0, 1f, 11, null), n);
    double z = 0;
    double[] p = new double[LOGITS.length];
    for (int i = 0; i < p.length; i++) {
      p[i] = Math.exp(LOGITS[i] / T);
      z += p[i];
    }
    double worst = 0;
    for (int i = 0; i < p.length; i++) {
      p[i] /= z;
      double sd = Math.sqrt(n * p[i] * (1 - p[i]));
      worst = Math.max(worst, Math.abs(c[i] - n * p[i]) / Math.max(sd, 1));
    }
    System.out.printf("temperature sampling: largest deviation %.2f standard deviations%n", worst);
    assertTrue(worst < 5);
  }

  @Test
  void seededSamplingIsReproducible() {
    SamplingParams a = new SamplingParams(1, 1f, 0, 0.9f, 42, null);
    assertArrayEquals(counts(a, 1000), counts(a, 1000));
    assertNotEquals(
        java.util.Arrays.toString(counts(a, 1000)),
        java.util.Arrays.toString(counts(new SamplingParams(1, 1f, 0, 0.9f, 43, null), 1000)));
    assertThrows(IllegalArgumentException.class, () -> new SamplingParams(1, -1f, 0, 1f, 0, null));
    assertThrows(IllegalArgumentException.class, () -> new SamplingParams(1, 1f, 0, 0f, 0, null));
  }

  @Test
  void generationStopsAtStopTokensAndMaxTokens() {
    MambaModel m = new MambaModel(Checkpoint.load(Fixtures.dir("tiny").resolve("model")));
    Generator g = new Generator(m);
    int[] prompt = {1, 2, 3};
    int[] free = g.generate(prompt, new SamplingParams(10, 1f, 0, 1f, 3, null), null);
    assertEquals(10, free.length);
    int stop = free[4];
    int[] stopped =
        g.generate(prompt, new SamplingParams(10, 1f, 0, 1f, 3, new int[] {stop}), null);
    int first = 0;
    while (free[first] != stop) {
      first++;
    }
    assertEquals(
        first + 1, stopped.length, "stops right after the first stop token, which is included");
    assertEquals(stop, stopped[stopped.length - 1]);
    assertEquals(0, g.generate(prompt, SamplingParams.greedy(0), null).length);
    assertThrows(
        IllegalArgumentException.class,
        () -> g.generate(new int[0], SamplingParams.greedy(3), null));
    // a prompt longer than one prefill piece gives the same continuation as the state carried
    int[] longPrompt = new int[Generator.PREFILL_PIECE + 5];
    for (int i = 0; i < longPrompt.length; i++) {
      longPrompt[i] = (i * 7) % m.config.vocabSize;
    }
    int[] a = g.generate(longPrompt, SamplingParams.greedy(5), null);
    Workspace ws = new Workspace(m.config);
    m.forward(ws, longPrompt, 1, longPrompt.length, null, null);
    float[] logits = new float[m.config.vocabSize];
    m.lmHeadForward(logits, ws.hidden, longPrompt.length - 1, 1);
    assertEquals(Sampler.argmax(logits, 0, logits.length), a[0]);
  }
}
