package org.mambaspark.spark;

import java.io.DataInput;
import java.io.DataOutput;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.mambaspark.io.SafetensorsFile;

/**
 * Float arrays on the wire as raw little-endian bytes: 4 bytes a value, or 2 for bfloat16 (the
 * upper half of the float, rounded to nearest even), written through a 64 KB buffer. What the
 * training records write (when Spark moves or spills them) instead of a serializer's own encoding
 * of float arrays.
 */
final class WireFloats {
  private static final int CHUNK = 1 << 14; // floats per buffer

  private WireFloats() {}

  static void write(DataOutput out, float[] a, int off, int n, boolean bf16) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(CHUNK * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int at = off; at < off + n; at += CHUNK) {
      int k = Math.min(CHUNK, off + n - at);
      b.clear();
      if (bf16) {
        for (int j = at; j < at + k; j++) {
          b.putShort(SafetensorsFile.floatToBf16(a[j]));
        }
      } else {
        b.asFloatBuffer().put(a, at, k);
        b.position(4 * k);
      }
      out.write(b.array(), 0, b.position());
    }
  }

  static void read(DataInput in, float[] a, int off, int n, boolean bf16) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(CHUNK * 4).order(ByteOrder.LITTLE_ENDIAN);
    int width = bf16 ? 2 : 4;
    for (int at = off; at < off + n; at += CHUNK) {
      int k = Math.min(CHUNK, off + n - at);
      in.readFully(b.array(), 0, k * width);
      b.clear();
      if (bf16) {
        for (int j = at; j < at + k; j++) {
          a[j] = SafetensorsFile.bf16ToFloat(b.getShort());
        }
      } else {
        b.asFloatBuffer().get(a, at, k);
      }
    }
  }
}
