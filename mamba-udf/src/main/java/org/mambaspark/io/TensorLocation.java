package org.mambaspark.io;

import java.io.Serializable;

/**
 * Where a tensor's data lies in a checkpoint directory: the file (its name in the directory), the
 * tensor's name and dtype there, the absolute byte offset of its first element and its element
 * count. Small and serializable: a Spark driver sends these to executors, which read the byte
 * ranges they need ({@link SafetensorsFile#decodeFloats}) without anyone loading the whole file.
 */
public record TensorLocation(String file, String name, String dtype, long offset, long numel)
    implements Serializable {

  static TensorLocation of(SafetensorsFile f, String name) {
    TensorInfo t = f.info(name);
    return new TensorLocation(
        f.path().getFileName().toString(), name, t.dtype(), f.fileOffset(name), t.numel());
  }

  /** Bytes per element. */
  public int elementBytes() {
    return Dtype.valueOf(dtype).size;
  }
}
