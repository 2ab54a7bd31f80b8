package org.mambaspark.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mambaspark.io.IoTestSupport.assertMentions;
import static org.mambaspark.io.IoTestSupport.bitDifferences;
import static org.mambaspark.io.IoTestSupport.copyModel;
import static org.mambaspark.io.IoTestSupport.readAll;
import static org.mambaspark.io.IoTestSupport.writeAll;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambaspark.io.IoTestSupport.T;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.NamedTensor;

/**
 * Loading and saving whole checkpoint directories: fixtures, round trips, shards, aliases, and each
 * refusal.
 */
class CheckpointTest {
  @TempDir Path tmp;

  @Test
  void loadsEveryFixture() {
    for (String name :
        new String[] {"tiny", "small", "falcon_tiny", "mamba2_tiny", "mamba2_small"}) {
      Path dir = IoTestSupport.fixtureModel(name);
      MambaWeights w = Checkpoint.load(dir);
      assertEquals(ConfigJson.read(dir.resolve("config.json")), w.config);
      double maxDiff = 0;
      long values = 0;
      try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
        assertEquals(
            f.names().size(),
            w.parameters().size(),
            "one tensor per parameter (tied head not stored)");
        for (NamedTensor p : w.parameters()) {
          assertArrayEquals(f.info(p.name).shape(), p.shape, p.name);
          float[] ref = f.readFloats(p.name);
          assertEquals(0, bitDifferences(ref, p.data), p.name);
          maxDiff = Math.max(maxDiff, IoTestSupport.maxAbsDiff(ref, p.data));
          values += ref.length;
        }
      }
      MambaConfig c = w.config;
      assertSame(w.embeddings, w.lmHead, "tied head shares the embedding array");
      assertEquals(c.vocabSize * c.hiddenSize, w.embeddings.length);
      assertEquals(c.numLayers, w.blocks.length);
      assertEquals(
          c.numLayers, w.layers.length + w.mamba2Layers.length, "typed by the architecture");
      if (w.layers.length > 0) {
        assertEquals(2 * c.intermediateSize * c.hiddenSize, w.layers[0].inProj.length);
        assertEquals(
            c.intermediateSize * c.convKernel, w.layers[c.numLayers - 1].conv1dWeight.length);
      } else {
        assertEquals(c.inProjSize() * c.hiddenSize, w.mamba2Layers[0].inProj.length);
        assertEquals(c.numHeads, w.mamba2Layers[c.numLayers - 1].aLog.length);
      }
      System.out.printf(
          "%s: %s, %d tensors, %d values, largest difference to readFloats %.1g%n",
          name, c, w.parameters().size(), values, maxDiff);
    }
  }

  /**
   * What we save for each architecture has the fixture's (transformers') tensor names, shapes and
   * dtype, and loads back bit for bit.
   */
  @org.junit.jupiter.params.ParameterizedTest
  @org.junit.jupiter.params.provider.ValueSource(
      strings = {"tiny", "falcon_tiny", "mamba2_tiny", "mamba2_small"})
  void savedLayoutIsTheFixtures(String name) {
    Path fixture = IoTestSupport.fixtureModel(name);
    MambaWeights w = Checkpoint.load(fixture);
    Path dir = tmp.resolve(name);
    Checkpoint.save(w, dir);
    assertAllEqual(w, Checkpoint.load(dir));
    try (SafetensorsFile want = SafetensorsFile.open(fixture.resolve("model.safetensors"));
        SafetensorsFile got = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
      assertEquals(new java.util.TreeSet<>(want.names()), new java.util.TreeSet<>(got.names()));
      for (String t : want.names()) {
        assertArrayEquals(want.info(t).shape(), got.info(t).shape(), t);
        assertEquals(want.info(t).dtype(), got.info(t).dtype(), t);
      }
      System.out.printf(
          "%s: saved %d tensors, names, shapes and dtypes as the fixture's%n",
          name, got.names().size());
    }
  }

  @Test
  void mamba2InProjWithAGatedMlpIsNamed() {
    Path dir = copyModel("mamba2_tiny", tmp.resolve("dmlp"));
    Map<String, T> t = readAll(dir.resolve("model.safetensors"));
    String name = "backbone.layers.0.mixer.in_proj.weight";
    long[] shape = t.get(name).shape;
    long rows = shape[0] + 2 * 16; // a d_mlp = 16 gated MLP before z
    t.put(name, new T(new long[] {rows, shape[1]}, new float[(int) (rows * shape[1])]));
    writeAll(dir.resolve("model.safetensors"), t);
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(dir)),
        "model.safetensors",
        "'" + name + "'",
        "d_mlp = 16",
        "not supported");
  }

  @Test
  void saveThenLoadIsBitForBit() throws IOException {
    MambaWeights w = Checkpoint.load(IoTestSupport.fixtureModel("small"));
    Path dir = tmp.resolve("saved");
    Checkpoint.save(w, dir);
    MambaWeights back = Checkpoint.load(dir);
    assertEquals(w.config, back.config);
    assertAllEqual(w, back);
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
      assertEquals(Map.of("format", "pt"), f.metadata());
      assertFalse(f.contains("lm_head.weight"), "tied head stored once");
      assertArrayEquals(
          new long[] {256, 1, 4}, f.info("backbone.layers.0.mixer.conv1d.weight").shape());
      for (String name : f.names()) {
        assertEquals("F32", f.info(name).dtype());
      }
    }
    try (var files = Files.list(dir)) {
      assertEquals(2, files.count(), "config.json and model.safetensors, no temporary files");
    }
    // Saving over an existing checkpoint replaces it.
    IoTestSupport.randomize(w, 5);
    Checkpoint.save(w, dir);
    assertAllEqual(w, Checkpoint.load(dir));
    System.out.println(
        "save -> load: "
            + w.parameters().size()
            + " tensors bit-identical, twice (second overwrote)");
  }

  @Test
  void untiedHeadRoundTripAndRequired() {
    MambaConfig c = tinyConfig().toBuilder().tieWordEmbeddings(false).build();
    MambaWeights w = IoTestSupport.randomize(new MambaWeights(c), 1);
    Path dir = tmp.resolve("untied");
    Checkpoint.save(w, dir);
    MambaWeights back = Checkpoint.load(dir);
    assertFalse(back.config.tieWordEmbeddings);
    assertNotSame(back.embeddings, back.lmHead);
    assertEquals(0, bitDifferences(w.lmHead, back.lmHead));
    assertAllEqual(w, back);

    Map<String, T> tensors = readAll(dir.resolve("model.safetensors"));
    tensors.remove("lm_head.weight");
    writeAll(dir.resolve("model.safetensors"), tensors);
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(dir)),
        "model.safetensors",
        "missing tensor 'lm_head.weight'",
        "tie_word_embeddings=false");
    System.out.println(
        "untied head: saved, loaded bit-identical as its own array; refused when absent");
  }

  @Test
  void tiedCheckpointWithRedundantHeadLoadsIgnoringIt() {
    Path dir = copyModel("tiny", tmp.resolve("m"));
    Map<String, T> tensors = readAll(dir.resolve("model.safetensors"));
    T emb = tensors.get("backbone.embeddings.weight");
    float[] other = new float[emb.data.length];
    Arrays.fill(other, 9f);
    tensors.put("lm_head.weight", new T(emb.shape, other));
    writeAll(dir.resolve("model.safetensors"), tensors);
    MambaWeights w = Checkpoint.load(dir);
    assertSame(w.embeddings, w.lmHead);
    assertEquals(
        0, bitDifferences(emb.data, w.lmHead), "head is the embedding, the stored head is ignored");
    System.out.println("tied config + stored lm_head.weight: loaded, stored head ignored");
  }

  @Test
  void biasesFollowUseBiasAndUseConvBias() {
    MambaConfig c = tinyConfig().toBuilder().useBias(true).useConvBias(false).build();
    MambaWeights w = IoTestSupport.randomize(new MambaWeights(c), 2);
    Path dir = tmp.resolve("bias");
    Checkpoint.save(w, dir);
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
      assertArrayEquals(new long[] {128}, f.info("backbone.layers.1.mixer.in_proj.bias").shape());
      assertArrayEquals(new long[] {32}, f.info("backbone.layers.1.mixer.out_proj.bias").shape());
      assertFalse(f.contains("backbone.layers.0.mixer.conv1d.bias"));
    }
    MambaWeights back = Checkpoint.load(dir);
    assertTrue(back.config.useBias && !back.config.useConvBias);
    assertEquals(0, bitDifferences(w.layers[1].inProjBias, back.layers[1].inProjBias));
    assertEquals(0, bitDifferences(w.layers[1].outProjBias, back.layers[1].outProjBias));
    assertAllEqual(w, back);

    // The tiny fixture has no in_proj.bias: with use_bias=true that is a missing tensor.
    Path fixture = copyModel("tiny", tmp.resolve("fixture-bias"));
    ConfigJson.write(
        tinyConfig().toBuilder().useBias(true).build(), fixture.resolve("config.json"));
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(fixture)),
        "model.safetensors",
        "missing tensor 'backbone.layers.0.mixer.in_proj.bias'",
        "use_bias=true");
    // And the other way round: biases in the file, use_bias=false in the config.
    ConfigJson.write(c.toBuilder().useBias(false).build(), dir.resolve("config.json"));
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(dir)),
        "model.safetensors",
        "unknown tensor 'backbone.layers.0.mixer.in_proj.bias'",
        "use_bias=false");
    System.out.println(
        "use_bias / use_conv_bias: biases written, read back bit-identical, required and refused");
  }

  @Test
  void acceptsEmbeddingAliasConvWithoutMiddleDimAndBf16() throws IOException {
    Path dir = copyModel("tiny", tmp.resolve("alias"));
    MambaWeights ref = Checkpoint.load(dir);
    Map<String, T> src = readAll(dir.resolve("model.safetensors"));
    Map<String, T> renamed = new LinkedHashMap<>();
    for (Map.Entry<String, T> e : src.entrySet()) {
      T t = e.getValue();
      if (e.getKey().equals("backbone.embeddings.weight")) {
        renamed.put("backbone.embedding.weight", t);
      } else if (e.getKey().endsWith("conv1d.weight")) {
        renamed.put(e.getKey(), new T(new long[] {t.shape[0], t.shape[2]}, t.data)); // (ED, K)
      } else {
        renamed.put(e.getKey(), t);
      }
    }
    writeAll(dir.resolve("model.safetensors"), renamed);
    assertAllEqual(ref, Checkpoint.load(dir));

    renamed.put("backbone.embeddings.weight", src.get("backbone.embeddings.weight"));
    writeAll(dir.resolve("model.safetensors"), renamed);
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(dir)),
        "model.safetensors",
        "backbone.embedding.weight",
        "backbone.embeddings.weight");

    // BF16 weights (as many published checkpoints are) load, converted exactly.
    writeBf16(dir.resolve("model.safetensors"), src);
    MambaWeights bf = Checkpoint.load(dir);
    double maxRel = 0;
    for (NamedTensor p : ref.parameters()) {
      float[] got = bf.parameter(p.name).data;
      for (int i = 0; i < got.length; i++) {
        float truncated = Float.intBitsToFloat(Float.floatToRawIntBits(p.data[i]) & 0xffff_0000);
        assertEquals(truncated, got[i], 0f, p.name);
        if (p.data[i] != 0) {
          maxRel = Math.max(maxRel, Math.abs((got[i] - p.data[i]) / p.data[i]));
        }
      }
    }
    assertTrue(maxRel < 1.0 / 128, "bf16 keeps 8 significant bits");
    // any range of any tensor read where locate() says it lies gives the loaded floats (what a
    // Spark executor reads of its slice)
    List<TensorLocation> at = Checkpoint.locate(dir);
    java.util.SplittableRandom cut = new java.util.SplittableRandom(5);
    try (java.nio.channels.FileChannel ch =
        java.nio.channels.FileChannel.open(dir.resolve(Checkpoint.WEIGHTS))) {
      for (int t = 0; t < at.size(); t++) {
        float[] want = bf.parameters().get(t).data;
        int from = cut.nextInt(want.length), n = 1 + cut.nextInt(want.length - from);
        TensorLocation loc = at.get(t);
        ByteBuffer bytes = ByteBuffer.allocate(n * loc.elementBytes());
        ch.read(bytes, loc.offset() + (long) from * loc.elementBytes());
        float[] got = new float[n];
        SafetensorsFile.decodeFloats(loc.dtype(), bytes.flip(), got, 0, n);
        for (int i = 0; i < n; i++) {
          assertEquals(want[from + i], got[i], 0f, loc.name() + "[" + (from + i) + "]");
        }
      }
    }
    System.out.printf(
        "embedding alias and (ED, K) conv weights load; both embedding names refused; BF16 weights load"
            + " exactly as truncated floats (largest relative change %.2g)%n",
        maxRel);
  }

  @Test
  void shardedRoundTrip() throws IOException {
    Path dir = copyModel("small", tmp.resolve("sharded"));
    MambaWeights ref = Checkpoint.load(dir);
    Map<String, T> all = readAll(dir.resolve("model.safetensors"));
    Files.delete(dir.resolve("model.safetensors"));
    Map<String, String> weightMap = shard(dir, all, 3);
    writeIndex(dir, weightMap);
    MambaWeights w = Checkpoint.load(dir);
    assertAllEqual(ref, w);
    System.out.println(
        "3 shards + index: " + all.size() + " tensors loaded bit-identical to the single file");

    // A name mapped to a shard that lacks it.
    Map<String, String> wrong = new LinkedHashMap<>(weightMap);
    wrong.put("backbone.norm_f.weight", "model-00001-of-00003.safetensors");
    writeIndex(dir, wrong);
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(dir)),
        "model-00001-of-00003.safetensors",
        "backbone.norm_f.weight",
        "maps it to this shard");

    // A shard holding a tensor the index does not list for it.
    Map<String, String> dropped = new LinkedHashMap<>(weightMap);
    dropped.remove("backbone.norm_f.weight");
    writeIndex(dir, dropped);
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(dir)),
        "model-00003-of-00003.safetensors",
        "backbone.norm_f.weight",
        "does not map");

    // A shard escaping the directory.
    Map<String, String> escape = new LinkedHashMap<>(weightMap);
    escape.put("backbone.norm_f.weight", "../model-00003-of-00003.safetensors");
    writeIndex(dir, escape);
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(dir)),
        "index.json",
        "backbone.norm_f.weight",
        "not a file name in the checkpoint directory");

    // A missing shard file.
    writeIndex(dir, weightMap);
    Files.delete(dir.resolve("model-00002-of-00003.safetensors"));
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(dir)),
        "model-00002-of-00003.safetensors",
        "shard missing");

    // A malformed index.
    IoTestSupport.write(
        dir.resolve(Checkpoint.INDEX), "{\"weight_map\": []}".getBytes(StandardCharsets.UTF_8));
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(dir)),
        "index.json",
        "weight_map");
  }

  // ---- refusals: each names the file and the tensor ----

  @Test
  void shapeDisagreeingWithConfig() {
    Path dir = copyModel("tiny", tmp.resolve("shape"));
    Map<String, T> t = readAll(dir.resolve("model.safetensors"));
    t.put(
        "backbone.layers.1.mixer.x_proj.weight",
        new T(new long[] {64, 34}, t.get("backbone.layers.1.mixer.x_proj.weight").data));
    writeAll(dir.resolve("model.safetensors"), t);
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(dir)),
        "model.safetensors",
        "'backbone.layers.1.mixer.x_proj.weight'",
        "shape [64, 34]",
        "implies [34, 64]");
    // The same file against a config with another width.
    Path dir2 = copyModel("tiny", tmp.resolve("shape2"));
    ConfigJson.write(tinyConfig().toBuilder().stateSize(8).build(), dir2.resolve("config.json"));
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(dir2)),
        "model.safetensors",
        "shape",
        "implies");
  }

  @Test
  void missingTensor() {
    Path dir = copyModel("tiny", tmp.resolve("missing"));
    Map<String, T> t = readAll(dir.resolve("model.safetensors"));
    t.remove("backbone.layers.1.mixer.A_log");
    t.remove("backbone.norm_f.weight");
    writeAll(dir.resolve("model.safetensors"), t);
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(dir)),
        "model.safetensors",
        "missing tensor 'backbone.layers.1.mixer.A_log'",
        "1 more: backbone.norm_f.weight");
  }

  @Test
  void unknownTensor() {
    Path dir = copyModel("tiny", tmp.resolve("unknown"));
    Map<String, T> t = readAll(dir.resolve("model.safetensors"));
    t.put("backbone.layers.0.mixer.rotary.weight", new T(new long[] {2}, new float[2]));
    writeAll(dir.resolve("model.safetensors"), t);
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(dir)),
        "model.safetensors",
        "unknown tensor 'backbone.layers.0.mixer.rotary.weight'");
    t.remove("backbone.layers.0.mixer.rotary.weight");
    t.put("backbone.layers.2.norm.weight", new T(new long[] {32}, new float[32]));
    writeAll(dir.resolve("model.safetensors"), t);
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(dir)),
        "model.safetensors",
        "unknown tensor 'backbone.layers.2.norm.weight'",
        "num_hidden_layers=2");
  }

  @Test
  void integerParameterRefused() {
    Path dir = copyModel("tiny", tmp.resolve("int"));
    Map<String, T> t = readAll(dir.resolve("model.safetensors"));
    SafetensorsWriter w = new SafetensorsWriter();
    for (Map.Entry<String, T> e : t.entrySet()) {
      if (e.getKey().equals("backbone.norm_f.weight")) {
        w.addLongs(e.getKey(), e.getValue().shape, new long[e.getValue().data.length]);
      } else {
        w.addFloats(e.getKey(), e.getValue().shape, e.getValue().data);
      }
    }
    w.write(dir.resolve("model.safetensors"));
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(dir)),
        "model.safetensors",
        "'backbone.norm_f.weight'",
        "I64");
  }

  @Test
  void corruptWeightsFileNamedByLoad() throws IOException {
    Path dir = copyModel("tiny", tmp.resolve("corrupt"));
    Path file = dir.resolve("model.safetensors");
    byte[] raw = Files.readAllBytes(file);
    Files.write(file, Arrays.copyOf(raw, raw.length - 100));
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(dir)),
        "model.safetensors",
        "backbone.norm_f.weight",
        "truncated");
  }

  @Test
  void directoryProblems() throws IOException {
    Path bin = tmp.resolve("bin");
    Files.createDirectories(bin);
    Files.copy(
        IoTestSupport.fixtureModel("tiny").resolve("config.json"), bin.resolve("config.json"));
    Files.write(bin.resolve("pytorch_model.bin"), new byte[] {0x50, 0x4b});
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(bin)),
        "pytorch_model.bin",
        "needs model.safetensors");
    Files.delete(bin.resolve("pytorch_model.bin"));
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(bin)),
        "bin",
        "no model.safetensors");
    Path empty = Files.createDirectories(tmp.resolve("empty"));
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(empty)),
        "config.json",
        "missing");
    assertMentions(
        assertThrows(CheckpointException.class, () -> Checkpoint.load(tmp.resolve("nope"))),
        "nope",
        "does not exist");
  }

  // ---- helpers ----

  private static MambaConfig tinyConfig() {
    return ConfigJson.read(IoTestSupport.fixtureModel("tiny").resolve("config.json"));
  }

  private static void assertAllEqual(MambaWeights expected, MambaWeights actual) {
    List<NamedTensor> e = expected.parameters();
    List<NamedTensor> a = actual.parameters();
    assertEquals(e.size(), a.size());
    for (int i = 0; i < e.size(); i++) {
      assertEquals(e.get(i).name, a.get(i).name);
      assertArrayEquals(e.get(i).shape, a.get(i).shape, e.get(i).name);
      assertEquals(0, bitDifferences(e.get(i).data, a.get(i).data), e.get(i).name);
    }
  }

  /** Splits tensors, in order, over {@code n} shard files; returns the weight map. */
  private static Map<String, String> shard(Path dir, Map<String, T> all, int n) {
    List<String> names = new ArrayList<>(all.keySet());
    Map<String, String> weightMap = new LinkedHashMap<>();
    int per = (names.size() + n - 1) / n;
    for (int s = 0; s < n; s++) {
      String file = String.format("model-%05d-of-%05d.safetensors", s + 1, n);
      Map<String, T> part = new LinkedHashMap<>();
      for (String name : names.subList(s * per, Math.min(names.size(), (s + 1) * per))) {
        part.put(name, all.get(name));
        weightMap.put(name, file);
      }
      writeAll(dir.resolve(file), part);
    }
    return weightMap;
  }

  private static void writeIndex(Path dir, Map<String, String> weightMap) {
    ObjectNode root = Json.MAPPER.createObjectNode();
    root.putObject("metadata").put("total_size", 0);
    ObjectNode map = root.putObject("weight_map");
    weightMap.forEach(map::put);
    IoTestSupport.write(dir.resolve(Checkpoint.INDEX), Json.pretty(root));
  }

  /** Writes every tensor as BF16 (top 16 bits of each float), by hand. */
  private static void writeBf16(Path file, Map<String, T> tensors) {
    StringBuilder header = new StringBuilder("{");
    long offset = 0;
    for (Map.Entry<String, T> e : tensors.entrySet()) {
      long bytes = 2L * e.getValue().data.length;
      header
          .append(header.length() > 1 ? "," : "")
          .append('"')
          .append(e.getKey())
          .append("\":{\"dtype\":\"BF16\"," + "\"shape\":")
          .append(Arrays.toString(e.getValue().shape).replace(" ", ""))
          .append(",\"data_offsets\":[")
          .append(offset)
          .append(',')
          .append(offset + bytes)
          .append("]}");
      offset += bytes;
    }
    header.append('}');
    ByteBuffer data = ByteBuffer.allocate((int) offset).order(ByteOrder.LITTLE_ENDIAN);
    for (T t : tensors.values()) {
      for (float v : t.data) {
        data.putShort((short) (Float.floatToRawIntBits(v) >>> 16));
      }
    }
    IoTestSupport.writeRaw(file, header.toString(), data.array());
  }
}
