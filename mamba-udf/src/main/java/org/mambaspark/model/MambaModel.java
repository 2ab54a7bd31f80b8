package org.mambaspark.model;

import org.mambaspark.ops.Activations;
import org.mambaspark.ops.Conv1d;
import org.mambaspark.ops.Matmul;
import org.mambaspark.ops.Parallel;
import org.mambaspark.ops.RmsNorm;
import org.mambaspark.ops.SelectiveScan;

/**
 * {@code MambaForCausalLM}'s forward (HF transformers {@code modeling_mamba.py}, slow path), fp32, over a batch of
 * B sequences of L tokens. Immutable and thread-safe: per-call buffers live in a {@link Workspace}, recurrent state
 * in a {@link MambaState}.
 *
 * <pre>
 *   x = embeddings[ids]                                                (B, L, D)
 *   per layer:  x = x + out_proj( scan( silu(conv(in_proj(rms(x))_x)), Δ, B, C ) · silu(in_proj(rms(x))_z) )
 *   hidden = rms(x) · norm_f;  logits = hidden @ lm_headᵀ               (B, L, V)
 * </pre>
 */
public final class MambaModel {
  public final MambaConfig config;
  public final MambaWeights weights;
  /** Per layer (N, ED): A = -exp(A_log), transposed for the scan's channel-contiguous loop. */
  private final float[][] aT;

  public MambaModel(MambaWeights weights) {
    this.weights = weights;
    this.config = weights.config;
    int ED = config.intermediateSize, N = config.stateSize;
    aT = new float[config.numLayers][];
    for (int l = 0; l < config.numLayers; l++) {
      float[] aLog = weights.layers[l].aLog;
      float[] a = new float[N * ED];
      for (int e = 0; e < ED; e++) {
        for (int n = 0; n < N; n++) {
          a[n * ED + e] = -(float) Math.exp(aLog[e * N + n]);
        }
      }
      aT[l] = a;
    }
  }

  /**
   * Runs the backbone; afterwards {@code ws.hidden} holds the output of norm_f (B·L, D).
   *
   * @param ids (B, L) token ids
   * @param state carried in and updated (streaming, generation), or null for fresh sequences
   * @param hiddenStates when non-null, (numLayers+1) arrays of (B·L, D) receive the residual stream after each layer
   *     and, last, the norm_f output (HF's output_hidden_states without the embedding output)
   */
  public void forward(Workspace ws, int[] ids, int B, int L, MambaState state, float[][] hiddenStates) {
    MambaConfig c = config;
    int BT = B * L, D = c.hiddenSize, ED = c.intermediateSize, N = c.stateSize, R = c.timeStepRank;
    int K = c.convKernel, P = c.xProjSize();
    if (ids.length < BT) {
      throw new IllegalArgumentException("ids holds " + ids.length + " tokens, expected B*L = " + BT);
    }
    if (state != null && state.batch != B) {
      throw new IllegalArgumentException("state is for batch " + state.batch + ", the input has batch " + B);
    }
    ws.ensure(BT);
    float[] x = ws.x;
    embeddingForward(x, ids, BT);
    float[] hScratch = state == null ? new float[B * N * ED] : null;
    for (int l = 0; l < c.numLayers; l++) {
      LayerWeights w = weights.layers[l];
      RmsNorm.rmsnormForward(ws.xNorm, null, x, w.norm, BT, D, c.layerNormEpsilon);
      Matmul.matmulForward(ws.xz, 0, 2 * ED, ws.xNorm, 0, D, w.inProj, w.inProjBias, BT, D, 2 * ED);
      float[] convState = state == null ? null : state.conv[l];
      Conv1d.convForward(ws.xs, null, ws.xz, 0, 2 * ED, convState, w.conv1dWeight, w.conv1dBias, B, L, ED, K);
      if (convState != null) {
        Conv1d.updateState(convState, ws.xz, 0, 2 * ED, B, L, ED, K);
      }
      Matmul.matmulForward(ws.dbc, 0, P, ws.xs, 0, ED, w.xProj, null, BT, ED, P);
      Matmul.matmulForward(ws.delta, 0, ED, ws.dbc, 0, P, w.dtProj, w.dtProjBias, BT, R, ED);
      Activations.softplusForward(ws.delta, 0, ED, BT, ED);
      float[] h;
      if (state == null) {
        h = hScratch;
        java.util.Arrays.fill(h, 0f);
      } else {
        h = state.ssm[l];
      }
      SelectiveScan.scanForward(ws.y, h, ws.xs, ws.delta, aT[l], ws.dbc, R, w.dSkip, ws.xz, ED, 2 * ED, B, L, ED, N);
      Matmul.matmulForward(ws.out, 0, D, ws.y, 0, ED, w.outProj, w.outProjBias, BT, ED, D);
      addInPlace(x, ws.out, BT * D);
      if (hiddenStates != null) {
        System.arraycopy(x, 0, hiddenStates[l], 0, BT * D);
      }
    }
    RmsNorm.rmsnormForward(ws.hidden, null, x, weights.normF, BT, D, c.layerNormEpsilon);
    if (hiddenStates != null) {
      System.arraycopy(ws.hidden, 0, hiddenStates[c.numLayers], 0, BT * D);
    }
  }

  /** logits (rows, V) = hidden[rowOff..rowOff+rows) (·, D) @ lm_headᵀ. */
  public void lmHeadForward(float[] logits, float[] hidden, int rowOff, int rows) {
    int D = config.hiddenSize, V = config.vocabSize;
    Matmul.matmulForward(logits, 0, V, hidden, rowOff * D, D, weights.lmHead, null, rows, D, V);
  }

  private void embeddingForward(float[] x, int[] ids, int BT) {
    int D = config.hiddenSize, V = config.vocabSize;
    for (int t = 0; t < BT; t++) {
      int id = ids[t];
      if (id < 0 || id >= V) {
        throw new IllegalArgumentException(
            "token id " + id + " at position " + t + " is outside the vocabulary [0, " + V + ")");
      }
      System.arraycopy(weights.embeddings, id * D, x, t * D, D);
    }
  }

  private static void addInPlace(float[] x, float[] dx, int n) {
    Parallel.forRange(n, 1 << 14, (from, to) -> {
      for (int i = from; i < to; i++) {
        x[i] += dx[i];
      }
    });
  }
}
