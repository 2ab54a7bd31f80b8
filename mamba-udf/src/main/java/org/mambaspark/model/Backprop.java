package org.mambaspark.model;

import java.util.Arrays;
import org.mambaspark.ops.Activations;
import org.mambaspark.ops.Conv1d;
import org.mambaspark.ops.Matmul;
import org.mambaspark.ops.RmsNorm;
import org.mambaspark.ops.SelectiveScan;

/**
 * The gradient of the next-token cross-entropy, by hand, llm.c style: {@link MambaModel#forward} on
 * a training {@link Workspace} saves what each backward needs, then {@link #backward} walks the
 * same operations in reverse, accumulating (+=) into a gradient shaped like the weights ({@link
 * MambaWeights#zerosLike}). A tied lm_head's gradient lands in the embedding's (they are one
 * array). One Backprop per thread; the model is shared.
 */
public final class Backprop {
  /**
   * Default positions per saved scan state: memory for states is B·ED·N·⌈L/T⌉ floats instead of
   * B·ED·N·L.
   */
  public static final int DEFAULT_SCAN_CHUNK = 256;

  private final MambaModel model;
  private final Workspace ws;
  private final int B;
  private final int L;
  // gradient scratch, reused per layer
  private final float[] dx; //     (BT, D)    dLoss/d residual stream
  private final float[] dxNorm; // (BT, D)
  private final float[] dxz; //    (BT, 2ED)
  private final float[] dxs; //    (BT, ED)
  private final float[] ddbc; //   (BT, R+2N)
  private final float[] ddelta; // (BT, ED)
  private final float[] dy; //     (BT, ED)
  private final float[] dAT; //    (N, ED)
  private final float[] dhidden; // (BT, D)

  public Backprop(MambaModel model, int B, int L) {
    this(model, B, L, DEFAULT_SCAN_CHUNK);
  }

  public Backprop(MambaModel model, int B, int L, int scanChunk) {
    if (L < 2) {
      throw new IllegalArgumentException(
          "training needs sequences of at least 2 tokens, got length " + L);
    }
    MambaConfig c = model.config;
    this.model = model;
    this.B = B;
    this.L = L;
    this.ws = Workspace.forTraining(c, B, L, scanChunk);
    int BT = B * L, D = c.hiddenSize, ED = c.intermediateSize, P = c.xProjSize();
    dx = new float[BT * D];
    dxNorm = new float[BT * D];
    dxz = new float[BT * 2 * ED];
    dxs = new float[BT * ED];
    ddbc = new float[BT * P];
    ddelta = new float[BT * ED];
    dy = new float[BT * ED];
    dAT = new float[c.stateSize * ED];
    dhidden = new float[BT * D];
  }

  /**
   * Forward and backward of Σ over the batch of the next-token cross-entropy (targets ids[:, 1:]),
   * times {@code scale}: pass 1 / (total predicted tokens of the step) to get the gradient of the
   * mean loss, summed over micro-batches. Accumulates into {@code grads}.
   *
   * @param ids (B, L)
   * @return the unscaled sum of the token losses of this batch (B·(L-1) tokens)
   */
  public double forwardBackward(int[] ids, MambaWeights grads, double scale) {
    model.forward(ws, ids, B, L, null, null);
    return backward(ids, grads, scale);
  }

  private double backward(int[] ids, MambaWeights grads, double scale) {
    MambaConfig c = model.config;
    MambaWeights w = model.weights;
    int BT = B * L, D = c.hiddenSize, ED = c.intermediateSize, N = c.stateSize, R = c.timeStepRank;
    int K = c.convKernel, P = c.xProjSize();

    // cross-entropy + lm_head: dhidden, dlm_head
    Arrays.fill(dhidden, 0f);
    double lossSum = 0;
    for (int b = 0; b < B; b++) {
      lossSum +=
          crossEntropyBackward(
              dhidden, grads.lmHead, ws.hidden, b * L, ids, b * L + 1, L - 1, (float) scale);
    }
    // norm_f
    Arrays.fill(dx, 0f);
    RmsNorm.rmsnormBackward(dx, grads.normF, dhidden, ws.x, w.normF, ws.rstdF, BT, D);

    for (int l = c.numLayers - 1; l >= 0; l--) {
      LayerWeights lw = w.layers[l];
      LayerWeights g = grads.layers[l];
      LayerBuffers a = ws.layer(l);
      // x_out = x_in + out_proj(y): dx flows through unchanged, plus the mixer's path
      Arrays.fill(dy, 0f);
      Matmul.matmulBackward(
          dy, 0, ED, g.outProj, g.outProjBias, dx, 0, D, a.y, 0, ED, lw.outProj, BT, ED, D);
      // scan (with D skip and gate): du, dΔ, dA, dB, dC, dD, dz
      Arrays.fill(dxs, 0f);
      Arrays.fill(ddelta, 0f);
      Arrays.fill(dAT, 0f);
      Arrays.fill(ddbc, 0f);
      Arrays.fill(dxz, 0f);
      SelectiveScan.scanBackward(
          dxs,
          ddelta,
          dAT,
          ddbc,
          g.dSkip,
          dxz,
          dy,
          a.hChunks,
          ws.scanChunk,
          a.xs,
          a.delta,
          a.aT,
          a.dbc,
          R,
          lw.dSkip,
          a.xz,
          ED,
          2 * ED,
          B,
          L,
          ED,
          N);
      // A = -exp(A_log)  =>  dA_log = dA · A   (dAT and aT are (N, ED); A_log is (ED, N))
      float[] aT = a.aT;
      for (int e = 0; e < ED; e++) {
        for (int n = 0; n < N; n++) {
          g.aLog[e * N + n] += dAT[n * ED + e] * aT[n * ED + e];
        }
      }
      // Δ = softplus(dt_proj(dbc[:, :R]))
      Activations.softplusBackward(ddelta, a.dtPre, 0, ED, BT, ED);
      Matmul.matmulBackward(
          ddbc, 0, P, g.dtProj, g.dtProjBias, ddelta, 0, ED, a.dbc, 0, P, lw.dtProj, BT, R, ED);
      // dbc = x_proj(xs)
      Matmul.matmulBackward(
          dxs, 0, ED, g.xProj, null, ddbc, 0, P, a.xs, 0, ED, lw.xProj, BT, ED, P);
      // xs = silu(conv(xz[:, :ED]))
      Conv1d.convBackward(
          dxz,
          g.conv1dWeight,
          g.conv1dBias,
          dxs,
          a.convPre,
          a.xz,
          0,
          2 * ED,
          lw.conv1dWeight,
          B,
          L,
          ED,
          K);
      // xz = in_proj(rmsnorm(x_in))
      Arrays.fill(dxNorm, 0f);
      Matmul.matmulBackward(
          dxNorm,
          0,
          D,
          g.inProj,
          g.inProjBias,
          dxz,
          0,
          2 * ED,
          a.xNorm,
          0,
          D,
          lw.inProj,
          BT,
          D,
          2 * ED);
      RmsNorm.rmsnormBackward(dx, g.norm, dxNorm, a.xIn, lw.norm, a.rstd, BT, D);
    }
    // embeddings
    for (int t = 0; t < BT; t++) {
      int o = ids[t] * D;
      for (int i = 0; i < D; i++) {
        grads.embeddings[o + i] += dx[t * D + i];
      }
    }
    return lossSum;
  }

  /**
   * Σ_r CE(row r) and its backward through lm_head, in row blocks: dlogits = scale·(softmax −
   * onehot(target)), dhidden += dlogits @ W, dW += dlogitsᵀ @ hidden.
   */
  private double crossEntropyBackward(
      float[] dhidden,
      float[] dW,
      float[] hidden,
      int rowOff,
      int[] targets,
      int tOff,
      int rows,
      float scale) {
    MambaConfig c = model.config;
    int V = c.vocabSize, D = c.hiddenSize;
    double sum = 0;
    for (int r0 = 0; r0 < rows; r0 += Scoring.ROW_BLOCK) {
      int n = Math.min(Scoring.ROW_BLOCK, rows - r0);
      float[] logits = ws.logits(n);
      model.lmHeadForward(logits, hidden, rowOff + r0, n);
      for (int r = 0; r < n; r++) {
        int o = r * V;
        int target = targets[tOff + r0 + r];
        double lse = Activations.logSumExp(logits, o, V);
        sum += lse - logits[o + target];
        float targetLogit = logits[o + target];
        Activations.expShiftScale(logits, o, V, (float) lse, scale); // scale · softmax
        logits[o + target] = scale * ((float) Math.exp(targetLogit - lse) - 1f);
      }
      Matmul.matmulBackward(
          dhidden,
          (rowOff + r0) * D,
          D,
          dW,
          null,
          logits,
          0,
          V,
          hidden,
          (rowOff + r0) * D,
          D,
          model.weights.lmHead,
          n,
          D,
          V);
    }
    return sum;
  }
}
