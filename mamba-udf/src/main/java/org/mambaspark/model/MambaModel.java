package org.mambaspark.model;

import java.util.Arrays;
import org.mambaspark.ops.Activations;
import org.mambaspark.ops.Conv1d;
import org.mambaspark.ops.Matmul;
import org.mambaspark.ops.Parallel;
import org.mambaspark.ops.RmsNorm;
import org.mambaspark.ops.SelectiveScan;

/**
 * {@code MambaForCausalLM}'s forward (HF transformers {@code modeling_mamba.py}, slow path), fp32,
 * over a batch of B sequences of L tokens. Immutable and thread-safe: per-call buffers live in a
 * {@link Workspace}, recurrent state in a {@link MambaState}.
 *
 * <pre>
 *   x = embeddings[ids]                                                (B, L, D)
 *   per layer:  x = x + out_proj( scan( silu(conv(in_proj(rms(x))_x)), Δ, B, C ) · silu(in_proj(rms(x))_z) )
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

  public MambaModel(MambaWeights weights) {
    this.weights = weights;
    this.config = weights.config;
  }

  /**
   * aT (N, ED) = -exp(A_log)ᵀ, transposed for the scan's channel-contiguous loop. Recomputed per
   * forward (N·ED exps a layer, vectorized: small next to the layer) so that it can never go stale.
   */
  static void negExpTransposed(float[] aT, float[] aLog, int ED, int N) {
    for (int e = 0; e < ED; e++) {
      for (int n = 0; n < N; n++) {
        aT[n * ED + e] = aLog[e * N + n];
      }
    }
    Activations.expInPlace(aT, 0, N * ED);
    for (int i = 0; i < N * ED; i++) {
      aT[i] = -aT[i];
    }
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
    int BT = B * L, D = c.hiddenSize, ED = c.intermediateSize, N = c.stateSize, R = c.timeStepRank;
    int K = c.convKernel, P = c.xProjSize();
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
    float[] hScratch = state == null ? new float[B * N * ED] : null;
    for (int l = 0; l < c.numLayers; l++) {
      LayerWeights w = weights.layers[l];
      LayerBuffers a = ws.layer(l);
      negExpTransposed(a.aT, w.aLog, ED, N);
      if (a.xIn != null) {
        System.arraycopy(x, 0, a.xIn, 0, BT * D);
      }
      RmsNorm.rmsnormForward(a.xNorm, a.rstd, x, w.norm, BT, D, c.layerNormEpsilon);
      Matmul.matmulForward(a.xz, 0, 2 * ED, a.xNorm, 0, D, w.inProj, w.inProjBias, BT, D, 2 * ED);
      float[] convState = state == null ? null : state.conv(l);
      Conv1d.convForward(
          a.xs, a.convPre, a.xz, 0, 2 * ED, convState, w.conv1dWeight, w.conv1dBias, B, L, ED, K);
      if (convState != null) {
        Conv1d.updateState(convState, a.xz, 0, 2 * ED, B, L, ED, K);
      }
      Matmul.matmulForward(a.dbc, 0, P, a.xs, 0, ED, w.xProj, null, BT, ED, P);
      Matmul.matmulForward(a.delta, 0, ED, a.dbc, 0, P, w.dtProj, w.dtProjBias, BT, R, ED);
      if (a.dtPre != null) {
        System.arraycopy(a.delta, 0, a.dtPre, 0, BT * ED);
      }
      Activations.softplusForward(a.delta, 0, ED, BT, ED);
      float[] h = state == null ? hScratch : state.ssm(l);
      if (state == null) {
        Arrays.fill(h, 0f);
      }
      if (a.hChunks != null) {
        SelectiveScan.saveChunkStates(
            a.hChunks, ws.scanChunk, h, a.xs, a.delta, a.aT, a.dbc, R, B, L, ED, N);
      }
      SelectiveScan.scanForward(
          a.y, h, a.xs, a.delta, a.aT, a.dbc, R, w.dSkip, a.xz, ED, 2 * ED, B, L, ED, N);
      Matmul.matmulForward(ws.out, 0, D, a.y, 0, ED, w.outProj, w.outProjBias, BT, ED, D);
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
