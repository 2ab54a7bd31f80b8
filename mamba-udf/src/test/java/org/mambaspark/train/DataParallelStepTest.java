package org.mambaspark.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.mambaspark.Fixtures;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.NamedTensor;

/**
 * The data-parallel step without Spark: splitting the global batch into P shares, summing their
 * {@link GradientSum}s and applying once gives the same weights and losses as one share of
 * everything.
 */
class DataParallelStepTest {
  static double relErr(MambaWeights a, MambaWeights b) {
    double num = 0, den = 0;
    List<NamedTensor> x = a.parameters(), y = b.parameters();
    for (int i = 0; i < x.size(); i++) {
      double e = Fixtures.relErr(x.get(i).data, y.get(i).data);
      num += e * e;
      den += 1;
    }
    return Math.sqrt(num / den);
  }

  /** Runs 3 steps on the same 6 sequences, the batch cut in P shares; returns the losses. */
  static double[] train(MambaWeights w, List<int[]> batch, int P, int L) {
    AdamW opt = new AdamW(w, 0.9f, 0.999f, 1e-8f, 0.1f);
    MambaWeights scratch = MambaWeights.zerosLike(w);
    double[] losses = new double[3];
    for (int step = 0; step < 3; step++) {
      MambaModel m = new MambaModel(w);
      GradientSum total = null;
      for (int p = 0; p < P; p++) {
        List<int[]> share = batch.subList(p * batch.size() / P, (p + 1) * batch.size() / P);
        GradientSum s = TrainStep.gradient(m, share, 2, L, 5);
        total = total == null ? s : total.add(s);
      }
      losses[step] = TrainStep.apply(w, opt, total, scratch, LrSchedule.constant(1e-3f), 1.0f).loss;
    }
    return losses;
  }

  @Test
  void partitionsGiveTheSameUpdate() {
    MambaConfig c =
        MambaConfig.builder().vocabSize(64).hiddenSize(24).numLayers(2).stateSize(6).build();
    int L = 17;
    SplittableRandom r = new SplittableRandom(9);
    List<int[]> batch = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      batch.add(r.ints(L, 0, 64).toArray());
    }
    MambaWeights one = Initialization.initialize(c, 4);
    double[] ref = train(one, batch, 1, L);
    for (int P : new int[] {2, 3}) {
      MambaWeights w = Initialization.initialize(c, 4);
      double[] losses = train(w, batch, P, L);
      double err = relErr(w, one);
      System.out.printf(
          "P=%d: weights rel err %.2e after 3 steps; losses %s vs %s%n",
          P, err, java.util.Arrays.toString(losses), java.util.Arrays.toString(ref));
      assertTrue(err < 1e-5, "P=" + P + " rel err " + err);
      for (int i = 0; i < 3; i++) {
        assertEquals(ref[i], losses[i], 1e-5 * ref[i]);
      }
    }
  }
}
