package org.mambaspark.model;

/**
 * The one check that a token id is inside the vocabulary [0, V), and its one wording: an id outside
 * it would index past the embedding (or the logits, as a target), so every path that takes ids from
 * outside checks them here first.
 */
public final class TokenIds {
  private TokenIds() {}

  /**
   * Why {@code id} at {@code position} cannot be used with a vocabulary of {@code V} tokens, or
   * null when it can.
   */
  public static String outside(long id, long position, int V) {
    return id >= 0 && id < V
        ? null
        : "token id "
            + id
            + " at position "
            + position
            + " is outside the vocabulary [0, "
            + V
            + ")";
  }

  /**
   * Checks ids[off, off+n); positions in the message count from {@code off}.
   *
   * @throws IllegalArgumentException naming the first id outside the vocabulary
   */
  public static void check(int[] ids, int off, int n, int V) {
    for (int i = 0; i < n; i++) {
      String why = outside(ids[off + i], i, V);
      if (why != null) {
        throw new IllegalArgumentException(why);
      }
    }
  }
}
