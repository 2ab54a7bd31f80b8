package org.mambaspark.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * A Backprop used before (also after Backprops of other shapes ran on the thread) gives a fresh
 * one's loss and gradient (bit for bit when run alone; to float rounding in CI): the CPU runner
 * keeps its Backprops per thread across calls (the Spark training job's executors reuse them step
 * after step).
 */
class BackpropReuseTest {
  @Test
  void aReusedBackpropGivesTheFreshGradient() {
    MambaConfig c =
        MambaConfig.builder().vocabSize(64).hiddenSize(24).numLayers(2).stateSize(6).build();
    MambaWeights w = Initialization.initialize(c, 4);
    MambaModel model = new MambaModel(w);
    int B = 2, L = 17;
    SplittableRandom r = new SplittableRandom(1);
    int[] a = r.ints((long) B * L, 0, 64).toArray();
    int[] b = r.ints((long) B * L, 0, 64).toArray();
    Backprop reused = new Backprop(model, B, L);
    reused.forwardBackward(a, MambaWeights.zerosLike(w), 1.0);
    int[] c1 = r.ints((long) L, 0, 64).toArray();
    new Backprop(model, 1, L).forwardBackward(c1, MambaWeights.zerosLike(w), 1.0);
    int[] c3 = r.ints(3L * (L + 1), 0, 64).toArray();
    new Backprop(model, 3, L + 1).forwardBackward(c3, MambaWeights.zerosLike(w), 1.0);
    MambaWeights g1 = MambaWeights.zerosLike(w), g2 = MambaWeights.zerosLike(w);
    double l1 = reused.forwardBackward(b, g1, 1.0);
    double l2 = new Backprop(model, B, L).forwardBackward(b, g2, 1.0);
    int differ = 0;
    double num = 0, den = 0;
    List<NamedTensor> x = g1.parameters(), y = g2.parameters();
    for (int i = 0; i < x.size(); i++) {
      for (int j = 0; j < x.get(i).data.length; j++) {
        double d = (double) x.get(i).data[j] - y.get(i).data[j];
        differ += d != 0 ? 1 : 0;
        num += d * d;
        den += (double) y.get(i).data[j] * y.get(i).data[j];
      }
    }
    double err = Math.sqrt(num / den);
    System.out.printf(
        "reused vs fresh Backprop: loss %s vs %s; gradient rel err %.2e (%d entries differ)%n",
        l1, l2, err, differ);
    // Equal up to float rounding: in CI (under JaCoCo) a few entries differed by ~1e-7, most likely
    // the Vector API's float reduceLanes(ADD), whose order is unspecified and may change when the
    // JIT compiles it; a stale buffer would be far off.
    assertEquals(l2, l1, 1e-9 * Math.abs(l2));
    assertTrue(err < 1e-6, "gradient rel err " + err);
  }
}
