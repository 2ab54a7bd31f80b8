package org.mambaspark.model;

/**
 * Buffers for forwards over up to B·L positions, reused across calls (one Workspace per thread: it
 * is not thread-safe; the model itself is immutable and shared). An inference workspace holds one
 * {@link LayerBuffers} for all layers and grows to the largest B·L seen; a training workspace
 * ({@link #forTraining}) holds one per layer, for a fixed (B, L), so that the backward pass finds
 * every activation it needs.
 */
public final class Workspace {
  final MambaConfig c;
  final Mixer mixer;
  final boolean training;

  /** Positions per scan chunk whose boundary state training saves (memory ∝ L / scanChunk). */
  final int scanChunk;

  int capacity; // B·L the buffers hold
  int batch; //    training: the fixed B
  int length; //   training: the fixed L

  float[] x; //      (BT, D)  residual stream; after the layers, norm_f's input
  float[] out; //    (BT, D)  out_proj output, added to x
  float[] rstdF; //  (BT)     norm_f's 1/rms (training)
  LayerBuffers[] layers;

  /** (BT, D): the final hidden state after norm_f, valid after {@link MambaModel#forward}. */
  public float[] hidden;

  /** (rows, V): logits scratch for scoring in row blocks. */
  float[] logits;

  public Workspace(MambaConfig c) {
    this.c = c;
    this.mixer = c.architecture.mixer(c);
    this.training = false;
    this.scanChunk = 0;
  }

  private Workspace(MambaConfig c, int B, int L, int scanChunk) {
    this.c = c;
    this.mixer = c.architecture.mixer(c);
    this.training = true;
    this.scanChunk = scanChunk;
    this.batch = B;
    this.length = L;
    allocate(B, L);
  }

  /** A workspace that keeps every layer's activations for the backward pass of batches (B, L). */
  public static Workspace forTraining(MambaConfig c, int B, int L, int scanChunk) {
    if (B <= 0 || L <= 0 || scanChunk <= 0) {
      throw new IllegalArgumentException(
          "B, L and scan chunk must be positive: " + B + ", " + L + ", " + scanChunk);
    }
    return new Workspace(c, B, L, scanChunk);
  }

  LayerBuffers layer(int l) {
    return layers[training ? l : 0];
  }

  void ensure(int B, int L) {
    int BT = B * L;
    if (training) {
      if (B != batch || L != length) {
        throw new IllegalArgumentException(
            "this training workspace is for (B, L) = ("
                + batch
                + ", "
                + length
                + "), got ("
                + B
                + ", "
                + L
                + ")");
      }
      return;
    }
    if (BT > capacity) {
      allocate(B, L);
    }
  }

  private void allocate(int B, int L) {
    int BT = B * L, D = c.hiddenSize;
    if ((long) BT * c.inProjSize() > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(
          "batch × length = "
              + (long) B * L
              + " positions is too large for one"
              + " forward; split it (the state carries across pieces)");
    }
    x = new float[BT * D];
    out = new float[BT * D];
    hidden = new float[BT * D];
    rstdF = training ? new float[BT] : null;
    layers = new LayerBuffers[training ? c.numLayers : 1];
    for (int l = 0; l < layers.length; l++) {
      layers[l] =
          new LayerBuffers(
              c, mixer, training ? B : 1, training ? L : BT, training, Math.max(1, scanChunk));
    }
    capacity = BT;
  }

  float[] logits(int rows) {
    int need = rows * c.vocabSize;
    if (logits == null || logits.length < need) {
      logits = new float[need];
    }
    return logits;
  }
}
