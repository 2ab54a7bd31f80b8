package org.mambaspark.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.mambaspark.model.NamedTensor;

/**
 * Writes a safetensors file from tensors added in order: F32 from float[], I64 from long[]. The
 * layout is the one the reference implementation writes: 8-byte little-endian header length N, the
 * compact JSON header (with {@code __metadata__} first when there is any) padded with spaces so
 * that N is a multiple of 8, then the tensors back to back in the order added, so {@code
 * data_offsets} are contiguous from 0.
 *
 * <p>The file is replaced atomically (temporary file in the same directory, then rename), and the
 * data streams through a 1 MiB direct buffer: nothing the size of the file is built in memory. The
 * writer keeps references to the arrays it is given; they must not change until {@link #write}
 * returns.
 *
 * <pre>
 *   new SafetensorsWriter().metadata("format", "pt").addFloats("w", new long[] {2, 3}, w).write(path);
 * </pre>
 */
public final class SafetensorsWriter {
  private static final int BUFFER_BYTES = 1 << 20;

  private final Map<String, String> metadata = new LinkedHashMap<>();
  private final Map<String, Entry> tensors = new LinkedHashMap<>();

  /**
   * One tensor to write: at most one of floats / longs is non-null; neither for an F32 tensor whose
   * data the caller streams after {@link #prefix}.
   */
  private static final class Entry {
    final long[] shape;
    final float[] floats;
    final long[] longs;
    final long numel;

    Entry(long[] shape, float[] floats, long[] longs, long numel) {
      this.shape = shape;
      this.floats = floats;
      this.longs = longs;
      this.numel = numel;
    }

    String dtype() {
      return longs == null ? "F32" : "I64";
    }

    long byteLength() {
      return (longs == null ? 4L : 8L) * numel;
    }
  }

  /** Adds a {@code __metadata__} entry, e.g. ("format", "pt"), which transformers expects. */
  public SafetensorsWriter metadata(String key, String value) {
    if (key == null || value == null) {
      throw new IllegalArgumentException("metadata key and value must not be null");
    }
    metadata.put(key, value);
    return this;
  }

  /** Adds an F32 tensor; {@code data.length} must equal the product of {@code shape}. */
  public SafetensorsWriter addFloats(String name, long[] shape, float[] data) {
    checkNew(name, shape, data.length);
    tensors.put(name, new Entry(shape.clone(), data, null, data.length));
    return this;
  }

  /** Adds an I64 tensor; {@code data.length} must equal the product of {@code shape}. */
  public SafetensorsWriter addLongs(String name, long[] shape, long[] data) {
    checkNew(name, shape, data.length);
    tensors.put(name, new Entry(shape.clone(), null, data, data.length));
    return this;
  }

  /**
   * Declares an F32 tensor without its data: the caller writes {@link #prefix} and then every
   * declared tensor's floats, little-endian, in the order declared (a file assembled from pieces
   * that no one process holds together). {@link #write} refuses a writer with declared tensors.
   */
  public SafetensorsWriter declareFloats(String name, long[] shape) {
    long numel = 1;
    for (long d : shape) {
      numel *= d;
    }
    checkNew(name, shape, numel);
    tensors.put(name, new Entry(shape.clone(), null, null, numel));
    return this;
  }

  /** The file's bytes before the data: the 8-byte header length and the header. */
  public byte[] prefix() {
    byte[] header = header();
    ByteBuffer b = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(header.length).put(header);
    return b.array();
  }

  /** The size of the whole file: prefix and data. */
  public long fileSize() {
    long n = prefix().length;
    for (Entry e : tensors.values()) {
      n += e.byteLength();
    }
    return n;
  }

  /** Adds a parameter under its checkpoint name, as F32. */
  public SafetensorsWriter add(NamedTensor t) {
    return addFloats(t.name, t.shape, t.data);
  }

  private void checkNew(String name, long[] shape, long length) {
    if (name == null || name.isEmpty() || name.equals(SafetensorsFile.METADATA_KEY)) {
      throw new IllegalArgumentException("invalid tensor name: " + name);
    }
    if (tensors.containsKey(name)) {
      throw new IllegalArgumentException("tensor '" + name + "' added twice");
    }
    long numel = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException(
            "tensor '" + name + "': negative dimension in " + Arrays.toString(shape));
      }
      try {
        numel = Math.multiplyExact(numel, d);
      } catch (ArithmeticException e) {
        throw new IllegalArgumentException(
            "tensor '" + name + "': shape " + Arrays.toString(shape) + " overflows");
      }
    }
    if (numel != length) {
      throw new IllegalArgumentException(
          "tensor '"
              + name
              + "': shape "
              + Arrays.toString(shape)
              + " is "
              + numel
              + " elements, data has "
              + length);
    }
  }

  /** Writes the file, replacing any existing one atomically. */
  public void write(Path file) {
    for (Map.Entry<String, Entry> e : tensors.entrySet()) {
      if (e.getValue().floats == null && e.getValue().longs == null) {
        throw new IllegalStateException(
            "tensor '" + e.getKey() + "' was declared without data: stream it after prefix()");
      }
    }
    byte[] header = header();
    AtomicFiles.write(
        file,
        ch -> {
          ByteBuffer buf = ByteBuffer.allocateDirect(BUFFER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
          buf.putLong(header.length);
          buf.flip();
          AtomicFiles.writeFully(ch, buf);
          AtomicFiles.writeFully(ch, ByteBuffer.wrap(header));
          for (Entry e : tensors.values()) {
            if (e.floats != null) {
              writeFloats(ch, buf, e.floats);
            } else {
              writeLongs(ch, buf, e.longs);
            }
          }
        });
  }

  /** The JSON header, space-padded to a multiple of 8 bytes. */
  byte[] header() {
    Map<String, Object> root = new LinkedHashMap<>();
    if (!metadata.isEmpty()) {
      root.put(SafetensorsFile.METADATA_KEY, metadata);
    }
    long offset = 0;
    for (Map.Entry<String, Entry> e : tensors.entrySet()) {
      Entry t = e.getValue();
      Map<String, Object> info = new LinkedHashMap<>();
      info.put("dtype", t.dtype());
      info.put("shape", t.shape);
      info.put("data_offsets", new long[] {offset, offset + t.byteLength()});
      root.put(e.getKey(), info);
      offset += t.byteLength();
    }
    byte[] json = Json.compact(root);
    int padded = (json.length + 7) / 8 * 8;
    byte[] out = Arrays.copyOf(json, padded);
    Arrays.fill(out, json.length, padded, (byte) ' ');
    return out;
  }

  /** Names in the order they will be written. */
  public List<String> names() {
    return new ArrayList<>(tensors.keySet());
  }

  private static void writeFloats(FileChannel ch, ByteBuffer buf, float[] data) throws IOException {
    FloatBuffer view = buf.clear().asFloatBuffer();
    int chunk = view.capacity();
    for (int i = 0; i < data.length; i += chunk) {
      int n = Math.min(chunk, data.length - i);
      view.clear();
      view.put(data, i, n);
      buf.clear().limit(4 * n);
      AtomicFiles.writeFully(ch, buf);
    }
  }

  private static void writeLongs(FileChannel ch, ByteBuffer buf, long[] data) throws IOException {
    LongBuffer view = buf.clear().asLongBuffer();
    int chunk = view.capacity();
    for (int i = 0; i < data.length; i += chunk) {
      int n = Math.min(chunk, data.length - i);
      view.clear();
      view.put(data, i, n);
      buf.clear().limit(8 * n);
      AtomicFiles.writeFully(ch, buf);
    }
  }

  @Override
  public String toString() {
    return "SafetensorsWriter{" + tensors.size() + " tensors, metadata " + metadata + "}";
  }
}
