package org.mambaspark.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Executor;
import org.junit.jupiter.api.Test;

/**
 * The reserve of fresh arrays for the optimizer's next shards: it hands out zeros of the asked
 * length that it allocated and never handed out before, allocates on the caller's thread when it
 * has none ready of that length, and holds no more than the last step's updates asked for.
 */
class SpareArraysTest {
  private static final long PLENTY = Long.MAX_VALUE / 4;

  /** Runs the allocations when told to, as a busy background thread would. */
  static final class Queued implements Executor {
    final List<Runnable> queue = new ArrayList<>();

    @Override
    public void execute(Runnable r) {
      queue.add(r);
    }

    void runAll() {
      for (Runnable r : queue) {
        r.run();
      }
      queue.clear();
    }
  }

  private static void assertFresh(float[][] a, int count, int length) {
    assertEquals(count, a.length);
    for (float[] x : a) {
      assertArrayEquals(new float[length], x);
    }
  }

  @Test
  void preparedArraysAreTakenOnceAndAreZeros() {
    Queued bg = new Queued();
    SpareArrays spares = new SpareArrays(bg, () -> PLENTY);
    spares.prepare("step 1", 3, 1000);
    assertEquals(1, bg.queue.size(), "allocated in the background");
    bg.runAll();
    assertEquals(1, spares.held());
    float[][] a = spares.take("step 2", 3, 1000);
    assertFresh(a, 3, 1000);
    assertEquals(0, spares.held(), "handed out once");
    float[][] b = spares.take("step 2", 3, 1000); // none left: allocated here
    assertFresh(b, 3, 1000);
    for (float[] x : a) {
      for (float[] y : b) {
        assertNotSame(x, y);
      }
    }
  }

  @Test
  void aLengthNotPreparedIsAllocatedAndThePreparedSetStays() {
    Queued bg = new Queued();
    SpareArrays spares = new SpareArrays(bg, () -> PLENTY);
    spares.prepare("step 1", 3, 1000);
    bg.runAll();
    assertFresh(spares.take("step 2", 3, 999), 3, 999);
    assertFresh(spares.take("step 2", 2, 1000), 2, 1000);
    assertEquals(1, spares.held());
    assertFresh(spares.take("step 2", 3, 1000), 3, 1000);
    assertEquals(0, spares.held());
  }

  @Test
  void aSetNotStartedIsCancelledAndAllocatedByTheCaller() {
    Queued bg = new Queued();
    SpareArrays spares = new SpareArrays(bg, () -> PLENTY);
    spares.prepare("step 1", 3, 500);
    float[][] a = spares.take("step 2", 3, 500); // the background has not run it
    assertFresh(a, 3, 500);
    assertEquals(0, spares.held());
    bg.runAll(); // cancelled: allocates nothing, hands out nothing
    assertEquals(0, spares.held());
  }

  @Test
  void aStepsUpdatesTakeTheSetsPreparedBeforeIt() {
    Queued bg = new Queued();
    SpareArrays spares = new SpareArrays(bg, () -> PLENTY);
    // two slices of one length: the first update's set is for the next step, not for the second
    spares.take("step 1", 3, 100);
    spares.prepare("step 1", 3, 100);
    bg.runAll();
    spares.take("step 1", 3, 100);
    assertEquals(1, spares.held(), "left for step 2");
    spares.prepare("step 1", 3, 100);
    bg.runAll();
    assertEquals(2, spares.held());
    spares.take("step 2", 3, 100);
    spares.prepare("step 2", 3, 100);
    bg.runAll();
    spares.take("step 2", 3, 100);
    assertEquals(1, spares.held(), "step 1's second set taken, step 2's first left");
    spares.prepare("step 2", 3, 100);
    assertEquals(2, spares.held());
  }

  @Test
  void neverTheSameArrayTwice() {
    Queued bg = new Queued();
    SpareArrays spares = new SpareArrays(bg, () -> PLENTY);
    Set<float[]> seen = Collections.newSetFromMap(new IdentityHashMap<>());
    for (int step = 0; step < 20; step++) {
      for (int slice = 0; slice < 2; slice++) {
        int length = 100 + slice; // two slices of different lengths
        float[][] a = spares.take("step " + step, 3, length);
        assertFresh(a, 3, length);
        for (float[] x : a) {
          assertTrue(
              seen.add(x), "step " + step + " slice " + slice + ": an array handed out again");
          x[0] = step + 1; // as an update writes them
        }
        spares.prepare("step " + step, 3, length);
        if (step % 3 != 1) { // now and then the background is late
          bg.runAll();
        }
      }
    }
  }

  @Test
  void holdsAtMostTheLastStepsUpdates() {
    Queued bg = new Queued();
    SpareArrays spares = new SpareArrays(bg, () -> PLENTY);
    for (int slice = 0; slice < 3; slice++) {
      spares.prepare("step 1", 3, 10 + slice);
    }
    bg.runAll();
    assertEquals(3, spares.held());
    // this JVM updates one slice in the next steps (the others moved away): the first of them may
    // still hold the last step's three, the one after only its own
    spares.prepare("step 2", 3, 10);
    bg.runAll();
    assertEquals(3, spares.held());
    spares.prepare("step 3", 3, 10);
    bg.runAll();
    assertEquals(1, spares.held());
    // the newest is kept: the oldest were dropped
    assertFresh(spares.take("step 4", 3, 10), 3, 10);
    assertEquals(0, spares.held());
    spares.clear();
    assertEquals(0, spares.held());
  }

  @Test
  void preparesNothingWithoutTwiceTheirSizeFree() {
    Queued bg = new Queued();
    long[] free = {2 * 4L * 3 * 1000 - 1};
    SpareArrays spares = new SpareArrays(bg, () -> free[0]);
    spares.prepare("step 1", 3, 1000);
    assertEquals(0, bg.queue.size());
    assertEquals(0, spares.held());
    free[0]++;
    spares.prepare("step 2", 3, 1000);
    assertEquals(1, bg.queue.size());
    assertEquals(1, spares.held());
  }

  @Test
  void theJvmsReserveAllocatesInTheBackground() {
    SpareArrays spares = SpareArrays.jvm();
    spares.clear();
    try {
      spares.prepare("step 1", 3, 4096);
      float[][] a = spares.take("step 2", 3, 4096); // ready, being allocated, or not started
      assertFresh(a, 3, 4096);
      assertEquals(0, spares.held());
    } finally {
      spares.clear();
    }
  }
}
