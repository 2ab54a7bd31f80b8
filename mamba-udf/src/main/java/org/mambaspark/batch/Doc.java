package org.mambaspark.batch;

/**
 * One row's work for {@link DocumentRunner}: its tokens in, its result or its error out. A row that
 * could not be read arrives with {@link #error} already set and is left alone.
 */
public final class Doc {
  /** The document's token ids; null when the row could not be read. */
  public int[] ids;

  /** Why this row has no result; null while it is fine. */
  public String error;

  /** score: mean next-token cross-entropy over the document (nats). */
  public double loss = Double.NaN;

  /** score with logprobs: (tokens-1) log p(ids[i+1] | ids[0..i]). */
  public float[] logprobs;

  /** embed: (D) the pooled final hidden state (after norm_f). */
  public float[] embedding;

  /** generate: the new token ids (a stop token, when reached, included). */
  public int[] generated;

  public Doc(int[] ids) {
    this.ids = ids;
  }

  public static Doc failed(String error) {
    Doc d = new Doc(null);
    d.error = error;
    return d;
  }

  public boolean ok() {
    return error == null;
  }

  public int tokens() {
    return ids == null ? 0 : ids.length;
  }
}
