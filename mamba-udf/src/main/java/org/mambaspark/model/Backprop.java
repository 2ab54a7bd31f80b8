package org.mambaspark.model;

import java.util.Arrays;
import org.mambaspark.ops.Activations;
import org.mambaspark.ops.Matmul;
import org.mambaspark.ops.RmsNorm;
import org.mambaspark.ops.WeightMatrix;

/**
 * The gradient of the next-token cross-entropy, by hand, llm.c style: {@link MambaModel#forward} on
 * a training {@link Workspace} saves what each backward needs, then {@link #backward} walks the
 * same operations in reverse (each layer's mixer through {@link Mixer#backward}), accumulating (+=)
 * into a gradient shaped like the weights ({@link MambaWeights#zerosLike}). A tied lm_head's
 * gradient lands in the embedding's (they are one array). One Backprop per thread; the model is
 * shared.
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
  private final float[] dhidden; // (BT, D)
  private final Mixer.Buffers mixerScratch;

  public Backprop(MambaModel model, int B, int L) {
    this(model, B, L, DEFAULT_SCAN_CHUNK);
  }

  /**
   * @param scanChunk Mamba-1 and Falcon-Mamba: positions per saved scan state. Mamba-2's scan saves
   *     its state at the boundaries of the config's chunk_size instead (its chunks are the
   *     computation's own); the gradient does not depend on either.
   */
  public Backprop(MambaModel model, int B, int L, int scanChunk) {
    if (L < 2) {
      throw new IllegalArgumentException(
          "training needs sequences of at least 2 tokens, got length " + L);
    }
    if (model.weightsDtype != WeightMatrix.Dtype.FP32) {
      throw new IllegalArgumentException(
          "training needs fp32 weights; this model holds "
              + model.weightsDtype.label()
              + " matrices (load it without --weights-dtype)");
    }
    MambaConfig c = model.config;
    this.model = model;
    this.B = B;
    this.L = L;
    this.ws = Workspace.forTraining(c, B, L, scanChunk);
    int BT = B * L, D = c.hiddenSize;
    dx = new float[BT * D];
    dxNorm = new float[BT * D];
    dhidden = new float[BT * D];
    mixerScratch = model.mixer.newScratch(B, L);
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
    int BT = B * L, D = c.hiddenSize;

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
      BlockWeights lw = w.blocks[l];
      BlockWeights g = grads.blocks[l];
      LayerBuffers a = ws.layer(l);
      // x_out = x_in + mixer(rmsnorm(x_in)): dx flows through unchanged, plus the mixer's path
      Arrays.fill(dxNorm, 0f);
      model.mixer.backward(dxNorm, g, dx, a.xNorm, lw, a.mixer, mixerScratch, B, L);
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
