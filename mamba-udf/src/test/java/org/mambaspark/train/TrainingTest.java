package org.mambaspark.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.NamedTensor;

/**
 * AdamW, clipping and schedules against hand-computed values; resume; learning below the unigram
 * entropy.
 */
class TrainingTest {
  @TempDir Path tmp;

  static MambaConfig tinyBytes() {
    return MambaConfig.builder().vocabSize(256).hiddenSize(48).numLayers(2).stateSize(8).build();
  }

  @Test
  void adamWMatchesTheTorchFormulaByHand() {
    MambaWeights w = new MambaWeights(tinyBytes());
    MambaWeights g = MambaWeights.zerosLike(w);
    String decayed = "backbone.layers.0.mixer.in_proj.weight";
    String notDecayed = "backbone.layers.0.norm.weight";
    String aLog = "backbone.layers.0.mixer.A_log"; // 2-D but exempt, as mamba_ssm
    for (String n : new String[] {decayed, notDecayed, aLog}) {
      w.parameter(n).data[0] = 0.5f;
    }
    AdamW opt = new AdamW(w, 0.9f, 0.999f, 1e-8f, 0.01f);
    // expected values from p ← p(1−lr·λ); m,v moments; p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) +
    // ε),
    // lr 0.1, λ 0.01, gradients 0.2 then −0.1 (computed in float64)
    double[] wantDecayed = {0.39950000499999977, 0.37246680271367577};
    double[] wantPlain = {0.40000000499999977, 0.37336630271867577};
    float[] gs = {0.2f, -0.1f};
    for (int t = 0; t < 2; t++) {
      for (String n : new String[] {decayed, notDecayed, aLog}) {
        g.parameter(n).data[0] = gs[t];
      }
      opt.update(w, g, 0.1f);
      System.out.printf(
          "AdamW step %d: decayed %.9f (want %.9f), plain %.9f (want %.9f)%n",
          t + 1,
          w.parameter(decayed).data[0],
          wantDecayed[t],
          w.parameter(notDecayed).data[0],
          wantPlain[t]);
      assertEquals(wantDecayed[t], w.parameter(decayed).data[0], 1e-6);
      assertEquals(wantPlain[t], w.parameter(notDecayed).data[0], 1e-6);
      assertEquals(wantPlain[t], w.parameter(aLog).data[0], 1e-6);
    }
    // an entry with zero gradient and zero value stays exactly zero
    assertEquals(0f, w.parameter(decayed).data[1]);
    assertTrue(AdamW.decays(w.parameter("backbone.layers.0.mixer.conv1d.weight")));
    assertTrue(!AdamW.decays(w.parameter("backbone.layers.0.mixer.D")));
  }

  @Test
  void clippingAsTorchClipGradNorm() {
    MambaWeights g = new MambaWeights(tinyBytes());
    g.parameter("backbone.norm_f.weight").data[0] = 3f;
    g.parameter("backbone.layers.1.mixer.D").data[3] = 4f;
    double norm = Gradients.clipGlobalNorm(g, 1.0);
    assertEquals(5.0, norm, 1e-12);
    // coef = max_norm / (norm + 1e-6)
    assertEquals(3.0 / (5 + 1e-6), g.parameter("backbone.norm_f.weight").data[0], 1e-7);
    assertEquals(4.0 / (5 + 1e-6), g.parameter("backbone.layers.1.mixer.D").data[3], 1e-7);
    assertEquals(1.0, Gradients.globalNorm(g), 1e-6);
    // under the limit: untouched
    assertEquals(1.0, Gradients.clipGlobalNorm(g, 2.0), 1e-6);
    assertEquals(3.0 / (5 + 1e-6), g.parameter("backbone.norm_f.weight").data[0], 1e-7);
  }

  @Test
  void warmupThenCosineToTheFloor() {
    LrSchedule s = LrSchedule.warmupCosine(1e-3f, 1e-4f, 10, 110);
    assertEquals(1e-4f, s.lr(0), 1e-9); //  (0+1)/10 of max
    assertEquals(1e-3f, s.lr(9), 1e-9); //  end of warm-up
    assertEquals(1e-3f, s.lr(10), 1e-9); // cosine starts at max
    assertEquals(0.55e-3f, s.lr(60), 1e-8); // half way: (max+min)/2
    assertEquals(1e-4f, s.lr(110), 1e-9);
    assertEquals(1e-4f, s.lr(500), 1e-9);
    assertEquals(3e-4f, LrSchedule.constant(3e-4f).lr(12345), 0f);
  }

  static int[] corpus() throws IOException {
    try (InputStream in = TrainingTest.class.getResourceAsStream("/corpus/ssm.txt")) {
      byte[] b = in.readAllBytes();
      int[] t = new int[b.length];
      for (int i = 0; i < b.length; i++) {
        t[i] = b[i] & 0xff;
      }
      return t;
    }
  }

  static TrainOptions options(long steps) {
    TrainOptions o = new TrainOptions();
    o.seqLen = 64;
    o.batch = 8;
    o.microBatch = 4;
    o.steps = steps;
    o.lr = 5e-3f;
    o.minLr = 5e-4f;
    o.warmupSteps = Math.min(10, steps);
    o.evalEvery = 0;
    o.seed = 3;
    return o;
  }

  @Test
  void resumeContinuesTheSameTrajectory() throws IOException {
    int[] tokens = corpus();
    TrainOptions o = options(6);
    LocalTrainer straight = new LocalTrainer(Initialization.initialize(tinyBytes(), 1), tokens, o);
    double[] want = new double[6];
    for (int i = 0; i < 6; i++) {
      want[i] = straight.trainStep().loss;
    }
    LocalTrainer first = new LocalTrainer(Initialization.initialize(tinyBytes(), 1), tokens, o);
    double[] got = new double[6];
    for (int i = 0; i < 3; i++) {
      got[i] = first.trainStep().loss;
    }
    first.save(tmp);
    LocalTrainer resumed = LocalTrainer.resume(tmp, tokens, o);
    assertEquals(3, resumed.step());
    for (int i = 3; i < 6; i++) {
      got[i] = resumed.trainStep().loss;
    }
    System.out.println(
        "straight "
            + java.util.Arrays.toString(want)
            + "\nresumed  "
            + java.util.Arrays.toString(got));
    assertArrayEquals(want, got, 0.0, "losses identical");
    List<NamedTensor> a = straight.weights().parameters(), b = resumed.weights().parameters();
    for (int i = 0; i < a.size(); i++) {
      assertArrayEquals(a.get(i).data, b.get(i).data, 0f, a.get(i).name);
    }
  }

  @Test
  void saveLoadForwardIsBitIdentical() {
    MambaWeights w =
        Initialization.initialize(
            tinyBytes().toBuilder().tieWordEmbeddings(false).useBias(true).build(), 5);
    Checkpoint.save(w, tmp);
    MambaWeights back = Checkpoint.load(tmp);
    int[] ids = {1, 5, 200, 7, 7, 9, 255, 0};
    org.mambaspark.model.MambaModel m1 = new org.mambaspark.model.MambaModel(w);
    org.mambaspark.model.MambaModel m2 = new org.mambaspark.model.MambaModel(back);
    org.mambaspark.model.Workspace w1 = new org.mambaspark.model.Workspace(w.config);
    org.mambaspark.model.Workspace w2 = new org.mambaspark.model.Workspace(w.config);
    m1.forward(w1, ids, 2, 4, null, null);
    m2.forward(w2, ids, 2, 4, null, null);
    assertArrayEquals(w1.hidden, w2.hidden, 0f);
  }

  @Test
  void learnsBelowTheUnigramEntropy() throws IOException {
    int[] tokens = corpus();
    double[] p = new double[256];
    for (int t : tokens) {
      p[t]++;
    }
    double entropy = 0;
    for (double c : p) {
      if (c > 0) {
        entropy -= c / tokens.length * Math.log(c / tokens.length);
      }
    }
    TrainOptions o = options(300);
    o.evalFraction = 0.1;
    o.evalBatches = 2;
    LocalTrainer t = new LocalTrainer(Initialization.initialize(tinyBytes(), 1), tokens, o);
    double before = t.evalLoss();
    List<LocalTrainer.StepResult> r = t.run(tmp);
    double last = 0;
    for (int i = r.size() - 20; i < r.size(); i++) {
      last += r.get(i).loss / 20;
    }
    double after = t.evalLoss();
    System.out.printf(
        "byte model, 300 steps: unigram entropy %.3f nats; train loss (last 20 steps) %.3f;"
            + " held-out loss %.3f (before training %.3f)%n",
        entropy, last, after, before);
    assertTrue(last < entropy - 0.5, "train loss " + last + " vs unigram entropy " + entropy);
    assertTrue(after < entropy, "held-out loss " + after + " vs unigram entropy " + entropy);
  }
}
