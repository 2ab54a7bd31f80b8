package org.mambaspark.io;

import java.util.Arrays;

/**
 * One tensor entry of a safetensors header: its dtype name ("F32", "BF16", "I64", ...), its shape,
 * and its byte range [begin, end) relative to the start of the data section (the header's {@code
 * data_offsets}). Entries come out of {@link SafetensorsFile} already validated, so {@code end -
 * begin == numel * dtype size}.
 */
public final class TensorInfo {
  private final String name;
  private final String dtype;
  private final long[] shape;
  private final long numel;
  private final long begin;
  private final long end;

  TensorInfo(String name, String dtype, long[] shape, long numel, long begin, long end) {
    this.name = name;
    this.dtype = dtype;
    this.shape = shape.clone();
    this.numel = numel;
    this.begin = begin;
    this.end = end;
  }

  public String name() {
    return name;
  }

  public String dtype() {
    return dtype;
  }

  /** A copy of the shape; {@code []} for a scalar. */
  public long[] shape() {
    return shape.clone();
  }

  public long numel() {
    return numel;
  }

  /** First byte, relative to the data section. */
  public long begin() {
    return begin;
  }

  /** One past the last byte, relative to the data section. */
  public long end() {
    return end;
  }

  public long byteLength() {
    return end - begin;
  }

  @Override
  public String toString() {
    return name + " " + dtype + Arrays.toString(shape) + " @[" + begin + ", " + end + ")";
  }
}
