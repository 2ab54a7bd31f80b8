package org.mambaspark.spark;

import java.io.Externalizable;
import java.io.IOException;
import java.io.ObjectInput;
import java.io.ObjectOutput;

/**
 * One slice of the sharded optimizer: the slice's weights and both AdamW moments, where the slice's
 * reducer runs. Raw little-endian floats when cached serialized, checkpointed or collected.
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

  /** A copy to update: a cached shard is never changed in place (a recomputation reads it). */
  OptimizerShard copy() {
    return new OptimizerShard(slice, w.clone(), m.clone(), v.clone());
  }

  @Override
  public void writeExternal(ObjectOutput out) throws IOException {
    out.writeInt(slice);
    out.writeInt(w.length);
    for (float[] a : new float[][] {w, m, v}) {
      WireFloats.write(out, a, 0, a.length, false);
    }
  }

  @Override
  public void readExternal(ObjectInput in) throws IOException {
    slice = in.readInt();
    int n = in.readInt();
    w = new float[n];
    m = new float[n];
    v = new float[n];
    for (float[] a : new float[][] {w, m, v}) {
      WireFloats.read(in, a, 0, n, false);
    }
  }
}
