package org.mambaspark.train;

import java.util.SplittableRandom;

/**
 * Draws training windows from a token stream: step s, sequence i takes tokens[off, off + L) with
 * off drawn from a generator seeded by (seed, s). A step's data is therefore a pure function of
 * (seed, step), which is the "data position" a resumed run needs: no cursor to save, and a retried
 * step sees the same sequences.
 */
public final class TokenSampler {
  private final int[] tokens;
  private final int from;
  private final int to;
  private final long seed;

  /** Windows lie inside tokens[from, to). */
  public TokenSampler(int[] tokens, int from, int to, long seed) {
    this.tokens = tokens;
    this.from = from;
    this.to = to;
    this.seed = seed;
  }

  /** Fills ids (count, L) with the step's sequences first .. first+count-1. */
  public void fill(int[] ids, long step, int first, int count, int L) {
    int span = to - from - L;
    if (span < 0) {
      throw new IllegalArgumentException(
          "the corpus split holds " + (to - from) + " tokens, fewer than one sequence of " + L);
    }
    SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + step);
    for (int i = 0; i < first; i++) {
      r.nextInt(span + 1);
    }
    for (int i = 0; i < count; i++) {
      int off = from + r.nextInt(span + 1);
      System.arraycopy(tokens, off, ids, i * L, L);
    }
  }
}
