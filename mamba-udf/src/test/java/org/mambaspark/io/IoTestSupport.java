package org.mambaspark.io;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.NamedTensor;

/**
 * Shared helpers for the io tests: where the fixtures are, raw safetensors bytes, whole-file
 * copies.
 */
final class IoTestSupport {
  private IoTestSupport() {}

  /**
   * The repository's fixtures/: system property {@code mamba.fixtures} (set by surefire), else
   * ../fixtures from the module directory.
   */
  static Path fixtures() {
    String prop = System.getProperty("mamba.fixtures");
    if (prop != null && !prop.isEmpty() && Files.isDirectory(Paths.get(prop))) {
      return Paths.get(prop);
    }
    Path fallback = Paths.get("../fixtures");
    if (!Files.isDirectory(fallback)) {
      fail(
          "fixtures not found: -Dmamba.fixtures="
              + prop
              + " and "
              + fallback.toAbsolutePath()
              + " are missing");
    }
    return fallback;
  }

  static Path fixtureModel(String name) {
    return fixtures().resolve(name).resolve("model");
  }

  /** A safetensors file from a header string (not padded) and raw data bytes. */
  static Path writeRaw(Path file, String header, byte[] data) {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(h.length).put(h).put(data);
    return write(file, b.array());
  }

  static Path write(Path file, byte[] bytes) {
    try {
      return Files.write(file, bytes);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Little-endian bytes of shorts (raw F16 / BF16 bit patterns). */
  static byte[] shorts(int... bits) {
    ByteBuffer b = ByteBuffer.allocate(2 * bits.length).order(ByteOrder.LITTLE_ENDIAN);
    for (int v : bits) {
      b.putShort((short) v);
    }
    return b.array();
  }

  static byte[] floats(float... v) {
    ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float f : v) {
      b.putFloat(f);
    }
    return b.array();
  }

  /** A tensor read from or written to a test file. */
  static final class T {
    final long[] shape;
    final float[] data;

    T(long[] shape, float[] data) {
      this.shape = shape;
      this.data = data;
    }
  }

  /** Every tensor of a safetensors file, in file order. */
  static Map<String, T> readAll(Path file) {
    Map<String, T> out = new LinkedHashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      for (String name : f.names()) {
        out.put(name, new T(f.info(name).shape(), f.readFloats(name)));
      }
    }
    return out;
  }

  static void writeAll(Path file, Map<String, T> tensors) {
    SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
    for (Map.Entry<String, T> e : tensors.entrySet()) {
      w.addFloats(e.getKey(), e.getValue().shape, e.getValue().data);
    }
    w.write(file);
  }

  /** A copy of a fixture model directory (config.json + model.safetensors) in {@code dir}. */
  static Path copyModel(String fixture, Path dir) {
    try {
      Files.createDirectories(dir);
      for (String name : new String[] {Checkpoint.CONFIG, Checkpoint.WEIGHTS}) {
        // Bytes, not Files.copy: that would keep the fixtures' read-only mode.
        Files.write(dir.resolve(name), Files.readAllBytes(fixtureModel(fixture).resolve(name)));
      }
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Fills every parameter with reproducible N(0, 1) values. */
  static MambaWeights randomize(MambaWeights w, long seed) {
    Random r = new Random(seed);
    for (NamedTensor p : w.parameters()) {
      for (int i = 0; i < p.data.length; i++) {
        p.data[i] = (float) r.nextGaussian();
      }
    }
    return w;
  }

  /** Asserts the message names every given part (file name, tensor, field, ...); prints it. */
  static void assertMentions(Throwable e, String... parts) {
    String m = e.getMessage();
    for (String p : parts) {
      assertTrue(m.contains(p), "message should mention '" + p + "': " + m);
    }
    System.out.println("  refused as expected: " + m);
  }

  /** Largest |a - b|, printed by the tests; NaN if the lengths differ. */
  static double maxAbsDiff(float[] a, float[] b) {
    if (a.length != b.length) {
      return Double.NaN;
    }
    double m = 0;
    for (int i = 0; i < a.length; i++) {
      m = Math.max(m, Math.abs((double) a[i] - b[i]));
    }
    return m;
  }

  /** Number of positions whose raw float bits differ. */
  static int bitDifferences(float[] a, float[] b) {
    int n = Math.abs(a.length - b.length);
    for (int i = 0; i < Math.min(a.length, b.length); i++) {
      if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i])) {
        n++;
      }
    }
    return n;
  }
}
