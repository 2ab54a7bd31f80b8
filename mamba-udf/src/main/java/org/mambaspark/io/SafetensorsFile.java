package org.mambaspark.io;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.IntBuffer;
import java.nio.ShortBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.mambaspark.ops.Bf16;

/**
 * Read access to one safetensors file (https://huggingface.co/docs/safetensors): an unsigned 64-bit
 * little-endian header length N, N bytes of UTF-8 JSON ({@code {name: {"dtype", "shape",
 * "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}}), then the data section; offsets
 * are relative to its start, data little-endian.
 *
 * <p>Why memory-mapped: checkpoints run to gigabytes; a mapping copies straight from the page cache
 * into the destination array, with no byte[] of the file in between. Each read maps only that
 * tensor's bytes, in windows of at most 1 GiB (a MappedByteBuffer is int-indexed), so a tensor of
 * more than 2 GiB of bytes reads too.
 *
 * <p>Why so much checking in {@link #open}: the header is untrusted input. Every claim it makes
 * (lengths, dtypes, shapes, offsets inside the file, no overlaps) is verified up front, so a
 * truncated or corrupt file fails there with a {@link CheckpointException} naming the file and
 * tensor, instead of later as a BufferUnderflowException, an OutOfMemoryError or a fault in mapped
 * memory. Gaps between tensors and trailing bytes are tolerated.
 *
 * <p>Reads are thread-safe. {@link #close} closes the channel. No mapping is referenced after a
 * read returns; the garbage collector unmaps it (Java 17 has no explicit unmap), so virtual address
 * space, not heap, is what lingers.
 */
public final class SafetensorsFile implements AutoCloseable {
  /** The reference implementation's limit on N. */
  static final long MAX_HEADER_BYTES = 100_000_000L;

  /**
   * Largest mapping per window; a multiple of every dtype size, so no element straddles two
   * windows.
   */
  static final int DEFAULT_WINDOW_BYTES = 1 << 30;

  /** Largest Java array the common VMs allocate. */
  static final int MAX_ARRAY_LENGTH = Integer.MAX_VALUE - 8;

  static final String METADATA_KEY = "__metadata__";

  private final Path path;
  private final FileChannel channel;
  private final long dataStart; // 8 + N: absolute position of data offset 0
  private final long dataLength; // bytes from dataStart to the end of the file, as seen at open
  private final int windowBytes;
  private final Map<String, TensorInfo> tensors; // in header order
  private final Map<String, String> metadata;

  private SafetensorsFile(
      Path path,
      FileChannel channel,
      long dataStart,
      long dataLength,
      int windowBytes,
      Map<String, TensorInfo> tensors,
      Map<String, String> metadata) {
    this.path = path;
    this.channel = channel;
    this.dataStart = dataStart;
    this.dataLength = dataLength;
    this.windowBytes = windowBytes;
    this.tensors = Collections.unmodifiableMap(tensors);
    this.metadata = Collections.unmodifiableMap(metadata);
  }

  /**
   * Opens and validates a safetensors file; throws {@link CheckpointException} if it is not a sound
   * one.
   */
  public static SafetensorsFile open(Path path) {
    return open(path, DEFAULT_WINDOW_BYTES);
  }

  /**
   * As {@link #open(Path)} with a smaller mapping window, so tests can exercise multi-window reads.
   */
  static SafetensorsFile open(Path path, int windowBytes) {
    if (windowBytes <= 0 || windowBytes % 8 != 0) {
      throw new IllegalArgumentException(
          "window must be a positive multiple of 8 bytes: " + windowBytes);
    }
    FileChannel ch;
    try {
      ch = FileChannel.open(path, StandardOpenOption.READ);
    } catch (NoSuchFileException e) {
      throw new CheckpointException(path, "no such file", e);
    } catch (IOException e) {
      throw new CheckpointException(path, "cannot open: " + e, e);
    }
    boolean ok = false;
    try {
      SafetensorsFile f = parse(path, ch, windowBytes);
      ok = true;
      return f;
    } finally {
      if (!ok) {
        closeQuietly(ch);
      }
    }
  }

  private static SafetensorsFile parse(Path path, FileChannel ch, int windowBytes) {
    long fileSize;
    try {
      fileSize = ch.size();
    } catch (IOException e) {
      throw new CheckpointException(path, "cannot read file size: " + e, e);
    }
    if (fileSize < 8) {
      throw new CheckpointException(
          path,
          "file is "
              + fileSize
              + " bytes, too short for the 8-byte header length;"
              + " not a safetensors file, or truncated");
    }
    ByteBuffer lengthField = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    readFully(path, ch, lengthField, 0);
    long n = lengthField.getLong(0); // unsigned on disk: negative here means >= 2^63
    if (n < 0 || n > MAX_HEADER_BYTES) {
      throw new CheckpointException(
          path,
          "header length "
              + Long.toUnsignedString(n)
              + " is absurd (limit "
              + MAX_HEADER_BYTES
              + " bytes); not a safetensors file, or corrupt");
    }
    if (n > fileSize - 8) {
      throw new CheckpointException(
          path,
          "header length "
              + n
              + " exceeds the "
              + (fileSize - 8)
              + " bytes after the length field; file truncated, or not a safetensors file");
    }
    ByteBuffer headerBytes = ByteBuffer.allocate((int) n);
    readFully(path, ch, headerBytes, 8);
    JsonNode root = Json.parse(path, headerBytes.array(), "safetensors header");
    if (!root.isObject()) {
      throw new CheckpointException(
          path, "safetensors header is not a JSON object (found " + root.getNodeType() + ")");
    }

    long dataStart = 8 + n;
    long dataLength = fileSize - dataStart;
    Map<String, TensorInfo> tensors = new LinkedHashMap<>();
    Map<String, String> metadata = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      if (e.getKey().equals(METADATA_KEY)) {
        parseMetadata(path, e.getValue(), metadata);
      } else {
        TensorInfo t = parseEntry(path, e.getKey(), e.getValue(), dataLength);
        tensors.put(t.name(), t);
      }
    }
    checkNoOverlap(path, tensors.values());
    return new SafetensorsFile(path, ch, dataStart, dataLength, windowBytes, tensors, metadata);
  }

  private static void parseMetadata(Path path, JsonNode node, Map<String, String> out) {
    if (!node.isObject()) {
      throw new CheckpointException(
          path, METADATA_KEY + " must be an object of strings, found " + node.getNodeType());
    }
    for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      if (!e.getValue().isTextual()) {
        throw new CheckpointException(
            path, METADATA_KEY + "." + e.getKey() + " must be a string, found " + e.getValue());
      }
      out.put(e.getKey(), e.getValue().textValue());
    }
  }

  private static TensorInfo parseEntry(Path path, String name, JsonNode node, long dataLength) {
    String where = "tensor '" + name + "': ";
    if (!node.isObject()) {
      throw new CheckpointException(path, where + "header entry must be an object, found " + node);
    }
    JsonNode dtypeNode = node.get("dtype");
    if (dtypeNode == null || !dtypeNode.isTextual()) {
      throw new CheckpointException(path, where + "\"dtype\" must be a string, found " + dtypeNode);
    }
    Dtype dtype = Dtype.parse(dtypeNode.textValue());
    if (dtype == null) {
      throw new CheckpointException(
          path,
          where
              + "unsupported dtype '"
              + dtypeNode.textValue()
              + "' (supported: "
              + Dtype.supportedNames()
              + ")");
    }
    long[] shape = nonNegativeLongs(path, where, node.get("shape"), "shape", -1);
    long[] offsets = nonNegativeLongs(path, where, node.get("data_offsets"), "data_offsets", 2);
    long begin = offsets[0];
    long end = offsets[1];

    long numel = 1;
    long bytes;
    try {
      for (long d : shape) {
        numel = Math.multiplyExact(numel, d);
      }
      bytes = Math.multiplyExact(numel, (long) dtype.size);
    } catch (ArithmeticException e) {
      throw new CheckpointException(
          path,
          where
              + "shape "
              + Arrays.toString(shape)
              + " has too many elements"
              + " (overflows a 64-bit count)");
    }
    if (end < begin) {
      throw new CheckpointException(
          path, where + "data_offsets [" + begin + ", " + end + "] end before begin");
    }
    if (end > dataLength) {
      throw new CheckpointException(
          path,
          where
              + "data_offsets ["
              + begin
              + ", "
              + end
              + "] reach beyond the data"
              + " section, which has "
              + dataLength
              + " bytes; file truncated or header corrupt");
    }
    if (end - begin != bytes) {
      throw new CheckpointException(
          path,
          where
              + "data_offsets ["
              + begin
              + ", "
              + end
              + "] span "
              + (end - begin)
              + " bytes, but shape "
              + Arrays.toString(shape)
              + " of "
              + dtype
              + " needs "
              + bytes);
    }
    return new TensorInfo(name, dtype.name(), shape, numel, begin, end);
  }

  /**
   * A JSON array of integers in [0, 2^63); of exactly {@code length} elements unless that is -1.
   */
  private static long[] nonNegativeLongs(
      Path path, String where, JsonNode node, String field, int length) {
    String expected =
        length < 0
            ? "an array of non-negative integers"
            : "an array of " + length + " non-negative integers";
    if (node == null || !node.isArray() || (length >= 0 && node.size() != length)) {
      throw new CheckpointException(
          path, where + "\"" + field + "\" must be " + expected + ", found " + node);
    }
    long[] out = new long[node.size()];
    for (int i = 0; i < out.length; i++) {
      JsonNode v = node.get(i);
      if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
        throw new CheckpointException(
            path, where + "\"" + field + "\" must be " + expected + ", found " + node);
      }
      out[i] = v.longValue();
    }
    return out;
  }

  private static void checkNoOverlap(Path path, Iterable<TensorInfo> all) {
    List<TensorInfo> sorted = new ArrayList<>();
    for (TensorInfo t : all) {
      if (t.byteLength() > 0) { // an empty range shares no byte with anything
        sorted.add(t);
      }
    }
    sorted.sort(
        (a, b) ->
            a.begin() != b.begin()
                ? Long.compare(a.begin(), b.begin())
                : Long.compare(a.end(), b.end()));
    TensorInfo reach = null; // the tensor reaching furthest so far
    for (TensorInfo t : sorted) {
      if (reach != null && t.begin() < reach.end()) {
        throw new CheckpointException(
            path,
            "tensors '"
                + reach.name()
                + "' ["
                + reach.begin()
                + ", "
                + reach.end()
                + ") and '"
                + t.name()
                + "' ["
                + t.begin()
                + ", "
                + t.end()
                + ") overlap");
      }
      if (reach == null || t.end() > reach.end()) {
        reach = t;
      }
    }
  }

  public Path path() {
    return path;
  }

  /** Tensor names in header order ({@code __metadata__} excluded). */
  public Set<String> names() {
    return tensors.keySet();
  }

  public boolean contains(String name) {
    return tensors.containsKey(name);
  }

  /** The header entry of a tensor; throws if the file has none of that name. */
  public TensorInfo info(String name) {
    TensorInfo t = tensors.get(name);
    if (t == null) {
      throw new CheckpointException(path, "no tensor named '" + name + "'");
    }
    return t;
  }

  /**
   * The {@code __metadata__} string map (empty when the header has none), e.g. {@code {"format":
   * "pt"}}.
   */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** A floating-point tensor (F32, F16, BF16, F64) as a new float[] in row-major order. */
  public float[] readFloats(String name) {
    TensorInfo t = requireKind(name, true);
    float[] out = new float[arrayLength(t)];
    readInto(t, out, null);
    return out;
  }

  /**
   * As {@link #readFloats(String)}, into {@code dst}, whose length must equal the tensor's element
   * count.
   */
  public void readFloats(String name, float[] dst) {
    TensorInfo t = requireKind(name, true);
    if (dst.length != t.numel()) {
      throw new CheckpointException(
          path,
          "tensor '"
              + name
              + "' has "
              + t.numel()
              + " elements "
              + Arrays.toString(t.shape())
              + ", destination array has "
              + dst.length);
    }
    readInto(t, dst, null);
  }

  /** The absolute position in the file of the tensor's first byte. */
  public long fileOffset(String name) {
    return dataStart + info(name).begin();
  }

  /**
   * Decodes {@code count} little-endian elements of a floating dtype ("F32", "F16", "BF16", "F64")
   * from {@code src}'s position on into dst[off ...]: for bytes read elsewhere than through this
   * class (a range of a tensor from a Hadoop stream).
   */
  public static void decodeFloats(String dtype, ByteBuffer src, float[] dst, int off, int count) {
    Dtype d = Dtype.valueOf(dtype);
    if (!d.floating) {
      throw new IllegalArgumentException("not a floating dtype: " + dtype);
    }
    decodeFloats(d, src.slice().order(ByteOrder.LITTLE_ENDIAN), dst, off, count);
  }

  /**
   * An integer or boolean tensor (I64, I32, I16, I8, U32, U16, U8, BOOL as 0/1) as a new long[].
   */
  public long[] readLongs(String name) {
    TensorInfo t = requireKind(name, false);
    long[] out = new long[arrayLength(t)];
    readInto(t, null, out);
    return out;
  }

  private TensorInfo requireKind(String name, boolean floating) {
    TensorInfo t = info(name);
    if (Dtype.valueOf(t.dtype()).floating != floating) {
      throw new CheckpointException(
          path,
          "tensor '"
              + name
              + "' has dtype "
              + t.dtype()
              + "; "
              + (floating
                  ? "readFloats reads F64, F32, F16, BF16"
                  : "readLongs reads I64, I32, I16, I8, U32, U16, U8," + " BOOL"));
    }
    return t;
  }

  private int arrayLength(TensorInfo t) {
    if (t.numel() > MAX_ARRAY_LENGTH) {
      throw new CheckpointException(
          path,
          "tensor '"
              + t.name()
              + "' has "
              + t.numel()
              + " elements "
              + Arrays.toString(t.shape())
              + ", more than a Java array holds ("
              + MAX_ARRAY_LENGTH
              + ")");
    }
    return (int) t.numel();
  }

  /**
   * Maps the tensor's bytes window by window and decodes each into floats or longs (exactly one is
   * non-null).
   */
  private void readInto(TensorInfo t, float[] floats, long[] longs) {
    Dtype dtype = Dtype.valueOf(t.dtype());
    try {
      long size = channel.size();
      if (size < dataStart + t.end()) {
        throw new CheckpointException(
            path,
            "tensor '"
                + t.name()
                + "': file shrank to "
                + size
                + " bytes since it was opened (data section was "
                + dataLength
                + " bytes)");
      }
      long position = dataStart + t.begin();
      long remaining = t.byteLength();
      int offset = 0; // elements decoded so far
      while (remaining > 0) {
        int bytes = (int) Math.min(remaining, windowBytes);
        ByteBuffer window =
            channel
                .map(FileChannel.MapMode.READ_ONLY, position, bytes)
                .order(ByteOrder.LITTLE_ENDIAN);
        int count = bytes / dtype.size;
        if (floats != null) {
          decodeFloats(dtype, window, floats, offset, count);
        } else {
          decodeLongs(dtype, window, longs, offset, count);
        }
        position += bytes;
        remaining -= bytes;
        offset += count;
      }
    } catch (ClosedChannelException e) {
      throw new CheckpointException(path, "tensor '" + t.name() + "': file is closed", e);
    } catch (IOException e) {
      throw new CheckpointException(path, "tensor '" + t.name() + "': cannot read: " + e, e);
    } catch (InternalError e) {
      // How the VM reports a fault in mapped memory (the file was truncated by someone else
      // mid-read).
      throw new CheckpointException(
          path,
          "tensor '"
              + t.name()
              + "': fault reading mapped file (truncated while"
              + " being read?): "
              + e.getMessage(),
          e);
    }
  }

  private static void decodeFloats(Dtype dtype, ByteBuffer src, float[] dst, int off, int count) {
    switch (dtype) {
      case F32:
        src.asFloatBuffer().get(dst, off, count);
        break;
      case F64:
        {
          DoubleBuffer d = src.asDoubleBuffer();
          for (int i = 0; i < count; i++) {
            dst[off + i] = (float) d.get(i);
          }
          break;
        }
      case F16:
        {
          ShortBuffer s = src.asShortBuffer();
          for (int i = 0; i < count; i++) {
            dst[off + i] = f16ToFloat(s.get(i));
          }
          break;
        }
      case BF16:
        {
          ShortBuffer s = src.asShortBuffer();
          for (int i = 0; i < count; i++) {
            dst[off + i] = bf16ToFloat(s.get(i));
          }
          break;
        }
      default:
        throw new IllegalStateException("not a float dtype: " + dtype);
    }
  }

  private static void decodeLongs(Dtype dtype, ByteBuffer src, long[] dst, int off, int count) {
    switch (dtype) {
      case I64:
        src.asLongBuffer().get(dst, off, count);
        break;
      case I32:
        {
          IntBuffer b = src.asIntBuffer();
          for (int i = 0; i < count; i++) {
            dst[off + i] = b.get(i);
          }
          break;
        }
      case U32:
        {
          IntBuffer b = src.asIntBuffer();
          for (int i = 0; i < count; i++) {
            dst[off + i] = b.get(i) & 0xffff_ffffL;
          }
          break;
        }
      case I16:
        {
          ShortBuffer b = src.asShortBuffer();
          for (int i = 0; i < count; i++) {
            dst[off + i] = b.get(i);
          }
          break;
        }
      case U16:
        {
          ShortBuffer b = src.asShortBuffer();
          for (int i = 0; i < count; i++) {
            dst[off + i] = b.get(i) & 0xffff;
          }
          break;
        }
      case I8:
        for (int i = 0; i < count; i++) {
          dst[off + i] = src.get(i);
        }
        break;
      case U8:
        for (int i = 0; i < count; i++) {
          dst[off + i] = src.get(i) & 0xff;
        }
        break;
      case BOOL:
        for (int i = 0; i < count; i++) {
          dst[off + i] = src.get(i) != 0 ? 1 : 0;
        }
        break;
      default:
        throw new IllegalStateException("not an integer dtype: " + dtype);
    }
  }

  /**
   * IEEE 754 binary16 to float, exactly (every half is a float). Bits: sign 1, exponent 5 (bias
   * 15), mantissa 10. Java 17 has no {@code Float.float16ToFloat} (that came in 20).
   */
  public static float f16ToFloat(short half) {
    int h = half & 0xffff;
    int sign = (h & 0x8000) << 16;
    int exp = (h >>> 10) & 0x1f;
    int mant = h & 0x3ff;
    if (exp == 0x1f) { // inf (mant 0) or NaN, payload kept in the top mantissa bits
      return Float.intBitsToFloat(sign | 0x7f80_0000 | (mant << 13));
    }
    if (exp == 0) { // zero or subnormal: mant * 2^-24, exact in float
      float v = mant * 0x1p-24f;
      return sign != 0 ? -v : v;
    }
    return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
  }

  /** float to bfloat16 ({@link Bf16#round}, the one rounding). */
  public static short floatToBf16(float x) {
    return Bf16.round(x);
  }

  /** bfloat16 to float, exactly ({@link Bf16#widen}). */
  public static float bf16ToFloat(short bf16) {
    return Bf16.widen(bf16);
  }

  @Override
  public void close() {
    try {
      channel.close();
    } catch (IOException e) {
      throw new CheckpointException(path, "cannot close: " + e, e);
    }
  }

  @Override
  public String toString() {
    return "SafetensorsFile{" + path + ", " + tensors.size() + " tensors}";
  }

  private static void readFully(Path path, FileChannel ch, ByteBuffer buf, long position) {
    try {
      long pos = position;
      while (buf.hasRemaining()) {
        int n = ch.read(buf, pos);
        if (n < 0) {
          throw new CheckpointException(path, "unexpected end of file at byte " + pos);
        }
        pos += n;
      }
    } catch (IOException e) {
      throw new CheckpointException(path, "cannot read: " + e, e);
    }
  }

  private static void closeQuietly(FileChannel ch) {
    try {
      ch.close();
    } catch (IOException ignored) {
      // already failing with a better exception
    }
  }
}
