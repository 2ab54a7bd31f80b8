package org.mambaspark.model;

import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * Autoregressive generation for one sequence on a {@link ModelRunner} (the CPU engine or a GPU):
 * the prompt is prefilled through the parallel forward (in pieces of at most {@code piece} tokens,
 * state carried), then each new token is one recurrent step, O(1) in the length so far (HF's
 * generate with its recurrent cache). Not thread-safe: one Generator per thread; the runner is
 * shared.
 */
public final class Generator {
  public static final int PREFILL_PIECE = 2048;

  private final ModelRunner runner;
  private final int piece;
  private final float[] logits;

  /** On the CPU engine. */
  public Generator(MambaModel model) {
    this(Backends.cpu().open(model), PREFILL_PIECE);
  }

  /**
   * @param runner the model on its backend
   * @param piece the longest prefill call (tokens)
   */
  public Generator(ModelRunner runner, int piece) {
    if (piece <= 0) {
      throw new IllegalArgumentException("the prefill piece must be positive, got " + piece);
    }
    this.runner = runner;
    this.piece = piece;
    this.logits = new float[runner.model().config.vocabSize];
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
    MambaConfig c = runner.model().config;
    int V = c.vocabSize;
    MambaState state = new MambaState(c, 1);
    Sampler sampler = new Sampler(params);
    int[] chunk = new int[Math.min(prompt.length, piece)];
    for (int p = 0; p < prompt.length; p += piece) {
      int n = Math.min(piece, prompt.length - p);
      if (chunk.length != n) {
        chunk = new int[n];
      }
      System.arraycopy(prompt, p, chunk, 0, n);
      runner.forwardLastLogits(logits, chunk, 1, n, state); // the last piece's logits are kept
    }
    int[] out = new int[params.maxNewTokens];
    int count = 0;
    int[] step = new int[1];
    while (count < params.maxNewTokens) {
      int next = sampler.sample(logits, 0, V);
      out[count++] = next;
      if (onToken != null) {
        onToken.accept(next);
      }
      if (params.isStop(next) || count == params.maxNewTokens) {
        break;
      }
      step[0] = next;
      runner.forwardLastLogits(logits, step, 1, 1, state);
    }
    return Arrays.copyOf(out, count);
  }
}
