package org.mambaspark.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The pool with its caller working: every index run exactly once, in pieces of the promised
 * boundaries, nested calls, and a failure in any piece rethrown to the caller, with and without
 * workers lingering between calls.
 */
class ParallelTest {
  private final int before = Parallel.threads();
  private final long lingerBefore = Parallel.lingerSetting();

  @AfterEach
  void restore() {
    Parallel.setThreads(before);
    Parallel.setLingerNanos(lingerBefore);
  }

  /** The same with workers lingering for the next call (-Dmamba.lingerMicros). */
  @Test
  void allOfTheAboveWithLingeringWorkers() {
    Parallel.setLingerNanos(500_000);
    everyIndexRunsOnceWhateverTheThreadsAndGrain();
    nestedCallsFinish();
    aFailingPieceIsRethrownToTheCaller();
  }

  /** Unset, workers linger only while one decode loop runs; set, the setting holds everywhere. */
  @Test
  void workersLingerDuringALoneDecodeLoopUnlessSetOtherwise() {
    Parallel.setLingerNanos(-1);
    long decode = Parallel.DECODE_LINGER_MICROS * 1000;
    assertEquals(0, Parallel.lingerNanos(), "no loop");
    Parallel.decoding(
        () -> {
          assertEquals(decode, Parallel.lingerNanos(), "one loop");
          Parallel.decoding(
              () -> {
                assertEquals(0, Parallel.lingerNanos(), "two loops share the cores");
                return null;
              });
          assertEquals(decode, Parallel.lingerNanos(), "one loop again");
          everyIndexRunsOnceWhateverTheThreadsAndGrain();
          nestedCallsFinish();
          aFailingPieceIsRethrownToTheCaller();
          return null;
        });
    assertThrows(
        IllegalStateException.class,
        () ->
            Parallel.decoding(
                () -> {
                  throw new IllegalStateException("a loop that fails");
                }));
    assertEquals(0, Parallel.lingerNanos(), "loops that ended, by returning or throwing");
    Parallel.setLingerNanos(0);
    Parallel.decoding(
        () -> {
          assertEquals(0, Parallel.lingerNanos(), "mamba.lingerMicros=0 switches it off");
          return null;
        });
    Parallel.setLingerNanos(300_000);
    assertEquals(300_000, Parallel.lingerNanos(), "set: everywhere");
  }

  @Test
  void everyIndexRunsOnceWhateverTheThreadsAndGrain() {
    for (int t : new int[] {1, 2, 3, 5}) {
      Parallel.setThreads(t);
      int threads = t;
      for (int n : new int[] {1, 2, 7, 64, 1000}) {
        for (int grain : new int[] {1, 3, 16, 2000}) {
          AtomicIntegerArray seen = new AtomicIntegerArray(n);
          Parallel.forRange(
              n,
              grain,
              (a, b) -> {
                assertEquals(0, a % Math.max(1, grain), "a piece starts on a grain boundary");
                for (int i = a; i < b; i++) {
                  seen.incrementAndGet(i);
                }
              });
          AtomicIntegerArray chunks = new AtomicIntegerArray(n);
          Parallel.forChunks(
              n,
              grain,
              (a, b) -> {
                // one thread runs [0, n) inline; otherwise a chunk is one grain
                assertEquals(threads == 1 ? n : Math.min(n, a + grain), b, "chunk at " + a);
                for (int i = a; i < b; i++) {
                  chunks.incrementAndGet(i);
                }
              });
          for (int i = 0; i < n; i++) {
            assertEquals(1, seen.get(i), "forRange t=" + t + " n=" + n + " grain=" + grain);
            assertEquals(1, chunks.get(i), "forChunks t=" + t + " n=" + n + " grain=" + grain);
          }
        }
      }
    }
  }

  @Test
  void nestedCallsFinish() {
    Parallel.setThreads(2);
    int n = 40;
    AtomicIntegerArray seen = new AtomicIntegerArray(n * n);
    Parallel.forChunks(
        n,
        1,
        (a, b) -> {
          for (int i = a; i < b; i++) {
            int row = i;
            Parallel.forRange(
                n,
                1,
                (c, d) -> {
                  for (int j = c; j < d; j++) {
                    seen.incrementAndGet(row * n + j);
                  }
                });
          }
        });
    for (int i = 0; i < n * n; i++) {
      assertEquals(1, seen.get(i));
    }
  }

  @Test
  void aFailingPieceIsRethrownToTheCaller() {
    Parallel.setThreads(3);
    IllegalStateException boom = new IllegalStateException("piece 5");
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () ->
                Parallel.forChunks(
                    10,
                    1,
                    (a, b) -> {
                      if (a == 5) {
                        throw boom;
                      }
                    }));
    assertSame(boom, e);
  }
}
