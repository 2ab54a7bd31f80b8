package org.mambaspark.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.mambaspark.Fixtures;
import org.mambaspark.io.SafetensorsFile;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaState;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.ModelRunner;
import org.mambaspark.model.NamedTensor;

/**
 * Where the parameters go on the device: the placement of published shapes (host arithmetic only),
 * bf16 rounding, and on the test device the staged placement (matrices in slabs, decoded into W per
 * layer and lm_head in blocks of rows, or read from the slabs by a few rows' GEMV as in a decode
 * step) computing what the resident one computes in fp32, and what the CPU computes on bf16-rounded
 * matrices in bf16, to float rounding.
 */
class DeviceWeightsTest {
  static GpuBackend backend;

  @BeforeAll
  static void device() {
    backend = OpenClTests.openBackend();
  }

  @AfterAll
  static void clear() {
    OpenClTests.closeBackend();
  }

  @Test
  void publishedShapesArePlacedOrRefusedWithTheReason() {
    long cap = DeviceWeights.ARRAY_FLOATS;
    DeviceWeights m130 =
        DeviceWeights.place(MambaConfig.preset("mamba-130m"), DeviceWeights.Format.FP32, cap);
    assertFalse(m130.staged, "mamba-130m fits one array: resident");
    DeviceWeights m28 =
        DeviceWeights.place(MambaConfig.preset("mamba-2.8b"), DeviceWeights.Format.FP32, cap);
    assertTrue(m28.staged);
    long slabs = java.util.Arrays.stream(m28.slabElems).filter(e -> e > 0).count();
    System.out.printf(
        "mamba-2.8b fp32: %,d matrix bytes in %d slabs, %,d device bytes%n",
        m28.matrixBytes(), slabs, m28.deviceBytes());
    assertEquals(6, slabs, "11.1 GB of matrices in arrays of 2 GiB");
    DeviceWeights f7 =
        DeviceWeights.place(MambaConfig.preset("falcon-mamba-7b"), DeviceWeights.Format.BF16, cap);
    System.out.printf(
        "falcon-mamba-7b shape bf16: %,d matrix bytes, %,d device bytes%n",
        f7.matrixBytes(), f7.deviceBytes());
    f7.checkFits(80L << 30, "an 80 GB card");
    IllegalArgumentException fp32 =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                DeviceWeights.place(
                    MambaConfig.preset("falcon-mamba-7b"), DeviceWeights.Format.FP32, cap));
    System.out.println("7b fp32: " + fp32.getMessage());
    assertTrue(fp32.getMessage().contains("--weights-dtype bf16"), fp32.getMessage());
    IllegalArgumentException small =
        assertThrows(IllegalArgumentException.class, () -> f7.checkFits(8L << 30, "an 8 GB card"));
    System.out.println("7b bf16 on 8 GB: " + small.getMessage());
    assertTrue(small.getMessage().contains("8,589,934,592 bytes"), small.getMessage());
  }

  @Test
  void bf16RoundsToTheNearestHalfToEven() {
    SplittableRandom r = new SplittableRandom(5);
    int[] edge = {0x3F808000, 0x3F818000, 0x3F807FFF, 0xBF808000, 0x00008000, 0x7F7F7FFF, 0};
    for (int i = 0; i < 200_000 + edge.length; i++) {
      int bits = i < edge.length ? edge[i] : Float.floatToRawIntBits((float) r.nextGaussian());
      float f = Float.intBitsToFloat(bits);
      int lo = bits & 0xFFFF0000;
      float down = Float.intBitsToFloat(lo);
      float up = Float.intBitsToFloat(lo + 0x10000);
      double dd = Math.abs((double) f - down);
      double du = Math.abs((double) up - f);
      int want = (dd < du || (dd == du && ((lo >>> 16) & 1) == 0)) ? lo >>> 16 : (lo >>> 16) + 1;
      assertEquals(
          want & 0xFFFF,
          SafetensorsFile.floatToBf16(f) & 0xFFFF,
          "bits " + Integer.toHexString(bits));
    }
  }

  static MambaModel randomModel(int V) {
    MambaConfig c =
        MambaConfig.builder()
            .vocabSize(V)
            .hiddenSize(20)
            .intermediateSize(36)
            .stateSize(7)
            .timeStepRank(3)
            .convKernel(3)
            .numLayers(3)
            .useBias(true)
            .tieWordEmbeddings(false)
            .build();
    MambaWeights w = Initialization.initialize(c, 21);
    SplittableRandom r = new SplittableRandom(22);
    for (NamedTensor t : w.parameters()) {
      if (t.name.endsWith(".bias") || t.name.equals(MambaWeights.LM_HEAD)) {
        for (int i = 0; i < t.data.length; i++) {
          t.data[i] = (float) (0.2 * r.nextGaussian());
        }
      }
    }
    return new MambaModel(w);
  }

  static int[] ids(int n, int V) {
    SplittableRandom r = new SplittableRandom(n);
    int[] a = new int[n];
    for (int i = 0; i < n; i++) {
      a[i] = r.nextInt(V);
    }
    return a;
  }

  /**
   * For L = 37 and 70: hidden states, the loss of fresh sequences, and two state-carrying calls'
   * last logits. With one row a call, 37 positions are few enough rows to read the matrices from
   * their slabs (as a decode step does), 70 are staged into W.
   */
  static float[][] outputs(ModelRunner m) {
    float[][] a = outputs(m, 2, 37);
    float[][] b = outputs(m, 2, 70);
    float[][] r = new float[a.length + b.length][];
    System.arraycopy(a, 0, r, 0, a.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }

  static float[][] outputs(ModelRunner m, int B, int L) {
    MambaConfig c = m.model().config;
    int V = c.vocabSize;
    int[] ids = ids(B * L, V);
    float[] hidden = new float[B * L * c.hiddenSize];
    m.forward(hidden, ids, B, L, null);
    float[] logprobs = new float[B * (L - 1)];
    float loss = (float) m.nextTokenLossSum(logprobs, ids, B, L);
    MambaState s = new MambaState(c, B);
    float[] first = new float[B * V];
    m.forwardLastLogits(first, ids, B, L, s);
    float[] step = new float[B * V];
    m.forwardLastLogits(step, ids(B, V), B, 1, s);
    return new float[][] {hidden, logprobs, {loss}, first, step};
  }

  static double worst(float[][] got, float[][] want) {
    double w = 0;
    StringBuilder each = new StringBuilder();
    for (int i = 0; i < want.length; i++) {
      double e = Fixtures.relErr(got[i], want[i]);
      each.append(String.format(java.util.Locale.ROOT, " %.2g", e));
      w = Math.max(w, e);
    }
    System.out.println("  rel err of each output:" + each);
    return w;
  }

  @Test
  void stagedFp32ComputesWhatResidentDoes() {
    OpenClTests.assumeOpenCl();
    MambaModel m = randomModel(61);
    DeviceWeights resident =
        DeviceWeights.place(m.config, DeviceWeights.Format.FP32, DeviceWeights.ARRAY_FLOATS);
    // W one float too small for everything: the staged placement, and one row a call
    long cap = resident.wTotal - 1;
    float[][] want;
    float[][] got;
    try (GpuModel g = new GpuModel(backend, m, DeviceWeights.Format.FP32, Long.MAX_VALUE)) {
      want = outputs(g);
    }
    try (GpuModel g = new GpuModel(backend, m, DeviceWeights.Format.FP32, cap)) {
      assertThrows(
          UnsupportedOperationException.class,
          () -> g.forwardBackward(MambaWeights.zerosLike(m.weights), ids(74, 61), 2, 37, 1.0));
      got = outputs(g);
    }
    double w = worst(got, want);
    System.out.printf("staged fp32 vs resident: largest rel err %.3g%n", w);
    // the same values; the staged runner's one-row calls run some products as GEMV instead of the
    // tiled GEMM, which sums in another order
    assertTrue(w < 1e-6, "largest rel err " + w);
  }

  @Test
  void bf16MatricesComputeWhatTheCpuDoesOnRoundedMatrices() {
    OpenClTests.assumeOpenCl();
    int V = 301;
    MambaModel m = randomModel(V);
    MambaWeights rounded = MambaWeights.zerosLike(m.weights);
    for (int i = 0; i < m.weights.parameters().size(); i++) {
      NamedTensor src = m.weights.parameters().get(i);
      NamedTensor dst = rounded.parameters().get(i);
      boolean matrix =
          src.name.endsWith("in_proj.weight")
              || src.name.endsWith("x_proj.weight")
              || src.name.endsWith("dt_proj.weight")
              || src.name.endsWith("out_proj.weight")
              || src.name.equals(MambaWeights.EMBEDDINGS)
              || src.name.equals(MambaWeights.LM_HEAD);
      for (int j = 0; j < src.data.length; j++) {
        float f = src.data[j];
        dst.data[j] = matrix ? SafetensorsFile.bf16ToFloat(SafetensorsFile.floatToBf16(f)) : f;
      }
    }
    MambaModel cpuModel = new MambaModel(rounded);
    float[][] want;
    try (ModelRunner cpu = org.mambaspark.model.Backends.cpu().open(cpuModel)) {
      want = outputs(cpu);
    }
    // arrays small enough that the matrices spread over several slabs and lm_head (301 × 20)
    // is staged in blocks of rows
    DeviceWeights one =
        DeviceWeights.place(m.config, DeviceWeights.Format.BF16, DeviceWeights.ARRAY_FLOATS);
    long cap = one.wTotal - one.stageFloats + one.layerFloats + 16;
    DeviceWeights small = DeviceWeights.place(m.config, DeviceWeights.Format.BF16, cap);
    long slabs = java.util.Arrays.stream(small.slabElems).filter(e -> e > 0).count();
    int blocks = (V * 20 + small.stageFloats - 1) / small.stageFloats;
    System.out.printf("bf16 placement: %d slabs, lm_head in %d blocks%n", slabs, blocks);
    assertTrue(slabs >= 3 && blocks >= 2, slabs + " slabs, " + blocks + " blocks");
    float[][] got;
    try (GpuModel g = new GpuModel(backend, m, DeviceWeights.Format.BF16, cap)) {
      got = outputs(g);
    }
    double w = worst(got, want);
    System.out.printf("bf16 on the device vs the CPU on bf16-rounded matrices: %.3g%n", w);
    assertTrue(w < 1e-5, "largest rel err " + w);
  }
}
