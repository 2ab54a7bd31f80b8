package org.mambaspark.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.mambaspark.Fixtures;
import org.mambaspark.kernel.OpenClTests;

/**
 * Backend selection (properties, device index, Spark address, the loud CPU fallback) and the GPU
 * runner against the CPU runner on a model with every optional part (untied head, biases, odd
 * sizes): forward, generation steps with a carried state, scoring, every gradient, weights changed
 * in place, and threads sharing one runner. The GPU runs on PoCL in CI ({@code
 * -Dmamba.opencl.cpu=true} admits CPU OpenCL devices); without OpenCL the GPU cases fail, saying so
 * (locally, {@code -Dmamba.kernel.tests=skip} skips them instead).
 */
class BackendsTest {
  @AfterEach
  void clear() {
    System.clearProperty(Backends.BACKEND_PROPERTY);
    System.clearProperty(Backends.DEVICE_PROPERTY);
    System.clearProperty("mamba.opencl.cpu");
    Backends.reset();
  }

  static Backend gpu() {
    OpenClTests.assumeOpenCl();
    System.setProperty("mamba.opencl.cpu", "true");
    System.setProperty(Backends.BACKEND_PROPERTY, "gpu");
    Backends.reset();
    Backend b = Backends.get();
    assertEquals(
        Backend.Kind.GPU,
        b.kind(),
        "no OpenCL device for the GPU backend (CI installs PoCL: apt-get install -y"
            + " pocl-opencl-icd); see the warning above for the reason");
    return b;
  }

  @Test
  void cpuWhenAskedAndChosenOncePerJvm() {
    System.setProperty(Backends.BACKEND_PROPERTY, "cpu");
    Backend b = Backends.get();
    assertEquals(Backend.Kind.CPU, b.kind());
    assertSame(b, Backends.get());
    assertSame(b, Backends.forGpuAddress("0"), "cpu wins over a Spark GPU address");
    System.out.println("backend: " + b);
  }

  @Test
  void badSettingsAreErrors() {
    System.setProperty(Backends.BACKEND_PROPERTY, "tpu");
    assertThrows(IllegalArgumentException.class, Backends::get);
    System.setProperty(Backends.BACKEND_PROPERTY, "auto");
    System.setProperty(Backends.DEVICE_PROPERTY, "first");
    assertThrows(IllegalArgumentException.class, Backends::get);
    assertThrows(IllegalArgumentException.class, () -> Backends.forGpuAddress("gpu0"));
    assertThrows(IllegalArgumentException.class, () -> Backends.forGpuAddress("-1"));
  }

  @Test
  void aMissingDeviceFallsBackToTheCpuLoudly() {
    System.setProperty("mamba.opencl.cpu", "true");
    PrintStream err = System.err;
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    Backend b;
    try {
      System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
      b = Backends.forGpuAddress("99");
    } finally {
      System.setErr(err);
    }
    String log = captured.toString(StandardCharsets.UTF_8);
    System.out.println(log);
    assertEquals(Backend.Kind.CPU, b.kind());
    // the banner goes to the log (to stderr with the simple binding; elsewhere with log4j2's)
    String banner = Backends.lastFallbackWarning;
    assertTrue(
        banner != null && banner.contains("RUNNING ON THE CPU") && banner.contains("device 99"),
        "the fallback is logged loudly: " + banner + " / captured: " + log);
  }

  @Test
  void theGpuBackendIsPerDeviceAndNamesItsDevice() {
    Backend b = gpu();
    System.out.println("backend: " + b);
    assertTrue(!b.device().isBlank());
    assertSame(b, Backends.forGpuAddress("0"), "Spark address 0 is the same device");
    assertSame(b, Backends.forGpuAddress(""), "no address: the JVM's choice");
  }

  /**
   * The GPU kernels compute every architecture: a Mamba-2 model opened through the GPU backend runs
   * on the GPU (not a CPU runner behind it), and its results are the CPU engine's.
   */
  @ParameterizedTest
  @org.junit.jupiter.params.provider.ValueSource(strings = {"mamba2_tiny", "mamba2_small"})
  void mamba2RunsOnTheGpuUnderTheGpuBackend(String fixture) {
    Backend b = gpu();
    MambaModel m =
        new MambaModel(org.mambaspark.io.Checkpoint.load(Fixtures.dir(fixture).resolve("model")));
    assertTrue(Backends.GPU_ARCHITECTURES.contains(m.config.architecture));
    try (ModelRunner r = b.open(m)) {
      assertEquals(Backend.Kind.GPU, r.backend().kind(), "through the GPU kernels");
      int B = 2, L = 9;
      int[] ids = new SplittableRandom(5).ints((long) B * L, 0, m.config.vocabSize).toArray();
      float[] got = new float[B * L * m.config.hiddenSize];
      r.forward(got, ids, B, L, null);
      Workspace ws = new Workspace(m.config);
      m.forward(ws, ids, B, L, null, null);
      double err = Fixtures.relErr(got, ws.hidden);
      System.out.printf("[%s] GPU backend vs CPU engine: rel err %.3e%n", fixture, err);
      assertTrue(err < 1e-5, "rel err " + err);
    }
  }

  static MambaModel randomModel() {
    return randomModel(
        MambaConfig.builder()
            .vocabSize(61)
            .hiddenSize(20)
            .intermediateSize(36)
            .stateSize(7)
            .timeStepRank(3)
            .convKernel(3)
            .numLayers(2)
            .useBias(true)
            .tieWordEmbeddings(false)
            .build());
  }

  /**
   * Shapes the fixtures do not have, for {@link #gpuRunnerMatchesTheCpuRunner}: (config, B, L). The
   * second runs the forward scan over several chunks with a ragged last one (L = 150 against chunks
   * of 64) at a large odd N, a wide conv and time-step rank 1; the third N = 1, K = 2; the last two
   * are Falcon-Mamba's (its part norms, forward and backward, on the device), one with an eps large
   * enough to matter.
   */
  static Stream<Arguments> shapes() {
    MambaConfig wide =
        MambaConfig.builder()
            .vocabSize(50)
            .hiddenSize(16)
            .intermediateSize(48)
            .stateSize(33)
            .timeStepRank(1)
            .convKernel(5)
            .numLayers(1)
            .useConvBias(false)
            .build();
    MambaConfig narrow =
        MambaConfig.builder()
            .vocabSize(19)
            .hiddenSize(8)
            .intermediateSize(24)
            .stateSize(1)
            .timeStepRank(2)
            .convKernel(2)
            .numLayers(2)
            .build();
    return Stream.of(
        Arguments.of("odd", randomModel().config, 3, 41),
        Arguments.of("long, N=33, K=5, R=1", wide, 2, 150),
        Arguments.of("N=1, K=2, L=2", narrow, 1, 2),
        Arguments.of(
            "falcon, odd",
            randomModel().config.toBuilder().architecture(Architecture.FALCON_MAMBA).build(),
            3,
            23),
        Arguments.of(
            "falcon, N=33, K=5, R=1, eps 0.05",
            wide.toBuilder()
                .architecture(Architecture.FALCON_MAMBA)
                .mixerRmsEps(0.05f)
                .numLayers(2)
                .build(),
            2,
            77));
  }

  static MambaModel randomModel(MambaConfig c) {
    MambaWeights w = Initialization.initialize(c, 11);
    // non-zero biases and a lm_head different from the embedding
    SplittableRandom r = new SplittableRandom(12);
    for (NamedTensor t : w.parameters()) {
      if (t.name.endsWith(".bias") || t.name.equals(MambaWeights.LM_HEAD)) {
        for (int i = 0; i < t.data.length; i++) {
          t.data[i] = (float) (0.2 * r.nextGaussian());
        }
      }
    }
    return new MambaModel(w);
  }

  static int[] ids(int n, int V, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    int[] a = new int[n];
    for (int i = 0; i < n; i++) {
      a[i] = r.nextInt(V);
    }
    return a;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("shapes")
  void gpuRunnerMatchesTheCpuRunner(String name, MambaConfig config, int B, int L) {
    MambaModel m = randomModel(config);
    MambaConfig c = m.config;
    int D = c.hiddenSize, V = c.vocabSize;
    int[] ids = ids(B * L, V, 1);
    try (ModelRunner g = gpu().open(m);
        ModelRunner cpu = Backends.cpu().open(m)) {
      double worst = 0;
      float[] hg = new float[B * L * D], hc = new float[B * L * D];
      g.forward(hg, ids, B, L, null);
      cpu.forward(hc, ids, B, L, null);
      worst = Math.max(worst, report("hidden", hg, hc, 1e-5));

      float[] lpg = new float[B * (L - 1)], lpc = new float[B * (L - 1)];
      double lg = g.nextTokenLossSum(lpg, ids, B, L);
      double lc = cpu.nextTokenLossSum(lpc, ids, B, L);
      worst = Math.max(worst, report("log-probs", lpg, lpc, 1e-5));
      assertEquals(lc, lg, 1e-5 * Math.abs(lc), "loss sum");

      // prefill, then one-token steps with the state carried
      MambaState sg = new MambaState(c, B), sc = new MambaState(c, B);
      float[] og = new float[B * V], oc = new float[B * V];
      g.forwardLastLogits(og, ids, B, L, sg);
      cpu.forwardLastLogits(oc, ids, B, L, sc);
      worst = Math.max(worst, report("prefill logits", og, oc, 1e-5));
      int[] step = ids(B, V, 2);
      for (int s = 0; s < 3; s++) {
        g.forwardLastLogits(og, step, B, 1, sg);
        cpu.forwardLastLogits(oc, step, B, 1, sc);
        worst = Math.max(worst, report("step " + s + " logits", og, oc, 1e-5));
      }
      for (int l = 0; l < c.numLayers; l++) {
        worst = Math.max(worst, report("ssm state " + l, sg.ssm(l), sc.ssm(l), 1e-5));
        worst = Math.max(worst, report("conv state " + l, sg.conv(l), sc.conv(l), 1e-5));
      }

      MambaWeights gg = MambaWeights.zerosLike(m.weights), gc = MambaWeights.zerosLike(m.weights);
      double scale = 1.0 / (B * (L - 1));
      double tg = g.forwardBackward(gg, ids, B, L, scale);
      double tc = cpu.forwardBackward(gc, ids, B, L, scale);
      assertEquals(tc, tg, 1e-5 * Math.abs(tc), "training loss sum");
      for (int i = 0; i < gg.parameters().size(); i++) {
        NamedTensor a = gg.parameters().get(i), b = gc.parameters().get(i);
        worst = Math.max(worst, report("grad " + a.name, a.data, b.data, 1e-4));
      }
      System.out.printf("gpu runner vs cpu runner [%s]: largest rel err %.2e%n", name, worst);
    }
  }

  @Test
  void weightsChangedInPlaceAreReloaded() {
    MambaModel m = randomModel();
    int B = 2, L = 9, D = m.config.hiddenSize;
    int[] ids = ids(B * L, m.config.vocabSize, 3);
    try (ModelRunner g = gpu().open(m);
        ModelRunner cpu = Backends.cpu().open(m)) {
      float[] hg = new float[B * L * D], hc = new float[B * L * D];
      g.forward(hg, ids, B, L, null);
      for (NamedTensor t : m.weights.parameters()) { // an optimizer step, in place
        for (int i = 0; i < t.data.length; i++) {
          t.data[i] *= 0.9f;
        }
      }
      g.reloadWeights();
      g.forward(hg, ids, B, L, null);
      cpu.forward(hc, ids, B, L, null);
      report("hidden after reloadWeights", hg, hc, 1e-5);
    }
  }

  @Test
  void threadsSharingOneGpuRunnerGetTheirOwnResults() throws Exception {
    MambaModel m = randomModel();
    int D = m.config.hiddenSize, V = m.config.vocabSize;
    try (ModelRunner g = gpu().open(m);
        ModelRunner cpu = Backends.cpu().open(m)) {
      ExecutorService pool = Executors.newFixedThreadPool(4);
      try {
        List<Future<Double>> fs = new ArrayList<>();
        for (int task = 0; task < 8; task++) {
          int B = 1 + task % 3, L = 5 + 7 * task;
          int[] ids = ids(B * L, V, 100 + task);
          fs.add(
              pool.submit(
                  () -> {
                    float[] hg = new float[B * L * D], hc = new float[B * L * D];
                    g.forward(hg, ids, B, L, null);
                    cpu.forward(hc, ids, B, L, null);
                    return Fixtures.relErr(hg, hc);
                  }));
        }
        double worst = 0;
        for (Future<Double> f : fs) {
          worst = Math.max(worst, f.get());
        }
        System.out.printf("8 concurrent tasks on one GPU runner: largest rel err %.2e%n", worst);
        assertTrue(worst < 1e-5, "rel err " + worst);
      } finally {
        pool.shutdown();
      }
    }
  }

  static double report(String what, float[] got, float[] want, double tol) {
    double err = Fixtures.relErr(got, want);
    System.out.printf("%s: rel err %.2e%n", what, err);
    assertTrue(err < tol, what + " rel err " + err);
    return err;
  }
}
