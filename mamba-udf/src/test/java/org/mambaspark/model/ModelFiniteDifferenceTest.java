package org.mambaspark.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The whole model's gradient against finite differences on configurations unlike the fixtures:
 * untied head, in/out_proj biases, conv widths 2 and 3, odd N, R, D, ED, V; sampled entries of
 * every parameter tensor. The forward runs in float, so a difference quotient carries ~1e-5 of
 * rounding: parameters are set so that every gradient stands well above that.
 */
class ModelFiniteDifferenceTest {
  @ParameterizedTest
  @ValueSource(ints = {2, 3})
  void everyParameterTensor(int K) {
    MambaConfig c =
        MambaConfig.builder()
            .vocabSize(17)
            .hiddenSize(12)
            .intermediateSize(20)
            .stateSize(5)
            .timeStepRank(3)
            .convKernel(K)
            .numLayers(2)
            .useBias(true)
            .tieWordEmbeddings(false)
            // Δ up to 0.5 (the default init starts at 0.001-0.1): gives the Δ and A gradients
            // enough signal to stand
            // above the float rounding of the finite differences
            .timeStepMin(0.05f)
            .timeStepMax(0.5f)
            .build();
    MambaWeights w = Initialization.initialize(c, 11);
    SplittableRandom r = new SplittableRandom(K);
    for (NamedTensor t : w.parameters()) { // biases start at 0: give every tensor some signal
      if (t.name.endsWith("x_proj.weight")) { // larger Δ-rank, B and C: a stronger SSM path
        for (int i = 0; i < t.data.length; i++) {
          t.data[i] *= 4;
        }
      }
      if (t.name.endsWith(".bias")) {
        for (int i = 0; i < t.data.length; i++) {
          t.data[i] = (float) (0.2 * (r.nextDouble() - 0.5));
        }
      }
    }
    int B = 2, L = 9;
    int[] ids = r.ints((long) B * L, 0, c.vocabSize).toArray();
    MambaModel m = new MambaModel(w);
    MambaWeights g = MambaWeights.zerosLike(w);
    new Backprop(m, B, L, 4).forwardBackward(ids, g, 1.0 / ((double) B * (L - 1)));
    Workspace ws = new Workspace(c);
    double worst = 0;
    for (NamedTensor t : w.parameters()) {
      float[] an = g.parameter(t.name).data;
      double num = 0, den = 0;
      for (int s = 0; s < 6; s++) {
        int i = r.nextInt(t.data.length);
        float keep = t.data[i];
        double h = 3e-2;
        t.data[i] = (float) (keep + h);
        double up = Scoring.meanNextTokenLoss(m, ws, ids, B, L);
        t.data[i] = (float) (keep - h);
        double down = Scoring.meanNextTokenLoss(m, ws, ids, B, L);
        t.data[i] = keep;
        double fd = (up - down) / (2 * h);
        num += (fd - an[i]) * (fd - an[i]);
        den += fd * fd;
      }
      double err = Math.sqrt(num / Math.max(den, 1e-12));
      System.out.printf("K=%d finite differences %-42s rel err %.2e%n", K, t.name, err);
      worst = Math.max(worst, err);
      // 3%: the float forward leaves ~2e-6 of noise on each quotient; a wrong term would be off by
      // far more.
      // The precise checks are the fixtures (1e-4) and the per-operation differences (2e-3).
      assertTrue(err < 3e-2, t.name + " rel err " + err);
    }
    System.out.printf(
        "K=%d model gradient vs finite differences: largest rel err %.2e%n", K, worst);
  }
}
