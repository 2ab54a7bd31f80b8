package org.mambaspark.kernel;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Locale;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.mambaspark.Fixtures;
import org.mambaspark.model.Architecture;
import org.mambaspark.model.Backends;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaState;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.ModelRunner;
import org.mambaspark.model.NamedTensor;

/**
 * Mamba-2 through the GPU runner against the CPU engine on shapes the fixtures do not have: head
 * sizes from 3 to 300 (more channels than a work-group has threads), 1 to 4 groups, N from 3 to 70,
 * conv widths 1 to 4, chunk sizes that do not divide L, B > 1, biases, an untied head, a clamped Δ.
 * Checked: hidden states and per-token losses of fresh sequences, the last logits of a prefill and
 * a decode step with the state, pieces carrying the state against one pass, and the state itself;
 * and the training loss and every parameter gradient of the device's backward.
 */
class Mamba2GpuTest {
  static final double TOL = 2e-5;
  static GpuBackend backend;

  @BeforeAll
  static void device() {
    backend = OpenClTests.openBackend();
  }

  @AfterAll
  static void clear() {
    OpenClTests.closeBackend();
  }

  /** A random Mamba-2 model, its D skip and gated-norm weight away from all-ones. */
  static MambaModel model(int D, int P, int G, int N, int K, int Q, boolean bias, float dtMax) {
    MambaConfig c =
        MambaConfig.builder()
            .architecture(Architecture.MAMBA2)
            .vocabSize(53)
            .hiddenSize(D)
            .expand(2)
            .headDim(P)
            .nGroups(G)
            .stateSize(N)
            .convKernel(K)
            .chunkSize(Q)
            .numLayers(2)
            .useBias(bias)
            .useConvBias(!bias)
            .tieWordEmbeddings(!bias)
            .timeStepLimit(0f, dtMax)
            .build();
    MambaWeights w = Initialization.initialize(c, 7);
    SplittableRandom r = new SplittableRandom(3);
    for (NamedTensor t : w.parameters()) {
      if (t.name.endsWith("mixer.norm.weight") || t.name.endsWith("mixer.D")) {
        for (int i = 0; i < t.data.length; i++) {
          t.data[i] = (float) (0.5 + r.nextDouble());
        }
      }
    }
    return new MambaModel(w);
  }

  @ParameterizedTest(name = "D={0} P={1} G={2} N={3} K={4} Q={5} bias={6} dt<={7} B={8} L={9}")
  @CsvSource({
    "24, 6, 2, 5, 3, 4, true, 0.3, 3, 11",
    "32, 16, 1, 32, 4, 8, false, Infinity, 2, 19",
    "80, 40, 4, 9, 2, 5, true, Infinity, 2, 13",
    "9, 3, 3, 70, 1, 3, false, 0.2, 5, 7",
    "150, 300, 1, 3, 4, 4, false, Infinity, 2, 6",
    "16, 8, 2, 130, 4, 16, false, Infinity, 1, 37",
    "8, 4, 1, 512, 2, 8, true, Infinity, 1, 9"
  })
  void gpuRunnerEqualsTheCpuEngine(
      int D, int P, int G, int N, int K, int Q, boolean bias, float dtMax, int B, int L) {
    OpenClTests.assumeOpenCl();
    MambaModel m = model(D, P, G, N, K, Q, bias, dtMax);
    float[][] want;
    float[][] wantSteps;
    float[][] wantPieces;
    try (ModelRunner cpu = Backends.cpu().open(m)) {
      want = DeviceWeightsTest.outputs(cpu, B, L);
      wantSteps = DecodeStepTest.steps(cpu, B, 3);
      wantPieces = pieces(cpu, B, L);
    }
    float[][] got;
    float[][] gotSteps;
    float[][] gotPieces;
    try (GpuModel g = new GpuModel(backend, m)) {
      got = DeviceWeightsTest.outputs(g, B, L);
      gotSteps = DecodeStepTest.steps(g, B, 3);
      gotPieces = pieces(g, B, L);
    }
    double wf = DeviceWeightsTest.worst(got, want);
    double ws = DeviceWeightsTest.worst(gotSteps, wantSteps);
    double wp = DeviceWeightsTest.worst(gotPieces, wantPieces);
    double onePass = Fixtures.relErr(gotPieces[0], got[0]);
    System.out.printf(
        "mamba2 D=%d P=%d G=%d N=%d K=%d Q=%d B=%d L=%d: gpu vs cpu largest rel err: forward,"
            + " loss, last logits %.3g; prefill + decode steps + state %.3g; pieces + state %.3g;"
            + " gpu pieces vs gpu one pass %.3g%n",
        D, P, G, N, K, Q, B, L, wf, ws, wp, onePass);
    assertTrue(wf < TOL, "forward rel err " + wf);
    assertTrue(ws < TOL, "decode rel err " + ws);
    assertTrue(wp < TOL, "pieces rel err " + wp);
    assertTrue(onePass < TOL, "pieces vs one pass rel err " + onePass);
  }

  /** Gradients within 1e-4 of the CPU engine's (float32 both, summed in other orders). */
  static final double GRAD_TOL = 1e-4;

  /**
   * The device's backward against the CPU engine's: lengths whose training chunks (the smallest
   * power of two ≥ √L) leave a ragged last one, a single position's chunk (L = 2), one chunk (L =
   * 3), groups of several heads, a clamped Δ (whose gradient the clamp stops), biases.
   */
  @ParameterizedTest(name = "D={0} P={1} G={2} N={3} K={4} Q={5} bias={6} dt<={7} B={8} L={9}")
  @CsvSource({
    "24, 6, 2, 5, 3, 4, true, 0.3, 3, 11",
    "32, 16, 1, 32, 4, 8, false, Infinity, 2, 19",
    "40, 5, 4, 9, 2, 5, true, Infinity, 2, 37",
    "9, 3, 3, 70, 1, 3, false, 0.2, 5, 7",
    "20, 4, 1, 8, 4, 16, false, Infinity, 1, 2",
    "12, 8, 3, 4, 3, 2, true, Infinity, 4, 3"
  })
  void gradientsEqualTheCpuEngine(
      int D, int P, int G, int N, int K, int Q, boolean bias, float dtMax, int B, int L) {
    OpenClTests.assumeOpenCl();
    MambaModel m = model(D, P, G, N, K, Q, bias, dtMax);
    int[] ids = DeviceWeightsTest.ids(B * L, m.config.vocabSize);
    double scale = 1.0 / (B * (L - 1));
    MambaWeights want = MambaWeights.zerosLike(m.weights);
    MambaWeights got = MambaWeights.zerosLike(m.weights);
    double lossWant;
    double lossGot;
    try (ModelRunner cpu = Backends.cpu().open(m)) {
      lossWant = cpu.forwardBackward(want, ids, B, L, scale);
    }
    try (GpuModel g = new GpuModel(backend, m)) {
      lossGot = g.forwardBackward(got, ids, B, L, scale);
    }
    double lossErr = Math.abs(lossGot - lossWant) / Math.abs(lossWant);
    assertTrue(lossErr < TOL, "training loss rel err " + lossErr);
    double worst = 0;
    String worstName = "";
    for (int i = 0; i < got.parameters().size(); i++) {
      NamedTensor a = got.parameters().get(i);
      double err = Fixtures.relErr(a.data, want.parameters().get(i).data);
      if (err >= worst) {
        worst = err;
        worstName = a.name;
      }
      assertTrue(err < GRAD_TOL, "grad." + a.name + " rel err " + err);
    }
    System.out.printf(
        "mamba2 D=%d P=%d G=%d N=%d K=%d B=%d L=%d: gpu vs cpu training loss rel err %.3g,"
            + " largest gradient rel err %.3g (%s)%n",
        D, P, G, N, K, B, L, lossErr, worst, worstName);
  }

  /** Hidden states of pieces of 1, 2, then 4 positions carrying a state; then that state. */
  static float[][] pieces(ModelRunner r, int B, int L) {
    MambaConfig c = r.model().config;
    int D = c.hiddenSize;
    int[] ids = DeviceWeightsTest.ids(B * L, c.vocabSize);
    MambaState s = new MambaState(c, B);
    float[] hidden = new float[B * L * D];
    int off = 0;
    for (int piece = 1; off < L; piece = Math.min(4, 2 * piece)) {
      int n = Math.min(piece, L - off);
      int[] part = new int[B * n];
      for (int b = 0; b < B; b++) {
        System.arraycopy(ids, b * L + off, part, b * n, n);
      }
      float[] h = new float[B * n * D];
      r.forward(h, part, B, n, s);
      for (int b = 0; b < B; b++) {
        System.arraycopy(h, b * n * D, hidden, (b * L + off) * D, n * D);
      }
      off += n;
    }
    s.toHost();
    float[][] out = new float[1 + 2 * c.numLayers][];
    out[0] = hidden;
    for (int l = 0; l < c.numLayers; l++) {
      out[1 + 2 * l] = s.ssm(l).clone();
      out[2 + 2 * l] = s.conv(l).clone();
    }
    return out;
  }

  /** A state size beyond what the scan's threads hold in registers is refused in one line. */
  @Test
  void aStateSizeBeyondTheScansRegistersIsRefused() {
    OpenClTests.assumeOpenCl();
    int N = SsdKernel.SCAN_MAX_N + 1;
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> new GpuModel(backend, model(8, 4, 1, N, 2, 4, false, Float.POSITIVE_INFINITY)));
    System.out.println("refused: " + e.getMessage());
    assertTrue(
        e.getMessage().contains("state_size") && e.getMessage().contains(" " + N), e.getMessage());
  }

  /** A Mamba-2 model beyond one device array (or asked for as bf16) is refused in one line. */
  @Test
  void aModelBeyondTheResidentPlacementIsRefusedNamingItsSize() {
    MambaConfig c = model(24, 6, 2, 5, 3, 4, true, 0.3f).config;
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> DeviceWeights.place(c, DeviceWeights.Format.FP32, 1000));
    System.out.println(e.getMessage());
    assertTrue(
        e.getMessage().contains(String.format(Locale.ROOT, "%,d parameters", c.parameterCount())));
    assertThrows(
        IllegalArgumentException.class,
        () -> DeviceWeights.place(c, DeviceWeights.Format.BF16, DeviceWeights.ARRAY_FLOATS));
  }
}
