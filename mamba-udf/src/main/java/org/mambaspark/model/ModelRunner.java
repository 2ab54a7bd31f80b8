package org.mambaspark.model;

/**
 * A model bound to a {@link Backend}: the engine's entry points (forward, scoring, generation
 * steps, the training gradient) as whole calls, token ids in and hidden states, logits, losses or
 * gradients out, so that a GPU keeps every intermediate on the device and transfers only at the
 * edges.
 *
 * <p>Thread-safe: Spark task threads of one executor may share a runner. The CPU runner keeps a
 * workspace per thread; a GPU runner serializes calls on its device (OpenCL kernels are not
 * thread-safe, and one device's memory holds one copy of the weights).
 *
 * <p>Results equal {@link MambaModel#forward}, {@link Scoring} and {@link Backprop} up to float
 * summation order (the tests hold the GPU runner to 1e-5 relative error on the forward and 1e-4 on
 * gradients).
 */
public interface ModelRunner extends AutoCloseable {
  MambaModel model();

  Backend backend();

  /**
   * The forward over (B, L) token ids, as {@link MambaModel#forward}.
   *
   * @param hidden (B·L, D) receives norm_f's output; may be null (not wanted)
   * @param ids (B, L)
   * @param state carried in and updated (streaming, generation), or null for fresh sequences
   */
  void forward(float[] hidden, int[] ids, int B, int L, MambaState state);

  /**
   * The forward, then the logits of each sequence's last position: one step of generation (after a
   * prefill with the same state).
   *
   * @param logits (B, V)
   */
  void forwardLastLogits(float[] logits, int[] ids, int B, int L, MambaState state);

  /**
   * {@link #forwardLastLogits}, then each sequence's greedy next token: the first index of the
   * largest of its logits ({@link Sampler#argmax}). A GPU runner picks the tokens on the device and
   * reads back B ints instead of B·V logits.
   *
   * @param next (B) receives the tokens
   * @param logits (B, V) scratch this default fills (a runner may leave it untouched)
   */
  default void forwardLastArgmax(
      int[] next, float[] logits, int[] ids, int B, int L, MambaState state) {
    forwardLastLogits(logits, ids, B, L, state);
    int V = model().config.vocabSize;
    for (int b = 0; b < B; b++) {
      next[b] = Sampler.argmax(logits, b * V, V);
    }
  }

  /**
   * Σ over the batch of the next-token cross-entropy of fresh sequences (targets ids[:, 1:]), as
   * {@link Scoring#crossEntropySum}; divide by B·(L-1) for the mean.
   *
   * @param logprobs (B, L-1) receives log p(ids[b, t+1] | ids[b, ..t]); may be null
   */
  double nextTokenLossSum(float[] logprobs, int[] ids, int B, int L);

  /**
   * As {@link Backprop#forwardBackward}: accumulates (+=) scale · the gradient of the summed
   * next-token cross-entropy into grads and returns the unscaled loss sum (B·(L-1) tokens).
   */
  double forwardBackward(MambaWeights grads, int[] ids, int B, int L, double scale);

  /**
   * {@link #forwardBackward(MambaWeights, int[], int, int, double)} with the CPU's scan memory
   * trade-off: the training forward keeps the scan state every {@code scanChunk} positions and the
   * backward recomputes the rest ({@link Backprop#Backprop(MambaModel, int, int, int)}). A runner
   * whose device has its own tiling (the GPU) ignores it; the result does not depend on it.
   */
  default double forwardBackward(
      MambaWeights grads, int[] ids, int B, int L, double scale, int scanChunk) {
    return forwardBackward(grads, ids, B, L, scale);
  }

  /**
   * Re-reads the model's weights after they were changed in place (an optimizer step). The CPU
   * runner reads them on every call; a GPU runner puts them on the device again.
   */
  void reloadWeights();

  /** Frees device memory; the runner is unusable afterwards. */
  @Override
  void close();
}
