package org.mambaspark.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The whole model's gradient against finite differences on configurations unlike the fixtures, for
 * each architecture: untied head, in/out_proj biases, conv widths 2 and 3, odd N, R, D, ED, V;
 * Mamba-2 with three groups, odd head size and a ragged last chunk; sampled entries of every
 * parameter tensor. The forward runs in float, so a difference quotient carries ~1e-5 of rounding:
 * parameters are set so that every gradient stands well above that.
 */
class ModelFiniteDifferenceTest {
  @ParameterizedTest
  @ValueSource(ints = {2, 3})
  void everyParameterTensor(int K) {
    checkEveryParameterTensor("K=" + K, mamba1Shape(K).build(), K, 9, "-");
  }

  @Test
  void everyFalconMambaParameterTensor() {
    checkEveryParameterTensor(
        "falcon", mamba1Shape(3).architecture(Architecture.FALCON_MAMBA).build(), 5, 9, "-");
  }

  /**
   * Mamba-2 on a shape the fixtures lack: G = 3 groups of two heads of P = 5 channels, N = 7, K =
   * 3, chunks of 4 over L = 11 (ragged), biases, an untied head; with Δ unclamped and clamped to a
   * range that binds (the clamp's gradient is zero outside it).
   */
  @ParameterizedTest
  @ValueSource(floats = {Float.POSITIVE_INFINITY, 0.3f})
  void everyMamba2ParameterTensor(float dtMax) {
    MambaConfig c =
        MambaConfig.builder()
            .architecture(Architecture.MAMBA2)
            .vocabSize(17)
            .hiddenSize(15)
            .expand(2)
            .headDim(5)
            .nGroups(3)
            .stateSize(7)
            .convKernel(3)
            .chunkSize(4)
            .numLayers(2)
            .useBias(true)
            .tieWordEmbeddings(false)
            .timeStepMin(0.05f)
            .timeStepMax(0.5f)
            .timeStepLimit(0.01f, dtMax)
            .build();
    checkEveryParameterTensor(
        "mamba2 dt<=" + dtMax, c, 7, 11, Float.isInfinite(dtMax) ? "-" : "dt_bias");
  }

  private static MambaConfig.Builder mamba1Shape(int K) {
    return MambaConfig.builder()
        .vocabSize(17)
        .hiddenSize(12)
        .intermediateSize(20)
        .stateSize(5)
        .timeStepRank(3)
        .convKernel(K)
        .numLayers(2)
        .useBias(true)
        .tieWordEmbeddings(false)
        // Δ up to 0.5 (the default init starts at 0.001-0.1): gives the Δ and A gradients enough
        // signal to stand above the float rounding of the finite differences
        .timeStepMin(0.05f)
        .timeStepMax(0.5f);
  }

  /** (loss(p + h) − loss(p − h)) / 2h for entry i of p. */
  private static double central(
      MambaModel m, Workspace ws, int[] ids, int B, int L, float[] p, int i, double h) {
    float keep = p[i];
    p[i] = (float) (keep + h);
    double up = Scoring.meanNextTokenLoss(m, ws, ids, B, L);
    p[i] = (float) (keep - h);
    double down = Scoring.meanNextTokenLoss(m, ws, ids, B, L);
    p[i] = keep;
    return (up - down) / (2 * h);
  }

  /**
   * @param smallStep the tensors (by name suffix) whose step is kept small: those that move Δ
   *     across a binding clamp's kink (a step across it measures the kink, not the gradient)
   */
  private static void checkEveryParameterTensor(
      String label, MambaConfig c, int seed, int L, String smallStep) {
    MambaWeights w = Initialization.initialize(c, 11);
    SplittableRandom r = new SplittableRandom(seed);
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
      boolean ones = t.name.endsWith("mixer.norm.weight") || t.name.endsWith("mixer.D");
      if (c.architecture == Architecture.MAMBA2 && ones) {
        for (int i = 0; i < t.data.length; i++) { // away from all-ones: per-head signal
          t.data[i] = (float) (0.5 + r.nextDouble());
        }
      }
    }
    int B = 2;
    int[] ids = r.ints((long) B * L, 0, c.vocabSize).toArray();
    MambaModel m = new MambaModel(w);
    MambaWeights g = MambaWeights.zerosLike(w);
    new Backprop(m, B, L, 4).forwardBackward(ids, g, 1.0 / ((double) B * (L - 1)));
    Workspace ws = new Workspace(c);
    double worst = 0;
    for (NamedTensor t : w.parameters()) {
      float[] an = g.parameter(t.name).data;
      double ss = 0;
      for (float v : t.data) {
        ss += (double) v * v;
      }
      double h = Math.min(1e-1, Math.max(2e-2, 0.3 * Math.sqrt(ss / t.data.length)));
      if (t.name.endsWith(smallStep)) {
        h = 2e-2;
      }
      double num = 0, den = 0;
      for (int s = 0; s < 6; s++) {
        int i = r.nextInt(t.data.length);
        // Richardson: (4·D(h/2) − D(h)) / 3 cancels the h² term of the central differences, which
        // the norms (of small embedding rows, of B and C) make large; the step follows the
        // tensor's scale, large enough that float rounding stays small against the difference
        double fd =
            (4 * central(m, ws, ids, B, L, t.data, i, h / 2)
                    - central(m, ws, ids, B, L, t.data, i, h))
                / 3;
        num += (fd - an[i]) * (fd - an[i]);
        den += fd * fd;
      }
      double err = Math.sqrt(num / Math.max(den, 1e-12));
      System.out.printf("%s finite differences %-42s rel err %.2e%n", label, t.name, err);
      worst = Math.max(worst, err);
      // 3%: the float forward leaves ~2e-6 of noise on each quotient; a wrong term would be off by
      // far more. The precise checks are the fixtures (1e-4) and the per-operation differences.
      assertTrue(err < 3e-2, t.name + " rel err " + err);
    }
    System.out.printf(
        "%s model gradient vs finite differences: largest rel err %.2e%n", label, worst);
  }
}
