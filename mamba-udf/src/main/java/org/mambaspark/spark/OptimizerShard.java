package org.mambaspark.spark;

import java.io.Externalizable;
import java.io.IOException;
import java.io.ObjectInput;
import java.io.ObjectOutput;

/**
 * One slice of the sharded optimizer: the slice's weights and both AdamW moments, where the slice's
 * reducer runs. Raw little-endian floats when cached serialized, checkpointed or collected; a
 * starting shard of a fresh run goes without its (zero) moments.
 */
public final class OptimizerShard implements Externalizable {
  private static final long serialVersionUID = 1L;

  int slice;
  float[] w;
  float[] m;
  float[] v;

  public OptimizerShard() {} // Externalizable

  OptimizerShard(int slice, float[] w, float[] m, float[] v) {
    this.slice = slice;
    this.w = w;
    this.m = m;
    this.v = v;
  }

  /** The arrays of a shard with its moments: w, m, v. */
  static final int ARRAYS = 3;

  /**
   * The shard an update writes into, zeros of this one's size in fresh arrays: a cached shard is
   * never changed in place (a recomputation reads it).
   */
  OptimizerShard successor() {
    return new OptimizerShard(slice, new float[w.length], new float[w.length], new float[w.length]);
  }

  /**
   * {@link #successor()} for an update of {@code step}, its fresh arrays allocated ahead when
   * {@code spares} has them ready.
   */
  OptimizerShard successor(SpareArrays spares, Object step) {
    float[][] a = spares.take(step, ARRAYS, w.length);
    return new OptimizerShard(slice, a[0], a[1], a[2]);
  }

  @Override
  public void writeExternal(ObjectOutput out) throws IOException {
    out.writeInt(slice);
    out.writeInt(w.length);
    out.writeBoolean(m != null);
    for (float[] a : m != null ? new float[][] {w, m, v} : new float[][] {w}) {
      WireFloats.write(out, a, 0, a.length, false);
    }
  }

  @Override
  public void readExternal(ObjectInput in) throws IOException {
    slice = in.readInt();
    int n = in.readInt();
    boolean moments = in.readBoolean();
    w = new float[n];
    m = moments ? new float[n] : null;
    v = moments ? new float[n] : null;
    for (float[] a : moments ? new float[][] {w, m, v} : new float[][] {w}) {
      WireFloats.read(in, a, 0, n, false);
    }
  }
}
