package org.mambaspark.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.mambaspark.Fixtures;
import org.mambaspark.io.Checkpoint;

/**
 * A 1,000,000-token sequence scores through the small fixture model in a JVM of its own with
 * -Xmx256m (surefire's "small-heap" execution): memory must not grow with length. Tokens come from
 * a seeded generator, never held whole.
 */
@Tag("small-heap")
class MillionTokenStreamingTest {
  @Test
  void millionTokensInBoundedHeap() {
    long maxHeap = Runtime.getRuntime().maxMemory();
    System.out.printf("max heap %.0f MiB%n", maxHeap / 1048576.0);
    assertTrue(
        maxHeap <= 600L << 20,
        "this test must run under a small heap (surefire small-heap execution)");
    MambaModel m = new MambaModel(Checkpoint.load(Fixtures.dir("small").resolve("model")));
    StreamingScorer s = new StreamingScorer(m, 4096);
    SplittableRandom rnd = new SplittableRandom(42);
    int total = 1_000_000, slice = 10_000;
    int[] buf = new int[slice];
    MemoryMXBean mem = ManagementFactory.getMemoryMXBean();
    long usedAt100k = 0, usedAtEnd;
    long t0 = System.nanoTime();
    for (int fed = 0; fed < total; fed += slice) {
      for (int i = 0; i < slice; i++) {
        buf[i] = rnd.nextInt(m.config.vocabSize);
      }
      s.accept(buf, 0, slice);
      if (fed + slice == 100_000) {
        System.gc();
        usedAt100k = mem.getHeapMemoryUsage().getUsed();
      }
    }
    System.gc();
    usedAtEnd = mem.getHeapMemoryUsage().getUsed();
    double secs = (System.nanoTime() - t0) / 1e9;
    System.out.printf(
        "1M tokens: loss %.5f, %.1f s (%.0f tokens/s); heap used after GC at 100k %.1f MiB, at 1M"
            + " %.1f MiB%n",
        s.meanLoss(), secs, total / secs, usedAt100k / 1048576.0, usedAtEnd / 1048576.0);
    assertEquals(total, s.tokensSeen());
    assertEquals(total - 1, s.tokensPredicted());
    assertTrue(Double.isFinite(s.meanLoss()));
    // uniform random tokens: the loss is near log(V) for an untrained-ish model, and certainly
    // finite and positive
    assertTrue(s.meanLoss() > 0);
    assertTrue(usedAtEnd < usedAt100k + (8L << 20), "heap grew with length");
  }
}
