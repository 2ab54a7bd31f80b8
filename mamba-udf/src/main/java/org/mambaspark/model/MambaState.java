package org.mambaspark.model;

import java.util.Arrays;

/**
 * The recurrent state of B sequences, O(1) in their length: per layer the last K-1 conv inputs and
 * the SSM state h. Carrying it from one call of {@link MambaModel#forward} to the next makes the
 * pieces equal one pass; it is what prefill leaves behind for generation.
 */
public final class MambaState {
  public final int batch;

  /**
   * Per layer (B, C, K-1): the last K-1 inputs of the causal conv, oldest first; C = {@link
   * MambaConfig#convChannels} (ED, or ED + 2GN for Mamba-2).
   */
  private final float[][] conv;

  /**
   * Per layer B·N·ED floats: the SSM state h, in its mixer's layout (Mamba-1: (B, N, ED),
   * transposed from HF's (B, ED, N), see SelectiveScan; Mamba-2: (B, H, P, N) as HF).
   */
  private final float[][] ssm;

  /**
   * Non-null while a device holds the newest values (the host arrays are then stale). Volatile: a
   * device may bring the values home from another thread (to reuse its buffer), and a reader that
   * then sees null must see the arrays it wrote.
   */
  private volatile Holder holder;

  /**
   * A device backend that keeps a state between calls instead of copying it back after each (a
   * decode step would otherwise move the whole state both ways).
   */
  public interface Holder {
    /**
     * Copies the state's newest values from the device into {@link #hostConv}, {@link #hostSsm} and
     * clears the holder ({@code heldBy(null)}), atomically with respect to the device's other
     * calls; nothing when {@code s} is no longer held here (brought home meanwhile).
     */
    void download(MambaState s);
  }

  public MambaState(MambaConfig c, int batch) {
    if (batch <= 0) {
      throw new IllegalArgumentException("batch must be positive, got " + batch);
    }
    this.batch = batch;
    int ED = c.intermediateSize;
    conv = new float[c.numLayers][batch * c.convChannels() * (c.convKernel - 1)];
    ssm = new float[c.numLayers][batch * c.stateSize * ED];
  }

  public int layers() {
    return conv.length;
  }

  /** Layer l's conv state (B, C, K-1), current: brought back from a device that holds it. */
  public float[] conv(int l) {
    toHost();
    return conv[l];
  }

  /** Layer l's SSM state (B·N·ED), current: brought back from a device that holds it. */
  public float[] ssm(int l) {
    toHost();
    return ssm[l];
  }

  /** Brings the newest values into the host arrays (nothing to do unless a device holds them). */
  public void toHost() {
    Holder h = holder;
    if (h != null) {
      h.download(this);
    }
  }

  /** For a device backend: the newest values are now on {@code h}, the host arrays stale. */
  public void heldBy(Holder h) {
    holder = h;
  }

  /** The device holding the newest values, or null when the host arrays are current. */
  public Holder holder() {
    return holder;
  }

  /** For a device backend's {@link Holder#download}: layer l's conv array, as it is. */
  public float[] hostConv(int l) {
    return conv[l];
  }

  /** For a device backend's {@link Holder#download}: layer l's SSM array, as it is. */
  public float[] hostSsm(int l) {
    return ssm[l];
  }

  /** Back to the empty history (all zeros), as at the start of a sequence. */
  public void reset() {
    holder = null; // whatever a device holds is superseded
    for (float[] a : conv) {
      Arrays.fill(a, 0f);
    }
    for (float[] a : ssm) {
      Arrays.fill(a, 0f);
    }
  }

  public long bytes() {
    long n = 0;
    for (int i = 0; i < conv.length; i++) {
      n += conv[i].length + ssm[i].length;
    }
    return 4 * n;
  }
}
