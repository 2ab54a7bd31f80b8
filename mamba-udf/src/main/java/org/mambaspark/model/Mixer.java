package org.mambaspark.model;

/**
 * The token-mixing half of a residual block, the one part that differs between the architectures
 * (vLLM's mamba_mixer / mamba_mixer2 split): everything around it (embedding, the block's pre-norm
 * and residual add, norm_f, the head, checkpoints, generation, streaming, scoring, training) is
 * shared. A mixer is bound to one {@link MambaConfig}; it is immutable, and its buffers are the
 * caller's (one set per thread).
 *
 * <pre>
 *   block:  x = x + mixer(rmsnorm(x) · norm)       mixer: (B·L, D) → (B·L, D)
 * </pre>
 *
 * <p>The recurrent state a mixer carries between calls is one conv array (B, {@link
 * MambaConfig#convChannels}, K-1) and one SSM array of B·N·ED floats per layer ({@link
 * MambaState}); its layout is the mixer's own.
 */
interface Mixer {
  /** A mixer's per-layer activations (forward) or gradient scratch (backward). */
  interface Buffers {}

  /** Zero-filled weights of one block. */
  BlockWeights newWeights();

  /**
   * Activations of one layer over B sequences of L positions; with {@code training}, also what the
   * backward needs, the scan state saved every {@code scanChunk} positions.
   */
  Buffers newActivations(int B, int L, boolean training, int scanChunk);

  /** Gradient scratch for {@link #backward} over (B, L), reused across layers. */
  Buffers newScratch(int B, int L);

  /** Draws the mixer's parameters (the block norm is set by the caller). */
  void initialize(BlockWeights w, InitDraws rnd);

  /**
   * out (B·L, D) = mixer(xNorm (B·L, D)).
   *
   * @param m the block's big matrices as the forward reads them (w's own arrays are for the
   *     backward and may be empty in a 16- or 8-bit inference model)
   * @param convState (B, convChannels, K-1) carried in and updated, or null for fresh sequences
   * @param ssmState (B·N·ED) carried in and updated, or null for fresh sequences
   */
  void forward(
      float[] out,
      float[] xNorm,
      BlockWeights w,
      BlockMatrices m,
      Buffers act,
      float[] convState,
      float[] ssmState,
      int B,
      int L);

  /**
   * Accumulates (+=) the gradients of {@link #forward} over fresh sequences of a training forward
   * whose activations are {@code act}: into dxNorm (B·L, D) and the mixer's parameters in g.
   *
   * @param dout (B·L, D) the gradient of out
   */
  void backward(
      float[] dxNorm,
      BlockWeights g,
      float[] dout,
      float[] xNorm,
      BlockWeights w,
      Buffers act,
      Buffers scratch,
      int B,
      int L);
}
