package org.mambaspark.model;

/**
 * One layer's intermediate tensors over BT = B·L positions: the block's own (the pre-norm) and its
 * mixer's. Inference reuses one set for every layer; training keeps a set per layer (llm.c's
 * activation tensors), with the extra fields the backward pass needs.
 */
final class LayerBuffers {
  final float[] xNorm; // (BT, D)  rmsnorm output, the mixer's input
  final Mixer.Buffers mixer; //    the mixer's activations
  // Saved for the backward pass only (null in inference):
  final float[] xIn; //   (BT, D)  the residual stream entering the layer
  final float[] rstd; //  (BT)     1/rms of xIn

  LayerBuffers(MambaConfig c, Mixer m, int B, int L, boolean training, int scanChunk) {
    int BT = B * L, D = c.hiddenSize;
    xNorm = new float[BT * D];
    mixer = m.newActivations(B, L, training, scanChunk);
    xIn = training ? new float[BT * D] : null;
    rstd = training ? new float[BT] : null;
  }
}
