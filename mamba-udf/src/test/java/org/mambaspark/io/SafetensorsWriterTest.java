package org.mambaspark.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Writing safetensors: the byte layout the spec asks for, round trips, atomic replacement, argument
 * checks.
 */
class SafetensorsWriterTest {
  @TempDir Path tmp;

  @Test
  void roundTripKeepsOrderMetadataAndEveryBit() {
    float[] special = {
      0f,
      -0f,
      1f,
      Float.MIN_VALUE,
      -Float.MIN_NORMAL / 3,
      Float.MAX_VALUE,
      Float.POSITIVE_INFINITY,
      Float.NEGATIVE_INFINITY,
      Float.intBitsToFloat(0x7fc0_1234)
    };
    long[] ids = {0, -1, Long.MAX_VALUE, Long.MIN_VALUE, 50279};
    float[] big = new float[300_001]; // more than the 1 MiB staging buffer, not a multiple of it
    for (int i = 0; i < big.length; i++) {
      big[i] = (float) Math.sin(i * 0.001) * i;
    }
    Path file = tmp.resolve("rt.safetensors");
    new SafetensorsWriter()
        .metadata("format", "pt")
        .metadata("note", "ünïcode")
        .addFloats("z.special", new long[] {3, 3}, special)
        .addLongs("a.ids", new long[] {5}, ids)
        .addFloats("m.big", new long[] {300_001}, big)
        .addFloats("scalar", new long[] {}, new float[] {7f})
        .addFloats("empty", new long[] {0, 4}, new float[0])
        .write(file);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertEquals(
          List.of("z.special", "a.ids", "m.big", "scalar", "empty"), List.copyOf(f.names()));
      assertEquals(Map.of("format", "pt", "note", "ünïcode"), f.metadata());
      assertEquals(
          0,
          IoTestSupport.bitDifferences(special, f.readFloats("z.special")),
          "raw bits incl. NaN payload");
      assertArrayEquals(ids, f.readLongs("a.ids"));
      assertEquals(0, IoTestSupport.bitDifferences(big, f.readFloats("m.big")));
      assertArrayEquals(new long[] {}, f.info("scalar").shape());
      assertArrayEquals(new float[] {7f}, f.readFloats("scalar"));
      assertArrayEquals(new long[] {0, 4}, f.info("empty").shape());
      assertEquals(0, f.readFloats("empty").length);
    }
    System.out.println(
        "writer round trip: 5 tensors (F32, I64, 1.2 MB, scalar, empty) bit-identical, metadata kept");
  }

  @Test
  void layoutFollowsTheSpec() throws IOException {
    Path file = tmp.resolve("layout.safetensors");
    new SafetensorsWriter()
        .metadata("format", "pt")
        .addFloats("a", new long[] {3}, new float[] {1, 2, 3})
        .addLongs("b", new long[] {1, 2}, new long[] {4, 5})
        .addFloats("c", new long[] {1}, new float[] {6})
        .write(file);
    byte[] raw = Files.readAllBytes(file);
    long n = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    assertEquals(0, n % 8, "header length is a multiple of 8");
    String header = new String(raw, 8, (int) n, StandardCharsets.UTF_8);
    assertTrue(header.startsWith("{\"__metadata__\":{\"format\":\"pt\"}"), header);
    String trimmed = header.replaceAll(" +$", "");
    assertTrue(
        trimmed.endsWith("}") && header.length() - trimmed.length() < 8,
        "space padded: [" + header + "]");
    JsonNode root = Json.MAPPER.readTree(header);
    long expectedBegin = 0;
    for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
      String name = it.next();
      if (name.equals("__metadata__")) {
        continue;
      }
      JsonNode off = root.get(name).get("data_offsets");
      assertEquals(
          expectedBegin, off.get(0).longValue(), name + " begins where the previous ended");
      expectedBegin = off.get(1).longValue();
    }
    assertEquals(12 + 16 + 4, expectedBegin);
    assertEquals(
        8 + n + expectedBegin, raw.length, "file = length field + header + data, nothing else");
    System.out.println(
        "layout: header "
            + n
            + " bytes (multiple of 8, space padded), offsets contiguous: "
            + header);
  }

  @Test
  void replacesAtomicallyAndLeavesNoTemporaryFiles() throws IOException {
    Path file = tmp.resolve("w.safetensors");
    new SafetensorsWriter().addFloats("x", new long[] {1}, new float[] {1}).write(file);
    new SafetensorsWriter().addFloats("y", new long[] {2}, new float[] {2, 3}).write(file);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertEquals(List.of("y"), List.copyOf(f.names()));
    }
    // A failing write leaves the old file in place and no temporary behind.
    float[] wrong = new float[2];
    SafetensorsWriter bad = new SafetensorsWriter();
    bad.addFloats("z", new long[] {2}, wrong);
    Path dirAsTarget = tmp.resolve("sub");
    Files.createDirectories(dirAsTarget.resolve("occupied"));
    assertThrows(
        CheckpointException.class,
        () -> bad.write(dirAsTarget)); // a non-empty directory: rename fails
    try (Stream<Path> s = Files.list(tmp)) {
      List<String> names =
          s.map(p -> p.getFileName().toString()).sorted().collect(Collectors.toList());
      assertEquals(List.of("sub", "w.safetensors"), names);
    }
    System.out.println(
        "atomic replace: second write replaced the first; failed write left no temporary file");
  }

  @Test
  void rejectsInconsistentArguments() {
    SafetensorsWriter w = new SafetensorsWriter().addFloats("a", new long[] {2}, new float[2]);
    assertThrows(
        IllegalArgumentException.class, () -> w.addFloats("a", new long[] {2}, new float[2]));
    assertThrows(
        IllegalArgumentException.class, () -> w.addFloats("b", new long[] {3}, new float[2]));
    assertThrows(
        IllegalArgumentException.class, () -> w.addFloats("c", new long[] {-1, -2}, new float[2]));
    assertThrows(
        IllegalArgumentException.class,
        () -> w.addLongs("__metadata__", new long[] {1}, new long[1]));
    assertThrows(IllegalArgumentException.class, () -> w.addLongs("", new long[] {1}, new long[1]));
    assertThrows(
        IllegalArgumentException.class,
        () -> w.addFloats("d", new long[] {1L << 40, 1L << 40}, new float[2]));
    assertEquals(List.of("a"), w.names());
    System.out.println(
        "writer refuses duplicate names, shape/data mismatch, negative dims, overflow, reserved names");
  }
}
