package org.mambaspark.model;

import org.mambaspark.ops.Matmul;
import org.mambaspark.ops.Parallel;
import org.mambaspark.ops.RmsNorm;

/**
 * The forward of a Mamba-family language model ({@code MambaForCausalLM}, {@code
 * Mamba2ForCausalLM}, {@code FalconMambaForCausalLM}; HF transformers' torch paths), fp32, over a
 * batch of B sequences of L tokens. Immutable and thread-safe: per-call buffers live in a {@link
 * Workspace}, recurrent state in a {@link MambaState}.
 *
 * <pre>
 *   x = embeddings[ids]                                                (B, L, D)
 *   per layer:  x = x + mixer(rms(x) · norm)        (the architecture's {@link Mixer})
 *   hidden = rms(x) · norm_f;  logits = hidden @ lm_headᵀ               (B, L, V)
 * </pre>
 */
public final class MambaModel {
  public final MambaConfig config;

  /**
   * Read on every forward, never cached in derived form: an optimizer updates them in place between
   * calls.
   */
  public final MambaWeights weights;

  /** The architecture's mixer, bound to the config. */
  final Mixer mixer;

  public MambaModel(MambaWeights weights) {
    this.weights = weights;
    this.config = weights.config;
    this.mixer = config.architecture.mixer(config);
  }

  /**
   * Runs the backbone; afterwards {@code ws.hidden} holds the output of norm_f (B·L, D).
   *
   * @param ids (B, L) token ids
   * @param state carried in and updated (streaming, generation), or null for fresh sequences
   * @param hiddenStates when non-null, (numLayers+1) arrays of (B·L, D) receive the residual stream
   *     after each layer and, last, the norm_f output (HF's output_hidden_states without the
   *     embedding output)
   */
  public void forward(
      Workspace ws, int[] ids, int B, int L, MambaState state, float[][] hiddenStates) {
    MambaConfig c = config;
    int BT = B * L, D = c.hiddenSize;
    if (ids.length < BT) {
      throw new IllegalArgumentException(
          "ids holds " + ids.length + " tokens, expected B*L = " + BT);
    }
    if (state != null && state.batch != B) {
      throw new IllegalArgumentException(
          "state is for batch " + state.batch + ", the input has batch " + B);
    }
    ws.ensure(B, L);
    float[] x = ws.x;
    embeddingForward(x, ids, BT);
    for (int l = 0; l < c.numLayers; l++) {
      BlockWeights w = weights.blocks[l];
      LayerBuffers a = ws.layer(l);
      if (a.xIn != null) {
        System.arraycopy(x, 0, a.xIn, 0, BT * D);
      }
      RmsNorm.rmsnormForward(a.xNorm, a.rstd, x, w.norm, BT, D, c.layerNormEpsilon);
      float[] convState = state == null ? null : state.conv(l);
      float[] ssmState = state == null ? null : state.ssm(l);
      mixer.forward(ws.out, a.xNorm, w, a.mixer, convState, ssmState, B, L);
      addInPlace(x, ws.out, BT * D);
      if (hiddenStates != null) {
        System.arraycopy(x, 0, hiddenStates[l], 0, BT * D);
      }
    }
    RmsNorm.rmsnormForward(ws.hidden, ws.rstdF, x, weights.normF, BT, D, c.layerNormEpsilon);
    if (hiddenStates != null) {
      System.arraycopy(ws.hidden, 0, hiddenStates[c.numLayers], 0, BT * D);
    }
  }

  /** logits (rows, V) = hidden[rowOff..rowOff+rows) (·, D) @ lm_headᵀ. */
  public void lmHeadForward(float[] logits, float[] hidden, int rowOff, int rows) {
    int D = config.hiddenSize, V = config.vocabSize;
    Matmul.matmulForward(logits, 0, V, hidden, rowOff * D, D, weights.lmHead, null, rows, D, V);
  }

  void embeddingForward(float[] x, int[] ids, int BT) {
    int D = config.hiddenSize, V = config.vocabSize;
    for (int t = 0; t < BT; t++) {
      int id = ids[t];
      String why = TokenIds.outside(id, t, V);
      if (why != null) {
        throw new IllegalArgumentException(why);
      }
      System.arraycopy(weights.embeddings, id * D, x, t * D, D);
    }
  }

  private static void addInPlace(float[] x, float[] dx, int n) {
    Parallel.forRange(
        n,
        1 << 14,
        (from, to) -> {
          for (int i = from; i < to; i++) {
            x[i] += dx[i];
          }
        });
  }
}
