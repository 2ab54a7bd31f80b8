package org.mambaspark.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Locale;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.mambaspark.ops.Parallel;

/**
 * The CPU engine's decode step (L = 1 with the state carried: the fused dt_proj, softplus and scan
 * step shared by the pool's threads) equals the parallel forward over the whole sequence at every
 * position: norm_f's output within 1e-5 of the largest value, for the shapes of {@link
 * BackendsTest#shapes} (odd channel counts, N = 33 and 1, Falcon-Mamba's part norms) and a wide
 * layer whose channels split into several pieces, at one and at three threads.
 */
class CpuDecodeStepTest {
  private final int threadsBefore = Parallel.threads();

  @AfterEach
  void restore() {
    Parallel.setThreads(threadsBefore);
  }

  static Stream<Arguments> shapes() {
    MambaConfig wide =
        MambaConfig.builder()
            .vocabSize(40)
            .hiddenSize(24)
            .intermediateSize(300) // 19 channel blocks of 16: several pieces, a ragged last block
            .stateSize(16)
            .timeStepRank(5)
            .convKernel(4)
            .numLayers(2)
            .build();
    return Stream.concat(BackendsTest.shapes(), Stream.of(Arguments.of("ED=300", wide, 3, 9)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("shapes")
  void stepByStepEqualsTheWholeSequence(String name, MambaConfig config, int B, int L) {
    MambaModel m = BackendsTest.randomModel(config);
    int D = m.config.hiddenSize;
    int[] ids = BackendsTest.ids(B * L, m.config.vocabSize, 4);
    for (int threads : new int[] {1, 3}) {
      Parallel.setThreads(threads);
      try (ModelRunner cpu = Backends.cpu().open(m)) {
        float[] whole = new float[B * L * D];
        cpu.forward(whole, ids, B, L, null);
        MambaState state = new MambaState(m.config, B);
        float[] step = new float[B * D];
        int[] tokens = new int[B];
        double scale = 0;
        for (float v : whole) {
          scale = Math.max(scale, Math.abs(v));
        }
        double worst =
            Parallel.decoding(
                () -> {
                  double w = 0;
                  for (int t = 0; t < L; t++) {
                    for (int b = 0; b < B; b++) {
                      tokens[b] = ids[b * L + t];
                    }
                    cpu.forward(step, tokens, B, 1, state);
                    for (int b = 0; b < B; b++) {
                      for (int d = 0; d < D; d++) {
                        w = Math.max(w, Math.abs(step[b * D + d] - whole[(b * L + t) * D + d]));
                      }
                    }
                  }
                  return w;
                });
        double rel = worst / scale;
        System.out.printf(
            Locale.ROOT,
            "decode step vs whole sequence, %s, %d thread(s): largest error %.3g (%.3g of the"
                + " largest value)%n",
            name,
            threads,
            worst,
            rel);
        assertTrue(rel <= 1e-5, name + ", " + threads + " threads: " + rel);
      }
    }
  }
}
