package org.mambaspark.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.mambaspark.model.Architecture;
import org.mambaspark.model.Backends;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaState;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.ModelRunner;
import org.mambaspark.model.NamedTensor;
import org.mambaspark.model.Sampler;

/**
 * The decode step as one launch of {@link DecodePlan}'s passes equals the CPU engine's step: logits
 * and the carried state after a prefill and several steps, for batch sizes around the product's
 * blocks of eight rows, odd shapes (N, R, conv width, D not multiples of anything) and both weight
 * placements (resident fp32, and bf16 slabs against the CPU on bf16-rounded matrices).
 */
class DecodeStepTest {
  static GpuBackend backend;

  @BeforeAll
  static void device() {
    backend = OpenClTests.openBackend();
  }

  @AfterAll
  static void clear() {
    OpenClTests.closeBackend();
  }

  static MambaModel model(int V, int ED, int N, int R, int K, boolean bias) {
    return model(Architecture.MAMBA, V, ED, N, R, K, bias);
  }

  static MambaModel model(Architecture arch, int V, int ED, int N, int R, int K, boolean bias) {
    return model(arch, V, 40, ED, N, R, K, bias);
  }

  static MambaModel model(
      Architecture arch, int V, int D, int ED, int N, int R, int K, boolean bias) {
    MambaConfig c =
        MambaConfig.builder()
            .architecture(arch)
            .vocabSize(V)
            .hiddenSize(D)
            .intermediateSize(ED)
            .stateSize(N)
            .timeStepRank(R)
            .convKernel(K)
            .numLayers(2)
            .useBias(bias)
            .tieWordEmbeddings(!bias)
            .build();
    MambaWeights w = Initialization.initialize(c, 5);
    // biases away from their zero initialisation, so that a product that skips one shows
    SplittableRandom r = new SplittableRandom(6);
    for (NamedTensor t : w.parameters()) {
      if (t.name.endsWith(".bias")) {
        for (int i = 0; i < t.data.length; i++) {
          t.data[i] = (float) (0.2 * r.nextGaussian());
        }
      }
    }
    return new MambaModel(w);
  }

  /**
   * V and ED of 1000 and more: in_proj and lm_head run as the tiled product when B > 8. ED over
   * {@link StepKernel#GEMV_LONG_ROW}: x_proj and out_proj read their long rows sixteen weights a
   * lane, a partial last iteration included; R and N over 32: the scan pass's lanes loop (a warp a
   * channel while B·ED is too small to give each compute unit 256 channels, a thread a channel
   * beyond).
   */
  @ParameterizedTest(name = "B={0} V={1} ED={2} N={3} R={4} K={5} bias={6}")
  @CsvSource({
    "1, 97, 88, 16, 8, 4, false",
    "8, 97, 88, 5, 3, 3, true",
    "11, 97, 88, 7, 5, 1, false",
    "17, 97, 88, 3, 2, 2, true",
    "23, 1100, 520, 6, 4, 4, false",
    "64, 1033, 600, 4, 3, 3, true",
    "3, 97, 2100, 33, 40, 4, true",
    "1, 97, 300, 33, 40, 4, true",
    "9, 97, 2060, 5, 3, 2, false"
  })
  void stepsEqualTheCpuEngine(int B, int V, int ED, int N, int R, int K, boolean bias) {
    OpenClTests.assumeOpenCl();
    MambaModel m = model(V, ED, N, R, K, bias);
    float[][] want;
    try (ModelRunner cpu = Backends.cpu().open(m)) {
      want = steps(cpu, B, 3);
    }
    float[][] got;
    try (GpuModel g = new GpuModel(backend, m)) {
      got = steps(g, B, 3);
    }
    double w = DeviceWeightsTest.worst(got, want);
    System.out.printf(
        "B=%d N=%d R=%d K=%d: decode plan vs CPU, largest rel err %.3g%n", B, N, R, K, w);
    assertTrue(w < 2e-5, "largest rel err " + w);
  }

  /**
   * The plans of a 132-unit GPU: products whose column tiles would leave most units idle split k
   * into parts. out_proj's parts are summed by the next norm (B > 32), in_proj's (D = 160: ten
   * k-steps, five parts) by the conv step, lm_head's by a pass of their own, into the logits.
   */
  @ParameterizedTest(name = "B={0} bias={1}")
  @CsvSource({"40, true", "64, false"})
  void splitProductsEqualTheCpuEngine(int B, boolean bias) {
    OpenClTests.assumeOpenCl();
    MambaModel m = model(Architecture.MAMBA, 1033, 160, 600, 5, 3, 3, bias);
    float[][] want;
    try (ModelRunner cpu = Backends.cpu().open(m)) {
      want = steps(cpu, B, 2);
    }
    float[][] got;
    try (GpuModel g =
        new GpuModel(backend, m, DeviceWeights.Format.FP32, DeviceWeights.ARRAY_FLOATS, 132)) {
      got = steps(g, B, 2);
    }
    double w = DeviceWeightsTest.worst(got, want);
    System.out.printf("split products B=%d: decode plan vs CPU, largest rel err %.3g%n", B, w);
    assertTrue(w < 2e-5, "largest rel err " + w);
  }

  /** Falcon-Mamba: the part norms inside the dt_proj + scan pass. */
  @ParameterizedTest(name = "Falcon-Mamba B={0}")
  @CsvSource({"1", "6", "19"})
  void falconStepsEqualTheCpuEngine(int B) {
    OpenClTests.assumeOpenCl();
    MambaModel m = model(Architecture.FALCON_MAMBA, 97, 88, 6, 5, 4, true);
    float[][] want;
    try (ModelRunner cpu = Backends.cpu().open(m)) {
      want = steps(cpu, B, 3);
    }
    float[][] got;
    try (GpuModel g = new GpuModel(backend, m)) {
      got = steps(g, B, 3);
    }
    double w = DeviceWeightsTest.worst(got, want);
    System.out.printf("Falcon-Mamba B=%d: decode plan vs CPU, largest rel err %.3g%n", B, w);
    assertTrue(w < 2e-5, "largest rel err " + w);
  }

  /**
   * A greedy step's tokens picked on the device equal the argmax of the same step's logits read
   * back (two states from one prefill, one step each way), and the states after equal; V below and
   * above a work-group's 256 threads, the step's rows spread over groups.
   */
  @ParameterizedTest(name = "B={0} V={1}")
  @CsvSource({"1, 97", "5, 1033", "64, 1100"})
  void greedyTokensOnTheDeviceAreTheLogitsArgmax(int B, int V) {
    OpenClTests.assumeOpenCl();
    MambaModel m = model(V, 88, 5, 3, 3, true);
    try (GpuModel g = new GpuModel(backend, m)) {
      for (int step = 0; step < 3; step++) {
        MambaState s1 = new MambaState(m.config, B);
        MambaState s2 = new MambaState(m.config, B);
        int[] prompt = DeviceWeightsTest.ids(B * (3 + step), V);
        float[] logits = new float[B * V];
        g.forwardLastLogits(logits, prompt, B, 3 + step, s1);
        g.forwardLastLogits(logits, prompt, B, 3 + step, s2);
        int[] ids = DeviceWeightsTest.ids(B + step, V);
        g.forwardLastLogits(logits, ids, B, 1, s1);
        int[] next = new int[B];
        g.forwardLastArgmax(next, new float[B * V], ids, B, 1, s2);
        for (int b = 0; b < B; b++) {
          assertEquals(Sampler.argmax(logits, b * V, V), next[b], "row " + b + " step " + step);
        }
        s1.toHost();
        s2.toHost();
        for (int l = 0; l < m.config.numLayers; l++) {
          assertArrayEquals(s1.ssm(l), s2.ssm(l), 0f, "ssm state, layer " + l);
        }
      }
    }
    System.out.printf("B=%d V=%d: device argmax equals the logits' argmax%n", B, V);
  }

  /** Equal logits everywhere (every embedding row the same): each row's token is 0, the first. */
  @Test
  void greedyTiesGoToTheFirstToken() {
    OpenClTests.assumeOpenCl();
    MambaModel m = model(700, 88, 5, 3, 3, false);
    float[] emb = m.weights.embeddings;
    int D = m.config.hiddenSize;
    for (int v = 1; v < m.config.vocabSize; v++) {
      System.arraycopy(emb, 0, emb, v * D, D);
    }
    int B = 3;
    try (GpuModel g = new GpuModel(backend, m)) {
      MambaState s = new MambaState(m.config, B);
      float[] logits = new float[B * 700];
      g.forwardLastLogits(logits, DeviceWeightsTest.ids(B * 2, 700), B, 2, s);
      int[] next = new int[B];
      g.forwardLastArgmax(next, logits, DeviceWeightsTest.ids(B, 700), B, 1, s);
      assertArrayEquals(new int[B], next);
    }
  }

  /**
   * Where decode steps run: after a prefill, a state over {@link GpuModel#decodeMoveLimit} stays on
   * the whole model's program, a smaller one moves to the decode step's; either way the steps equal
   * the CPU engine's.
   */
  @ParameterizedTest(name = "move limit {0}")
  @CsvSource({"0, false", "9223372036854775807, true"})
  void decodeStepsRunWhereTheStateIsCheapest(long limit, boolean ownProgram) {
    OpenClTests.assumeOpenCl();
    MambaModel m = model(97, 88, 5, 3, 3, true);
    int B = 3;
    float[][] want;
    try (ModelRunner cpu = Backends.cpu().open(m)) {
      want = steps(cpu, B, 3);
    }
    float[][] got;
    try (GpuModel g = new GpuModel(backend, m)) {
      g.decodeMoveLimit = limit;
      got = steps(g, B, 3);
      assertEquals(ownProgram, g.stepLaunch() != g.launch, "decode steps on their own program");
    }
    double w = DeviceWeightsTest.worst(got, want);
    System.out.printf("move limit %d: decode steps vs CPU, largest rel err %.3g%n", limit, w);
    assertTrue(w < 2e-5, "largest rel err " + w);
  }

  /** A prefill of 5 positions, then {@code n} steps; the logits of each and the final state. */
  static float[][] steps(ModelRunner r, int B, int n) {
    MambaConfig c = r.model().config;
    int V = c.vocabSize;
    MambaState s = new MambaState(c, B);
    float[][] out = new float[n + 1 + 2 * c.numLayers][];
    out[0] = new float[B * V];
    r.forwardLastLogits(out[0], DeviceWeightsTest.ids(B * 5, V), B, 5, s);
    for (int i = 1; i <= n; i++) {
      out[i] = new float[B * V];
      r.forwardLastLogits(out[i], DeviceWeightsTest.ids(B + i, V), B, 1, s);
    }
    s.toHost();
    for (int l = 0; l < c.numLayers; l++) {
      out[n + 1 + 2 * l] = s.ssm(l).clone();
      out[n + 2 + 2 * l] = s.conv(l).clone();
    }
    return out;
  }
}
