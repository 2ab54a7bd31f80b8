package org.mambaspark.model;

/**
 * One layer's intermediate tensors over BT = B·L positions. Inference reuses one set for every
 * layer; training keeps a set per layer (llm.c's activation tensors), with the extra fields the
 * backward pass needs.
 */
final class LayerBuffers {
  final float[] xNorm; //   (BT, D)      rmsnorm output, in_proj's input
  final float[] xz; //      (BT, 2ED)    in_proj output: [x | z]
  final float[] xs; //      (BT, ED)     conv + silu output, the scan's u
  final float[] dbc; //     (BT, R+2N)   x_proj output: [Δ rank | B | C]
  final float[] delta; //   (BT, ED)     softplus(dt_proj(Δ rank))
  final float[] y; //       (BT, ED)     gated scan output, out_proj's input
  final float[] aT; //      (N, ED)      A = -exp(A_log)ᵀ of this layer
  // Saved for the backward pass only (null in inference):
  final float[] xIn; //     (BT, D)      the residual stream entering the layer
  final float[] rstd; //    (BT)         1/rms of xIn
  final float[] convPre; // (BT, ED)     conv output before silu
  final float[] dtPre; //   (BT, ED)     dt_proj output before softplus
  final float[] hChunks; // (B, chunks, N, ED) scan states at chunk boundaries

  LayerBuffers(MambaConfig c, int B, int L, boolean training, int scanChunk) {
    int BT = B * L, D = c.hiddenSize, ED = c.intermediateSize, P = c.xProjSize(), N = c.stateSize;
    xNorm = new float[BT * D];
    xz = new float[BT * 2 * ED];
    xs = new float[BT * ED];
    dbc = new float[BT * P];
    delta = new float[BT * ED];
    y = new float[BT * ED];
    aT = new float[N * ED];
    xIn = training ? new float[BT * D] : null;
    rstd = training ? new float[BT] : null;
    convPre = training ? new float[BT * ED] : null;
    dtPre = training ? new float[BT * ED] : null;
    hChunks = training ? new float[B * ((L + scanChunk - 1) / scanChunk) * N * ED] : null;
  }
}
