package org.mambaspark.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mambaspark.io.IoTestSupport.assertMentions;
import static org.mambaspark.io.IoTestSupport.floats;
import static org.mambaspark.io.IoTestSupport.shorts;
import static org.mambaspark.io.IoTestSupport.writeRaw;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reading safetensors: fixtures, every dtype's conversion, multi-window mapping, and each kind of
 * corrupt file.
 */
class SafetensorsFileTest {
  @TempDir Path tmp;

  @Test
  void readsFixtureInFileOrderAndMatchesRawBytes() throws IOException {
    Path file = IoTestSupport.fixtureModel("tiny").resolve("model.safetensors");
    byte[] raw = Files.readAllBytes(file); // 96 KiB: fine for an independent check
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
    long dataStart = 8 + b.getLong(0);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      List<String> names = new ArrayList<>(f.names());
      assertEquals(22, names.size());
      assertEquals("backbone.embeddings.weight", names.get(0));
      assertEquals("backbone.norm_f.weight", names.get(names.size() - 1));
      assertEquals(Map.of("format", "pt"), f.metadata());
      TensorInfo conv = f.info("backbone.layers.0.mixer.conv1d.weight");
      assertEquals("F32", conv.dtype());
      assertArrayEquals(new long[] {64, 1, 4}, conv.shape());
      assertEquals(256, conv.numel());
      int checked = 0;
      for (String name : names) {
        TensorInfo t = f.info(name);
        float[] v = f.readFloats(name);
        assertEquals(t.numel(), v.length, name);
        for (int i = 0; i < v.length; i += 7) {
          float expected = b.getFloat((int) (dataStart + t.begin() + 4L * i));
          assertEquals(
              Float.floatToRawIntBits(expected),
              Float.floatToRawIntBits(v[i]),
              name + "[" + i + "]");
          checked++;
        }
      }
      System.out.println(
          "tiny fixture: 22 tensors in file order, " + checked + " values equal the raw bytes");
    }
  }

  @Test
  void readsI64FromExpectedFixture() {
    try (SafetensorsFile f =
        SafetensorsFile.open(IoTestSupport.fixtures().resolve("tiny/expected.safetensors"))) {
      long[] ids = f.readLongs("input_ids");
      assertArrayEquals(new long[] {2, 24}, f.info("input_ids").shape());
      assertTrue(
          Arrays.stream(ids).allMatch(t -> t >= 0 && t < 128), "token ids within the vocabulary");
      long[] prompt = f.readLongs("generate.prompt");
      long[] output = f.readLongs("generate.output");
      assertArrayEquals(
          prompt, Arrays.copyOf(output, prompt.length), "generation output starts with the prompt");
      System.out.println(
          "expected.safetensors: I64 input_ids "
              + ids.length
              + " ids, prompt "
              + Arrays.toString(prompt));
    }
  }

  @Test
  void smallWindowsReadTheSameAsOneMapping() {
    // the tiny fixture: a mapping a 24-byte window stays mapped until a collection, and the small
    // fixture's 1.6 MB would need more than the 65,530 mappings a process may hold
    Path file = IoTestSupport.fixtureModel("tiny").resolve("model.safetensors");
    int tensors = 0;
    try (SafetensorsFile whole = SafetensorsFile.open(file);
        SafetensorsFile pieces = SafetensorsFile.open(file, 24)) {
      for (String name : whole.names()) {
        float[] a = whole.readFloats(name);
        float[] b = pieces.readFloats(name);
        assertEquals(0, IoTestSupport.bitDifferences(a, b), name);
        tensors++;
      }
    }
    // An F32 tensor at an odd byte offset, read through 8-byte windows.
    Path odd =
        writeRaw(
            tmp.resolve("odd.safetensors"),
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[3,23]}}",
            concat(new byte[] {7, 8, 9}, floats(1f, -2f, 3.5f, 1e-30f, Float.MAX_VALUE)));
    try (SafetensorsFile f = SafetensorsFile.open(odd, 8)) {
      assertArrayEquals(new long[] {7, 8, 9}, f.readLongs("a"));
      assertArrayEquals(new float[] {1f, -2f, 3.5f, 1e-30f, Float.MAX_VALUE}, f.readFloats("b"));
    }
    System.out.println(
        "24-byte and 8-byte windows: "
            + tensors
            + " tiny-fixture tensors bit-identical;"
            + " odd offset ok");
  }

  @Test
  void f16ToFloatExactIncludingSubnormalsInfNan() {
    int[] bits = {
      0x0000, 0x8000, 0x3c00, 0xc000, 0x7bff, 0x0400, 0x0001, 0x03ff, 0x8001, 0x3555, 0x7c00,
      0xfc00, 0x7e00, 0x7c01
    };
    float[] expected = {
      0f,
      -0f,
      1f,
      -2f,
      65504f,
      0x1p-14f,
      0x1p-24f,
      1023 * 0x1p-24f,
      -0x1p-24f,
      0.33325195f,
      Float.POSITIVE_INFINITY,
      Float.NEGATIVE_INFINITY,
      Float.NaN,
      Float.NaN
    };
    float[] got = readOne("F16", bits);
    for (int i = 0; i < bits.length; i++) {
      if (Float.isNaN(expected[i])) {
        assertTrue(Float.isNaN(got[i]), "0x" + Integer.toHexString(bits[i]) + " is NaN");
      } else {
        assertEquals(
            Float.floatToRawIntBits(expected[i]),
            Float.floatToRawIntBits(got[i]),
            "0x" + Integer.toHexString(bits[i]) + " -> " + got[i]);
      }
    }
    // All 65536 halves against the textbook formula, evaluated in double.
    int[] all = new int[65536];
    for (int h = 0; h < all.length; h++) {
      all[h] = h;
    }
    float[] every = readOne("F16", all);
    int finite = 0;
    for (int h = 0; h < 65536; h++) {
      int exp = (h >>> 10) & 0x1f;
      int mant = h & 0x3ff;
      double sign = (h & 0x8000) != 0 ? -1 : 1;
      if (exp == 0x1f) {
        assertEquals(mant == 0, Float.isInfinite(every[h]), "inf/nan " + h);
        assertEquals(mant != 0, Float.isNaN(every[h]), "inf/nan " + h);
        continue;
      }
      double ref =
          exp == 0
              ? sign * Math.scalb((double) mant, -24)
              : sign * Math.scalb(1024.0 + mant, exp - 25);
      assertEquals(ref, every[h], 0.0, "half 0x" + Integer.toHexString(h));
      assertEquals(
          (h & 0x8000) != 0,
          (Float.floatToRawIntBits(every[h]) & 0x8000_0000) != 0,
          "sign of " + h);
      assertEquals(SafetensorsFile.f16ToFloat((short) h), every[h], 0.0);
      finite++;
    }
    System.out.println(
        "F16: 14 special values exact; all "
            + finite
            + " finite halves equal the formula exactly,"
            + " 2048 inf/NaN classified");
  }

  @Test
  void bf16ToFloatExactIncludingSubnormalsInfNan() {
    int[] bits = {
      0x0000, 0x8000, 0x3f80, 0xc000, 0x4049, 0x0001, 0x0080, 0x7f7f, 0x7f80, 0xff80, 0x7fc0
    };
    float[] expected = {
      0f,
      -0f,
      1f,
      -2f,
      3.140625f,
      0x1p-133f,
      0x1p-126f,
      0x1.fep127f,
      Float.POSITIVE_INFINITY,
      Float.NEGATIVE_INFINITY,
      Float.NaN
    };
    float[] got = readOne("BF16", bits);
    for (int i = 0; i < bits.length; i++) {
      if (Float.isNaN(expected[i])) {
        assertTrue(Float.isNaN(got[i]));
      } else {
        assertEquals(
            Float.floatToRawIntBits(expected[i]),
            Float.floatToRawIntBits(got[i]),
            "0x" + Integer.toHexString(bits[i]) + " -> " + got[i]);
      }
    }
    System.out.println(
        "BF16: " + bits.length + " values exact (zero, -0, subnormal 2^-133, max, inf, NaN)");
  }

  @Test
  void f64NarrowsToFloat() {
    ByteBuffer b = ByteBuffer.allocate(40).order(ByteOrder.LITTLE_ENDIAN);
    b.putDouble(1.0).putDouble(0.1).putDouble(1e-50).putDouble(1e39).putDouble(-3.25);
    Path file =
        writeRaw(
            tmp.resolve("f64.safetensors"),
            "{\"x\":{\"dtype\":\"F64\",\"shape\":[5],\"data_offsets\":[0,40]}}",
            b.array());
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertArrayEquals(
          new float[] {1f, 0.1f, 0f, Float.POSITIVE_INFINITY, -3.25f}, f.readFloats("x"));
    }
    System.out.println("F64: narrowed as (float) casts do (0.1 rounds, 1e-50 -> 0, 1e39 -> inf)");
  }

  @Test
  void integerDtypes() {
    ByteBuffer b = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(-5).putInt(7); // I32 [0, 8)
    b.putInt(-1); // U32 [8, 12)
    b.putShort((short) -300).putShort((short) -1); // I16 [12, 14), U16 [14, 16)
    b.put((byte) -1).put((byte) -1); // I8 [16, 17), U8 [17, 18)
    b.put((byte) 0).put((byte) 1).put((byte) 2); // BOOL [18, 21)
    String h =
        "{\"i32\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"u32\":{\"dtype\":\"U32\",\"shape\":[],\"data_offsets\":[8,12]},"
            + "\"i16\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[12,14]},"
            + "\"u16\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[14,16]},"
            + "\"i8\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[16,17]},"
            + "\"u8\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[17,18]},"
            + "\"bool\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[18,21]}}";
    try (SafetensorsFile f =
        SafetensorsFile.open(writeRaw(tmp.resolve("ints.safetensors"), h, b.array()))) {
      assertArrayEquals(new long[] {-5, 7}, f.readLongs("i32"));
      assertArrayEquals(new long[] {4294967295L}, f.readLongs("u32"));
      assertArrayEquals(new long[] {-300}, f.readLongs("i16"));
      assertArrayEquals(new long[] {65535}, f.readLongs("u16"));
      assertArrayEquals(new long[] {-1}, f.readLongs("i8"));
      assertArrayEquals(new long[] {255}, f.readLongs("u8"));
      assertArrayEquals(new long[] {0, 1, 1}, f.readLongs("bool"));
      assertMentions(
          assertThrows(CheckpointException.class, () -> f.readFloats("i32")),
          "ints.safetensors",
          "i32",
          "I32");
    }
    System.out.println(
        "I32, U32, I16, U16, I8, U8, BOOL read as longs with the right sign handling");
  }

  @Test
  void wrongKindMissingNameAndClosedFile() {
    Path file = IoTestSupport.fixtureModel("tiny").resolve("model.safetensors");
    SafetensorsFile f = SafetensorsFile.open(file);
    assertMentions(
        assertThrows(CheckpointException.class, () -> f.readLongs("backbone.norm_f.weight")),
        "model.safetensors",
        "backbone.norm_f.weight",
        "F32");
    assertMentions(
        assertThrows(CheckpointException.class, () -> f.info("nope")), "model.safetensors", "nope");
    assertMentions(
        assertThrows(
            CheckpointException.class, () -> f.readFloats("backbone.norm_f.weight", new float[3])),
        "model.safetensors",
        "backbone.norm_f.weight",
        "32");
    f.close();
    assertMentions(
        assertThrows(CheckpointException.class, () -> f.readFloats("backbone.norm_f.weight")),
        "model.safetensors",
        "backbone.norm_f.weight",
        "closed");
  }

  // ---- corrupt files: each refused at open, naming the file (and tensor) ----

  @Test
  void missingFileOrDirectory() {
    assertMentions(
        assertThrows(CheckpointException.class, () -> SafetensorsFile.open(tmp.resolve("gone.st"))),
        "gone.st",
        "no such file");
    assertMentions(
        assertThrows(CheckpointException.class, () -> SafetensorsFile.open(tmp)), tmp.toString());
  }

  @Test
  void fileShorterThan8Bytes() {
    Path file = IoTestSupport.write(tmp.resolve("short.safetensors"), new byte[] {1, 2, 3, 4, 5});
    assertMentions(
        assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file)),
        "short.safetensors",
        "5 bytes");
  }

  @Test
  void absurdHeaderLength() {
    for (long n : new long[] {1L << 40, -1L, SafetensorsFile.MAX_HEADER_BYTES + 1}) {
      ByteBuffer b = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN).putLong(n);
      Path file = IoTestSupport.write(tmp.resolve("absurd.safetensors"), b.array());
      assertMentions(
          assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file)),
          "absurd.safetensors",
          "header length " + Long.toUnsignedString(n),
          "absurd");
    }
  }

  @Test
  void headerLongerThanFile() {
    ByteBuffer b = ByteBuffer.allocate(40).order(ByteOrder.LITTLE_ENDIAN).putLong(1000);
    Path file = IoTestSupport.write(tmp.resolve("cut.safetensors"), b.array());
    assertMentions(
        assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file)),
        "cut.safetensors",
        "header length 1000",
        "truncated");
  }

  @Test
  void garbageHeaderJson() {
    Path file =
        writeRaw(tmp.resolve("garbage.safetensors"), "{\"a\": {\"dtype\": F32 ]]", new byte[0]);
    assertMentions(
        assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file)),
        "garbage.safetensors",
        "not valid JSON");
    Path binary =
        writeRaw(tmp.resolve("binary.safetensors"), "\u0000\u0001\u0002\u0003", new byte[0]);
    assertMentions(
        assertThrows(CheckpointException.class, () -> SafetensorsFile.open(binary)),
        "binary.safetensors",
        "not valid JSON");
    Path array = writeRaw(tmp.resolve("array.safetensors"), "[1, 2]  ", new byte[0]);
    assertMentions(
        assertThrows(CheckpointException.class, () -> SafetensorsFile.open(array)),
        "array.safetensors",
        "not a JSON object");
    Path dup =
        writeRaw(
            tmp.resolve("dup.safetensors"),
            "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                + "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
            new byte[1]);
    assertMentions(
        assertThrows(CheckpointException.class, () -> SafetensorsFile.open(dup)),
        "dup.safetensors",
        "Duplicate field 'a'");
  }

  @Test
  void badEntries() {
    String[][] cases = {
      {"\"a\": 5", "header entry must be an object"},
      {"\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}", "\"dtype\" must be a string"},
      {"\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}", "\"shape\" must be"},
      {"\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}", "\"shape\" must be"},
      {"\"a\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}", "\"shape\" must be"},
      {"\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}", "\"data_offsets\" must be"},
      {
        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.0,4]}",
        "\"data_offsets\" must be"
      },
      {
        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}",
        "\"data_offsets\" must be"
      },
      {
        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999999]}",
        "\"data_offsets\" must be"
      },
      {"\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}", "end before begin"},
      {"\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}", "needs 12"},
      {
        "\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}",
        "overflows"
      },
      {"\"__metadata__\":{\"format\":1}", "__metadata__.format must be a string"},
      {"\"__metadata__\":[1]", "__metadata__ must be an object"},
    };
    for (String[] c : cases) {
      Path file = writeRaw(tmp.resolve("bad.safetensors"), "{" + c[0] + "}", new byte[16]);
      CheckpointException e =
          assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file), c[0]);
      if (c[0].startsWith("\"a\"")) {
        assertMentions(e, "bad.safetensors", "tensor 'a'", c[1]);
      } else {
        assertMentions(e, "bad.safetensors", c[1]);
      }
    }
  }

  @Test
  void unsupportedDtype() {
    Path file =
        writeRaw(
            tmp.resolve("f8.safetensors"),
            "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}",
            new byte[4]);
    assertMentions(
        assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file)),
        "f8.safetensors",
        "tensor 'w'",
        "unsupported dtype 'F8_E4M3'");
  }

  @Test
  void offsetsOutsideTheFile() {
    Path file =
        writeRaw(
            tmp.resolve("outside.safetensors"),
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}",
            new byte[16]);
    assertMentions(
        assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file)),
        "outside.safetensors",
        "tensor 'w'",
        "[0, 400]",
        "beyond the data section");
  }

  @Test
  void overlappingTensors() {
    Path file =
        writeRaw(
            tmp.resolve("overlap.safetensors"),
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
            new byte[24]);
    assertMentions(
        assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file)),
        "overlap.safetensors",
        "'a'",
        "'b'",
        "overlap");
    // Empty tensors share no bytes, and gaps are tolerated.
    Path ok =
        writeRaw(
            tmp.resolve("gaps.safetensors"),
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
            floats(1, 2, 3, 4));
    try (SafetensorsFile f = SafetensorsFile.open(ok)) {
      assertArrayEquals(new float[0], f.readFloats("a"));
      assertArrayEquals(new float[] {4}, f.readFloats("c"));
    }
  }

  @Test
  void truncatedFileCaughtAtOpen() throws IOException {
    Path file = tmp.resolve("trunc.safetensors");
    new SafetensorsWriter()
        .addFloats("first", new long[] {8}, new float[8])
        .addFloats("last", new long[] {2, 8}, new float[16])
        .write(file);
    try (RandomAccessFile r = new RandomAccessFile(file.toFile(), "rw")) {
      r.setLength(r.length() - 10);
    }
    assertMentions(
        assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file)),
        "trunc.safetensors",
        "tensor 'last'",
        "truncated");
  }

  /**
   * A sparse 3 GiB file: a U8 tensor too long for a Java array (refused at read, no
   * OutOfMemoryError), followed by an F32 tensor beyond the 2 GiB mark (mapped at a long position
   * and read).
   */
  @Test
  void tensorsBeyond2GiB() throws IOException {
    long big = 3L << 30;
    String header =
        "{\"big\":{\"dtype\":\"U8\",\"shape\":["
            + big
            + "],\"data_offsets\":[0,"
            + big
            + "]},"
            + "\"after\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":["
            + big
            + ","
            + (big + 12)
            + "]}}";
    Path file = writeRaw(tmp.resolve("sparse.safetensors"), header, new byte[0]);
    long dataStart = Files.size(file);
    try (RandomAccessFile r = new RandomAccessFile(file.toFile(), "rw")) {
      r.setLength(dataStart + big + 12); // sparse: no disk used for the hole
      r.seek(dataStart + big);
      r.write(floats(1.5f, -2.5f, 42f));
    }
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertArrayEquals(new float[] {1.5f, -2.5f, 42f}, f.readFloats("after"));
      assertMentions(
          assertThrows(CheckpointException.class, () -> f.readLongs("big")),
          "sparse.safetensors",
          "tensor 'big'",
          "more than a Java array holds");
    }
    System.out.println(
        "3 GiB sparse file: tensor at byte offset "
            + big
            + " read; 3 GiB U8 tensor refused cleanly");
  }

  private float[] readOne(String dtype, int[] bits) {
    Path file =
        writeRaw(
            tmp.resolve(dtype + ".safetensors"),
            "{\"x\":{\"dtype\":\""
                + dtype
                + "\",\"shape\":["
                + bits.length
                + "],\"data_offsets\":[0,"
                + 2 * bits.length
                + "]}}",
            shorts(bits));
    try (SafetensorsFile f = SafetensorsFile.open(file, 64)) { // several windows
      return f.readFloats("x");
    }
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
