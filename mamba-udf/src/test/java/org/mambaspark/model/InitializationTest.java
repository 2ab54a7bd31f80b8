package org.mambaspark.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The initial weights drawn range by range ({@link Initialization.Ranges}, what an executor does
 * for its slice) are bit for bit the whole model's, for every architecture, tied and untied heads,
 * whatever the cuts; and the counter stream is SplittableRandom's, so the model's initial values
 * are those the sequential generator always gave.
 */
class InitializationTest {
  static List<MambaConfig> configs() {
    MambaConfig mamba1 =
        MambaConfig.builder().vocabSize(51).hiddenSize(12).numLayers(3).stateSize(5).build();
    MambaConfig untied =
        mamba1.toBuilder().tieWordEmbeddings(false).useConvBias(false).useBias(true).build();
    MambaConfig mamba2 =
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
            .tieWordEmbeddings(false)
            .build();
    return List.of(mamba1, untied, mamba2);
  }

  @Test
  void theCounterIsSplittableRandomsStream() {
    for (long seed : new long[] {0, 7, -3, Long.MAX_VALUE}) {
      SplittableRandom r = new SplittableRandom(seed);
      InitDraws d = new InitDraws(seed, 0);
      for (int k = 0; k < 1000; k++) {
        double want = r.nextDouble();
        assertEquals(want, d.at(k), "seed " + seed + " draw " + k);
        assertEquals(want, d.nextDouble());
      }
    }
  }

  @Test
  void rangesGiveTheWholeModelsFloatsWhateverTheCuts() {
    for (MambaConfig c : configs()) {
      MambaWeights whole = Initialization.initialize(c, 11);
      List<NamedTensor> ps = whole.parameters();
      SplittableRandom cuts = new SplittableRandom(c.hashCode());
      int compared = 0;
      for (int round = 0; round < 3; round++) {
        Initialization.Ranges r = new Initialization.Ranges(c, 11);
        for (int t = ps.size() - 1; t >= 0; t--) { // backwards: blocks rebuilt out of order
          float[] want = ps.get(t).data;
          int from = 0;
          while (from < want.length) {
            int n = Math.min(want.length - from, 1 + cuts.nextInt(1 + want.length / 2));
            float[] got = new float[n + 2];
            r.fill(t, from, got, 1, n);
            for (int i = 0; i < n; i++) {
              assertEquals(
                  Float.floatToIntBits(want[from + i]),
                  Float.floatToIntBits(got[1 + i]),
                  c + " " + ps.get(t).name + "[" + (from + i) + "]");
              compared++;
            }
            from += n;
          }
        }
      }
      System.out.printf(
          "%s: %d initial values drawn range by range, all bit-equal to the whole model's%n",
          c, compared);
    }
  }
}
