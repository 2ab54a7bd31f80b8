package org.mambaspark.model;

import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * Autoregressive generation for one sequence: the prompt is prefilled through the parallel forward
 * (in pieces of at most {@link #PREFILL_PIECE} tokens, state carried), then each new token is one
 * recurrent step, O(1) in the length so far (HF's generate with its recurrent cache). Not
 * thread-safe: one Generator per thread; the model is shared.
 */
public final class Generator {
  public static final int PREFILL_PIECE = 2048;

  private final MambaModel model;
  private final Workspace ws;
  private final float[] logits;

  public Generator(MambaModel model) {
    this.model = model;
    this.ws = new Workspace(model.config);
    this.logits = new float[model.config.vocabSize];
  }

  /**
   * @param prompt at least one token id
   * @param onToken called with each new token as it is chosen (may be null)
   * @return the new tokens (the prompt not included), ending early after a stop token
   */
  public int[] generate(int[] prompt, SamplingParams params, IntConsumer onToken) {
    if (prompt.length == 0) {
      throw new IllegalArgumentException(
          "the prompt is empty: generation needs at least one token");
    }
    MambaConfig c = model.config;
    int V = c.vocabSize;
    MambaState state = new MambaState(c, 1);
    Sampler sampler = new Sampler(params);
    int[] piece = new int[Math.min(prompt.length, PREFILL_PIECE)];
    int n = 0;
    for (int p = 0; p < prompt.length; p += PREFILL_PIECE) {
      n = Math.min(PREFILL_PIECE, prompt.length - p);
      System.arraycopy(prompt, p, piece, 0, n);
      model.forward(ws, piece, 1, n, state, null);
    }
    int[] out = new int[params.maxNewTokens];
    int count = 0;
    int[] step = new int[1];
    int lastRow = n - 1;
    while (count < params.maxNewTokens) {
      model.lmHeadForward(logits, ws.hidden, lastRow, 1);
      int next = sampler.sample(logits, 0, V);
      out[count++] = next;
      if (onToken != null) {
        onToken.accept(next);
      }
      if (params.isStop(next) || count == params.maxNewTokens) {
        break;
      }
      step[0] = next;
      model.forward(ws, step, 1, 1, state, null);
      lastRow = 0;
    }
    return Arrays.copyOf(out, count);
  }
}
