package org.mambaspark.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.mambaspark.io.Checkpoint;
import org.mambaspark.ops.WeightMatrix;
import org.mambaspark.ops.WeightMatrix.Dtype;

/**
 * Models whose big matrices are bf16 or int8, for every architecture: the forward equals the fp32
 * forward of the same weights decoded to fp32 (the only difference the format may make is the
 * weights' own rounding), to a relative 1e-5 over the logits, in scoring (GEMM), in decoding (dot
 * products, B = 1 and 3, state carried) and after loading a checkpoint one matrix at a time. The
 * difference to the undecoded fp32 model is printed (it is the format's accuracy, not a bug).
 */
class WeightsDtypeTest {
  static Stream<Arguments> shapes() {
    MambaConfig.Builder m1 =
        MambaConfig.builder()
            .vocabSize(61)
            .hiddenSize(40)
            .intermediateSize(72)
            .stateSize(5)
            .timeStepRank(3)
            .convKernel(3)
            .numLayers(2)
            .useBias(true)
            .tieWordEmbeddings(false);
    return Stream.of(
        Arguments.of("mamba untied+bias", m1.build()),
        Arguments.of(
            "falcon-mamba tied",
            m1.architecture(Architecture.FALCON_MAMBA).tieWordEmbeddings(true).build()),
        Arguments.of(
            "mamba2",
            MambaConfig.builder()
                .architecture(Architecture.MAMBA2)
                .vocabSize(53)
                .hiddenSize(36)
                .expand(2)
                .headDim(6)
                .nGroups(2)
                .stateSize(7)
                .convKernel(4)
                .chunkSize(8)
                .numLayers(2)
                .tieWordEmbeddings(false)
                .build()));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("shapes")
  void eachFormatIsTheFp32ForwardOfItsDecodedWeights(String name, MambaConfig c) {
    MambaWeights w = Initialization.initialize(c, 5);
    for (Dtype d : new Dtype[] {Dtype.BF16, Dtype.INT8}) {
      MambaModel q = new MambaModel(w, d);
      MambaModel decoded = new MambaModel(decodedCopy(w, d));
      MambaModel exact = new MambaModel(w);
      assertTrue(q.holdsFp32Matrices());
      int L = 70, B = 2; // L·B rows: the GEMM path
      int[] ids = new SplittableRandom(3).ints((long) B * L, 0, c.vocabSize).toArray();
      float[] lq = logits(q, ids, B, L), ld = logits(decoded, ids, B, L);
      double e = relErr(lq, ld), drift = relErr(lq, logits(exact, ids, B, L));
      System.out.printf(
          "%s %s: scoring vs decoded fp32 %.3g, vs fp32 %.3g%n", name, d.label(), e, drift);
      assertTrue(e < 1e-5, name + " " + d + " scoring: " + e);
      // decoding: a prefill, then single steps with B = 1 and B = 3 rows (dot products)
      for (int rows : new int[] {1, 3}) {
        double worst = 0;
        MambaState sq = new MambaState(c, rows), sd = new MambaState(c, rows);
        ModelRunner rq = Backends.cpu().open(q), rd = Backends.cpu().open(decoded);
        int[] prompt = new SplittableRandom(rows).ints(rows * 5L, 0, c.vocabSize).toArray();
        float[] a = new float[rows * c.vocabSize], b = new float[a.length];
        rq.forwardLastLogits(a, prompt, rows, 5, sq);
        rd.forwardLastLogits(b, prompt, rows, 5, sd);
        for (int step = 0; step < 6; step++) {
          worst = Math.max(worst, relErr(a, b));
          int[] next = new int[rows];
          for (int r = 0; r < rows; r++) {
            next[r] = (step * 7 + r * 3) % c.vocabSize;
          }
          rq.forwardLastLogits(a, next, rows, 1, sq);
          rd.forwardLastLogits(b, next, rows, 1, sd);
        }
        System.out.printf("%s %s: decode B=%d vs decoded fp32 %.3g%n", name, d, rows, worst);
        assertTrue(worst < 1e-5, name + " " + d + " decode B=" + rows + ": " + worst);
      }
    }
  }

  @Test
  void aCheckpointLoadsIntoAnInt8ModelWithoutItsFp32Matrices(@TempDir Path dir) {
    MambaConfig c = shapes().findFirst().map(a -> (MambaConfig) a.get()[1]).orElseThrow();
    MambaWeights w = Initialization.initialize(c, 9);
    Checkpoint.save(w, dir);
    MambaModel loaded = Checkpoint.loadModel(dir, Dtype.INT8);
    MambaModel inMemory = new MambaModel(w, Dtype.INT8);
    assertFalse(loaded.holdsFp32Matrices());
    assertEquals(0, loaded.weights.layers[0].inProj.length, "in_proj is held as int8 only");
    assertEquals(w.layers[1].dtProj[4], loaded.weights.layers[1].dtProj[4], "dt_proj stays fp32");
    int[] ids = new SplittableRandom(1).ints(40, 0, c.vocabSize).toArray();
    // the same int8 weights (up to the order of lane sums, which the JIT may change between calls)
    double drift = relErr(logits(loaded, ids, 1, 40), logits(inMemory, ids, 1, 40));
    assertTrue(drift < 1e-6, "loaded vs converted in memory: " + drift);
    long fp32 = new MambaModel(w).matrixBytes();
    System.out.printf("matrices: fp32 %d bytes, int8 %d bytes%n", fp32, loaded.matrixBytes());
    assertTrue(loaded.matrixBytes() < fp32 * 0.3);
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> new Backprop(loaded, 1, 8));
    assertTrue(e.getMessage().contains("fp32"), e.getMessage());
  }

  /** A copy of w whose matrices are their {@code d} values decoded to fp32. */
  static MambaWeights decodedCopy(MambaWeights w, Dtype d) {
    MambaWeights out = MambaWeights.zerosLike(w);
    for (NamedTensor p : w.parameters()) {
      float[] dst = out.parameter(p.name).data;
      if (MambaWeights.isMatrix(p.name)) {
        int rows = (int) p.shape[0], cols = p.data.length / rows;
        WeightMatrix m = WeightMatrix.of(p.data, rows, cols, d);
        for (int o = 0; o < rows; o++) {
          m.decode(o, 0, cols, dst, o * cols);
        }
      } else {
        System.arraycopy(p.data, 0, dst, 0, p.data.length);
      }
    }
    return out;
  }

  static float[] logits(MambaModel m, int[] ids, int B, int L) {
    Workspace ws = new Workspace(m.config);
    m.forward(ws, ids, B, L, null, null);
    float[] out = new float[B * L * m.config.vocabSize];
    m.lmHeadForward(out, ws.hidden, 0, B * L);
    return out;
  }

  static double relErr(float[] a, float[] b) {
    double num = 0, den = 0;
    for (int i = 0; i < a.length; i++) {
      num += (a[i] - b[i]) * (double) (a[i] - b[i]);
      den += b[i] * (double) b[i];
    }
    return Math.sqrt(num / den);
  }
}
