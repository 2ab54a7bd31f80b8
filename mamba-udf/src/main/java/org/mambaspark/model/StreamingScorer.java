package org.mambaspark.model;

import java.util.Arrays;

/**
 * Runs one sequence of any length in pieces, carrying the recurrent state (h and the last K-1 conv
 * inputs) and the last hidden row from piece to piece, so the result equals one pass while memory
 * stays bounded by the piece length. Feed tokens with {@link #accept} in any slicing; {@link
 * #meanLoss} is the mean next-token cross-entropy of everything fed so far. The forward runs on a
 * {@link ModelRunner} (the CPU, or a GPU); the cross-entropy of each piece on the CPU from its
 * final hidden states, which a {@link Pieces} listener also sees (pooling an embedding).
 */
public final class StreamingScorer {
  /** Told of each piece's final hidden states (after norm_f). */
  public interface Pieces {
    /**
     * @param hidden (rows, D) the piece's final hidden states, valid during the call only
     * @param rows the piece's length
     */
    void piece(float[] hidden, int rows);
  }

  private final ModelRunner runner;
  private final MambaModel model;
  private final int pieceLength;
  private final Workspace ws; // logits scratch for the cross-entropy
  private final MambaState state;
  private final float[] hidden; // (pieceLength, D) the current piece's final hidden states
  private final float[] lastHidden; // (D) final hidden of the last token seen
  private final int[] oneTarget = new int[1];
  private final int[] pieceIds;
  private final float[] logprobs; // (n-1) log p(token t+1 | tokens 0..t), or null
  private final Pieces pieces; // or null
  private final boolean loss; // false: hidden states only (pooling), no cross-entropy
  private boolean started;
  private double lossSum;
  private long predicted;
  private long seen;

  /** Scores on the CPU. */
  public StreamingScorer(MambaModel model, int pieceLength) {
    this(Backends.cpu().open(model), pieceLength, true, null, null);
  }

  /**
   * Runs on {@code runner}; with {@code loss}, scores, writing each predicted token's
   * log-probability into {@code logprobs} (at the position of the token that predicts it; null for
   * none); shows each piece's hidden states to {@code pieces} (null for none).
   */
  public StreamingScorer(
      ModelRunner runner, int pieceLength, boolean loss, float[] logprobs, Pieces pieces) {
    if (pieceLength <= 0) {
      throw new IllegalArgumentException("piece length must be positive, got " + pieceLength);
    }
    this.runner = runner;
    this.model = runner.model();
    this.pieceLength = pieceLength;
    this.ws = new Workspace(model.config);
    this.state = new MambaState(model.config, 1);
    this.hidden = new float[pieceLength * model.config.hiddenSize];
    this.lastHidden = new float[model.config.hiddenSize];
    this.pieceIds = new int[pieceLength];
    this.logprobs = logprobs;
    this.pieces = pieces;
    this.loss = loss;
  }

  /** Feeds ids[off, off+len), cut into pieces of at most the piece length. */
  public void accept(int[] ids, int off, int len) {
    for (int p = 0; p < len; p += pieceLength) {
      int n = Math.min(pieceLength, len - p);
      System.arraycopy(ids, off + p, pieceIds, 0, n);
      piece(n);
    }
  }

  private void piece(int n) {
    int D = model.config.hiddenSize;
    runner.forward(hidden, n == pieceLength ? pieceIds : Arrays.copyOf(pieceIds, n), 1, n, state);
    if (loss && started) { // the previous piece's last position predicts this piece's first token
      oneTarget[0] = pieceIds[0];
      lossSum +=
          Scoring.crossEntropySum(
              model, ws, lastHidden, 0, oneTarget, 0, 1, logprobs, (int) seen - 1);
      predicted++;
    }
    if (loss && n > 1) {
      lossSum +=
          Scoring.crossEntropySum(model, ws, hidden, 0, pieceIds, 1, n - 1, logprobs, (int) seen);
      predicted += n - 1;
    }
    if (pieces != null) {
      pieces.piece(hidden, n);
    }
    System.arraycopy(hidden, (n - 1) * D, lastHidden, 0, D);
    started = true;
    seen += n;
  }

  /** (D) the final hidden state of the last token fed. */
  public float[] lastHidden() {
    return lastHidden;
  }

  /** Sum of the next-token cross-entropies so far. */
  public double lossSum() {
    return lossSum;
  }

  /** Mean next-token cross-entropy so far (NaN before two tokens). */
  public double meanLoss() {
    return predicted == 0 ? Double.NaN : lossSum / predicted;
  }

  public long tokensSeen() {
    return seen;
  }

  public long tokensPredicted() {
    return predicted;
  }
}
