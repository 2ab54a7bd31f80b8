package org.mambaspark.model;

/**
 * Scratch buffers for one forward over BT = B·L positions, reused across layers and calls (one per thread: a
 * Workspace is not thread-safe). Grows to the largest BT seen; the model itself is immutable and shared.
 */
public final class Workspace {
  final MambaConfig c;
  int capacity; // BT the buffers hold

  float[] x; //      (BT, D)      residual stream
  float[] xNorm; //  (BT, D)      rmsnorm output
  float[] xz; //     (BT, 2ED)    in_proj output: [x | z]
  float[] xs; //     (BT, ED)     conv + silu output, the scan's u
  float[] dbc; //    (BT, R+2N)   x_proj output: [Δ rank | B | C]
  float[] delta; //  (BT, ED)     softplus(dt_proj(Δ rank))
  float[] y; //      (BT, ED)     gated scan output
  float[] out; //    (BT, D)      out_proj output, added to x
  /** (BT, D): the final hidden state after norm_f, valid after {@link MambaModel#forward}. */
  public float[] hidden;
  /** (rows, V): logits scratch for scoring in row blocks. */
  float[] logits;

  public Workspace(MambaConfig c) {
    this.c = c;
  }

  void ensure(int BT) {
    if (BT <= capacity) {
      return;
    }
    int D = c.hiddenSize, ED = c.intermediateSize, P = c.xProjSize();
    long need = (long) BT * 2 * ED;
    if (need > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("batch × length = " + BT + " positions is too large for one forward;"
          + " split it (the state carries across pieces)");
    }
    x = new float[BT * D];
    xNorm = new float[BT * D];
    xz = new float[BT * 2 * ED];
    xs = new float[BT * ED];
    dbc = new float[BT * P];
    delta = new float[BT * ED];
    y = new float[BT * ED];
    out = new float[BT * D];
    hidden = new float[BT * D];
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
