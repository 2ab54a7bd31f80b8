package org.mambaspark.train;

import java.io.Serializable;
import java.util.List;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.NamedTensor;
import org.mambaspark.ops.Parallel;

/**
 * The parameters as one flat vector (the tensors of {@link MambaWeights#parameters()} end to end,
 * in that order) cut into S contiguous slices of near-equal length: the unit a sharded optimizer
 * owns, sums gradients of and ships. A slice may start or end inside a tensor; each slice is a list
 * of segments (tensor, offset in the tensor, offset in the slice, length). Built from the parameter
 * walk alone, so any architecture's weights slice the same way.
 */
public final class ParameterSlices implements Serializable {
  private static final long serialVersionUID = 1L;

  /**
   * The longest default slice: 64 Mi floats (256 MB). A training task holds all of its executor's
   * cores, so an executor reduces and updates its slices one after another: few long slices keep
   * the per-task cost (scheduling, a result, a cache entry) small next to the work.
   */
  public static final int DEFAULT_SLICE_FLOATS = 1 << 26;

  private final long[] tensorStart; // T+1 flat offsets of the tensors
  private final boolean[] decays; //   T: AdamW's weight-decay rule per tensor
  private final long[] sliceStart; //  S+1 flat offsets of the slices

  private ParameterSlices(long[] tensorStart, boolean[] decays, int count) {
    long n = tensorStart[tensorStart.length - 1];
    if (count < 1 || count > n) {
      throw new IllegalArgumentException(
          "slices: need 1 <= count <= " + n + " parameters, got " + count);
    }
    this.tensorStart = tensorStart;
    this.decays = decays;
    this.sliceStart = new long[count + 1];
    for (int s = 0; s <= count; s++) {
      sliceStart[s] = n * s / count;
    }
    if (n / count + 1 > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(
          n + " parameters in " + count + " slices: slices too long");
    }
  }

  /** The weights' parameters in {@code count} slices (0 = {@link #defaultCount} for one owner). */
  public static ParameterSlices of(MambaWeights w, int count) {
    return of(w.parameters(), count);
  }

  /**
   * The parameters named and shaped by {@code ps} ({@link MambaWeights#shapes}: no data needed) in
   * {@code count} slices (0 = {@link #defaultCount} for one owner).
   */
  public static ParameterSlices of(List<NamedTensor> ps, int count) {
    return of(ps, count, 1);
  }

  /**
   * {@link #of(List, int)} for slices shared by {@code owners} executors: with count 0, {@link
   * #defaultCount} for them.
   */
  public static ParameterSlices of(List<NamedTensor> ps, int count, int owners) {
    long[] start = new long[ps.size() + 1];
    boolean[] decays = new boolean[ps.size()];
    for (int i = 0; i < ps.size(); i++) {
      start[i + 1] = start[i] + ps.get(i).numel();
      decays[i] = AdamW.decays(ps.get(i));
    }
    long n = start[ps.size()];
    return new ParameterSlices(start, decays, count > 0 ? count : defaultCount(n, owners));
  }

  /**
   * The default slice count for n parameters shared by {@code owners} executors: slices of at most
   * {@link #DEFAULT_SLICE_FLOATS}, as many as a multiple of the owners so that each gets an equal
   * share (and at most one slice per parameter).
   */
  static int defaultCount(long n, int owners) {
    long o = Math.max(1, owners);
    long perOwner = (n + o * DEFAULT_SLICE_FLOATS - 1) / (o * DEFAULT_SLICE_FLOATS);
    return (int) Math.max(1, Math.min(n, o * perOwner));
  }

  public int count() {
    return sliceStart.length - 1;
  }

  public long parameters() {
    return tensorStart[tensorStart.length - 1];
  }

  /** The slice's first element in the flat vector. */
  public long start(int slice) {
    return sliceStart[slice];
  }

  public int length(int slice) {
    return (int) (sliceStart[slice + 1] - sliceStart[slice]);
  }

  /** What a segment of a slice does: tensor index, offset in it, offset in the slice, length. */
  @FunctionalInterface
  public interface SegmentBody {
    void run(int tensor, int tensorOffset, int sliceOffset, int length);
  }

  /** Walks the segments of a slice in order. */
  public void forEachSegment(int slice, SegmentBody body) {
    forEachSegment(slice, 0, length(slice), body);
  }

  /** Walks the segments of the slice's elements [from, to) in order. */
  public void forEachSegment(int slice, int from, int to, SegmentBody body) {
    long first = sliceStart[slice], start = first + from, end = first + to;
    for (int t = tensorOf(start); start < end; t++) {
      long stop = Math.min(end, tensorStart[t + 1]);
      if (stop > start) {
        body.run(t, (int) (start - tensorStart[t]), (int) (start - first), (int) (stop - start));
      }
      start = stop;
    }
  }

  /** The slice's elements [from, to) held in the tensors, as runs of them. */
  public Gradients.Pieces pieces(float[][] tensors, int slice) {
    return (from, to, run) ->
        forEachSegment(slice, from, to, (t, off, at, n) -> run.accept(tensors[t], off, at, n));
  }

  /** The slice's elements of the tensors (parameters() order), copied into dst. */
  public void copyOut(float[][] tensors, int slice, float[] dst) {
    forEachSegment(slice, (t, to, so, n) -> System.arraycopy(tensors[t], to, dst, so, n));
  }

  /** The slice's elements of the tensors, as a new array. */
  public float[] copyOut(float[][] tensors, int slice) {
    float[] dst = new float[length(slice)];
    copyOut(tensors, slice, dst);
    return dst;
  }

  /** Writes src (the slice's elements) into the tensors, on the engine's threads. */
  public void copyIn(float[] src, int slice, float[][] tensors) {
    Parallel.forRange(
        length(slice),
        1 << 20,
        (lo, hi) ->
            forEachSegment(
                slice, lo, hi, (t, to, so, n) -> System.arraycopy(src, so, tensors[t], to, n)));
  }

  /**
   * AdamW step t (1-based) on one slice: p, m, v hold the slice's elements, read, and the step is
   * written to pOut, mOut, vOut (p, m, v themselves for an update in place; other arrays keep a
   * cached state as it was); g is the slice's gradient wherever it lies (one array, or the tensors
   * it was computed in), scaled by gScale as it is read (the token count's inverse and a clipping
   * coefficient, so the gradient is not copied to be scaled). Each segment decays as its tensor
   * would ({@link AdamW#decays}).
   */
  public void adamw(
      int slice,
      AdamW.Settings h,
      long t,
      float lr,
      float[] p,
      float[] m,
      float[] v,
      Gradients.Pieces g,
      float gScale,
      float[] pOut,
      float[] mOut,
      float[] vOut) {
    forEachSegment(
        slice,
        (tensor, to, so, n) ->
            g.forEach(
                so,
                so + n,
                (ga, gOff, at, k) ->
                    AdamW.update(
                        h,
                        t,
                        lr,
                        decays[tensor],
                        p,
                        m,
                        v,
                        ga,
                        gOff - at,
                        gScale,
                        pOut,
                        mOut,
                        vOut,
                        at,
                        at + k)));
  }

  /** The data arrays of the weights' parameters, in parameters() order. */
  public static float[][] arrays(MambaWeights w) {
    List<NamedTensor> ps = w.parameters();
    float[][] a = new float[ps.size()][];
    for (int i = 0; i < a.length; i++) {
      a[i] = ps.get(i).data;
    }
    return a;
  }

  private int tensorOf(long flat) {
    int lo = 0, hi = tensorStart.length - 2;
    while (lo < hi) { // the last tensor whose start is <= flat
      int mid = (lo + hi + 1) >>> 1;
      if (tensorStart[mid] <= flat) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return lo;
  }
}
