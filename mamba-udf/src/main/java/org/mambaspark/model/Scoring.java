package org.mambaspark.model;

import org.mambaspark.ops.Activations;

/**
 * Next-token cross-entropy from final hidden states, computed through lm_head in row blocks so that
 * the (B·L, V) logits are never held at once (V is 50280 for the published models).
 */
public final class Scoring {
  /** Rows of logits materialized at a time. */
  static final int ROW_BLOCK = 128;

  private Scoring() {}

  /**
   * Σ_r -log softmax(hidden[rowOff + r] @ lm_headᵀ)[targets[tOff + r]] for r in [0, rows).
   *
   * @param logprobs when non-null, logprobs[lpOff + r] receives log p(target | prefix)
   */
  public static double crossEntropySum(
      MambaModel m,
      Workspace ws,
      float[] hidden,
      int rowOff,
      int[] targets,
      int tOff,
      int rows,
      float[] logprobs,
      int lpOff) {
    int V = m.config.vocabSize;
    double sum = 0;
    for (int r0 = 0; r0 < rows; r0 += ROW_BLOCK) {
      int n = Math.min(ROW_BLOCK, rows - r0);
      float[] logits = ws.logits(n);
      m.lmHeadForward(logits, hidden, rowOff + r0, n);
      for (int r = 0; r < n; r++) {
        int target = targets[tOff + r0 + r];
        String why = TokenIds.outside(target, tOff + r0 + r, V);
        if (why != null) {
          throw new IllegalArgumentException(why);
        }
        double lp = logits[r * V + target] - Activations.logSumExp(logits, r * V, V);
        sum -= lp;
        if (logprobs != null) {
          logprobs[lpOff + r0 + r] = (float) lp;
        }
      }
    }
    return sum;
  }

  /**
   * The mean cross-entropy of logits[:, :-1] against ids[:, 1:] over a batch (B, L), as HF's {@code
   * labels=input_ids} loss. Runs the forward.
   */
  public static double meanNextTokenLoss(MambaModel m, Workspace ws, int[] ids, int B, int L) {
    m.forward(ws, ids, B, L, null, null);
    return meanNextTokenLossOfHidden(m, ws, ids, B, L);
  }

  /** As {@link #meanNextTokenLoss}, from the forward already in {@code ws.hidden}. */
  public static double meanNextTokenLossOfHidden(
      MambaModel m, Workspace ws, int[] ids, int B, int L) {
    if (L < 2) {
      throw new IllegalArgumentException(
          "a loss needs sequences of at least 2 tokens, got length " + L);
    }
    double sum = 0;
    for (int b = 0; b < B; b++) {
      sum += crossEntropySum(m, ws, ws.hidden, b * L, ids, b * L + 1, L - 1, null, 0);
    }
    return sum / ((double) B * (L - 1));
  }
}
