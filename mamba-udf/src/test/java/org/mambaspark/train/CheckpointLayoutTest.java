package org.mambaspark.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.NamedTensor;

/**
 * The files of a checkpoint written from the shards: consecutive whole tensors, every parameter
 * once, each file within the size unless one tensor alone exceeds it; one file keeps the
 * single-file names, several get Hugging Face's shard names.
 */
class CheckpointLayoutTest {
  @Test
  void filesHoldConsecutiveWholeTensorsWithinTheSize() {
    MambaConfig c =
        MambaConfig.builder()
            .vocabSize(300)
            .hiddenSize(16)
            .numLayers(3)
            .tieWordEmbeddings(false)
            .build();
    List<NamedTensor> ps = MambaWeights.shapes(c);
    long total = 0, largest = 0;
    for (NamedTensor p : ps) {
      total += p.numel();
      largest = Math.max(largest, 4 * p.numel());
    }
    assertEquals(1, new CheckpointLayout(ps, 4 * total).files());
    assertEquals("model.safetensors", new CheckpointLayout(ps, 4 * total).modelFile(0));
    for (long max : new long[] {1024, 4096, largest, 4 * total / 3}) {
      CheckpointLayout l = new CheckpointLayout(ps, max);
      long at = 0;
      int k = 0;
      for (; k < l.files(); k++) {
        assertEquals(at, l.flatStart(k), "file " + k + " starts where the previous ended");
        long bytes = 4 * (l.flatEnd(k) - l.flatStart(k));
        boolean oneTensor = l.modelWriter(k).names().size() == 1;
        assertTrue(bytes <= max || oneTensor, "file " + k + ": " + bytes + " bytes, max " + max);
        at = l.flatEnd(k);
      }
      assertEquals(total, at, "every parameter once");
      assertEquals(
          String.format("model-%05d-of-%05d.safetensors", l.files(), l.files()),
          l.modelFile(l.files() - 1));
      System.out.printf(
          "at most %d bytes a file: %d files for %d bytes of weights (largest tensor %d bytes)%n",
          max, l.files(), 4 * total, largest);
      assertTrue(l.files() > 1);
    }
  }
}
