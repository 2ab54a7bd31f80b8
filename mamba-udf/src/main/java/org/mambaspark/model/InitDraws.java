package org.mambaspark.model;

/**
 * The uniform doubles of {@code new java.util.SplittableRandom(seed)} as a counter: draw k is
 * {@code mix64(seed + (k + 1)·γ)}, computed directly, so the initial values of any range of any
 * tensor can be drawn without drawing what comes before them (an executor initialises its own slice
 * of a model it never holds whole). Sequential use ({@link #nextDouble}) gives SplittableRandom's
 * stream exactly, so the values do not depend on how the parameters are cut.
 */
final class InitDraws {
  private static final long GAMMA = 0x9e3779b97f4a7c15L; // SplittableRandom's golden gamma

  private final long seed;
  private long next; // the index of the next sequential draw

  InitDraws(long seed, long position) {
    this.seed = seed;
    this.next = position;
  }

  /** Draw k (0-based) of the stream, in [0, 1). */
  double at(long k) {
    long z = seed + (k + 1) * GAMMA;
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    z = z ^ (z >>> 31);
    return (z >>> 11) * 0x1.0p-53;
  }

  double nextDouble() {
    return at(next++);
  }

  /** The index of the next sequential draw: the draws taken so far from position 0. */
  long position() {
    return next;
  }

  /** Moves past n draws (what a tensor drawn elsewhere consumed). */
  void skip(long n) {
    next += n;
  }
}
