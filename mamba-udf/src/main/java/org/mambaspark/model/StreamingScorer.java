package org.mambaspark.model;

/**
 * Scores one sequence of any length in pieces, carrying the recurrent state (h and the last K-1
 * conv inputs) and the last hidden row from piece to piece, so the result equals one pass while
 * memory stays bounded by the piece length. Feed tokens with {@link #accept} in any slicing; {@link
 * #meanLoss} is the mean next-token cross-entropy of everything fed so far.
 */
public final class StreamingScorer {
  private final MambaModel model;
  private final int pieceLength;
  private final Workspace ws;
  private final MambaState state;
  private final float[] lastHidden; // (D) final hidden of the last token seen
  private final int[] oneTarget = new int[1];
  private final int[] pieceIds;
  private boolean started;
  private double lossSum;
  private long predicted;
  private long seen;

  public StreamingScorer(MambaModel model, int pieceLength) {
    if (pieceLength <= 0) {
      throw new IllegalArgumentException("piece length must be positive, got " + pieceLength);
    }
    this.model = model;
    this.pieceLength = pieceLength;
    this.ws = new Workspace(model.config);
    this.state = new MambaState(model.config, 1);
    this.lastHidden = new float[model.config.hiddenSize];
    this.pieceIds = new int[pieceLength];
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
    model.forward(ws, pieceIds, 1, n, state, null);
    if (started) { // the previous piece's last position predicts this piece's first token
      oneTarget[0] = pieceIds[0];
      lossSum += Scoring.crossEntropySum(model, ws, lastHidden, 0, oneTarget, 0, 1, null, 0);
      predicted++;
    }
    if (n > 1) {
      lossSum += Scoring.crossEntropySum(model, ws, ws.hidden, 0, pieceIds, 1, n - 1, null, 0);
      predicted += n - 1;
    }
    System.arraycopy(ws.hidden, (n - 1) * D, lastHidden, 0, D);
    started = true;
    seen += n;
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
