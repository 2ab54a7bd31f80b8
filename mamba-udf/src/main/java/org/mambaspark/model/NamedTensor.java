package org.mambaspark.model;

import java.util.Arrays;

/** A parameter (or gradient) by its checkpoint name, with its shape and its flat row-major data. */
public final class NamedTensor {
  public final String name;
  public final long[] shape;
  public final float[] data;

  public NamedTensor(String name, long[] shape, float[] data) {
    this.name = name;
    this.shape = shape;
    this.data = data;
  }

  public long numel() {
    long n = 1;
    for (long s : shape) {
      n *= s;
    }
    return n;
  }

  @Override
  public String toString() {
    return name + Arrays.toString(shape);
  }
}
