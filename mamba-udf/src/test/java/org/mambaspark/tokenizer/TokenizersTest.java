package org.mambaspark.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The byte tokenizer, and a GPT-NeoX-style byte-level BPE tokenizer.json through DJL, offline. */
class TokenizersTest {
  @TempDir Path tmp;

  @Test
  void bytesRoundTrip() {
    Tokenizer t = ByteTokenizer.INSTANCE;
    for (String s :
        new String[] {"", "hello", "naïve café", "日本語", "emoji 🐍 ok", "tab\tnew\nline"}) {
      assertEquals(s, t.decode(t.encode(s)));
    }
    assertArrayEquals(new int[] {104, 105}, t.encode("hi"));
    assertArrayEquals(new int[] {0xc3, 0xa9}, t.encode("é"));
    // an invalid sequence decodes with replacement; ids >= 256 (model specials) are skipped
    assertEquals("a\uFFFDb", t.decode(new int[] {97, 0xff, 300, 98}));
    assertThrows(IllegalArgumentException.class, () -> t.decode(new int[] {-1}));
  }

  /** GPT-2's byte → printable-unicode map, which byte-level BPE vocabularies are written in. */
  static char[] byteSymbols() {
    List<Integer> bs = new ArrayList<>();
    for (int b = '!'; b <= '~'; b++) {
      bs.add(b);
    }
    for (int b = 0xa1; b <= 0xac; b++) {
      bs.add(b);
    }
    for (int b = 0xae; b <= 0xff; b++) {
      bs.add(b);
    }
    char[] sym = new char[256];
    for (int b : bs) {
      sym[b] = (char) b;
    }
    int n = 0;
    for (int b = 0; b < 256; b++) {
      if (!bs.contains(b)) {
        sym[b] = (char) (256 + n++);
      }
    }
    return sym;
  }

  /**
   * A byte-level BPE: ids 0..255 are the bytes, then merges "h e"=256, "l l"=257, "he ll"=258; EOS
   * = 259.
   */
  static Path writeBpe(Path dir) throws Exception {
    ObjectMapper om = new ObjectMapper();
    ObjectNode root = om.createObjectNode();
    root.put("version", "1.0");
    root.putNull("truncation");
    root.putNull("padding");
    ArrayNode added = root.putArray("added_tokens");
    ObjectNode eos = added.addObject();
    eos.put("id", 259)
        .put("content", "<|endoftext|>")
        .put("single_word", false)
        .put("lstrip", false)
        .put("rstrip", false)
        .put("normalized", false)
        .put("special", true);
    root.putNull("normalizer");
    for (String k : new String[] {"pre_tokenizer", "post_processor", "decoder"}) {
      root.putObject(k)
          .put("type", "ByteLevel")
          .put("add_prefix_space", false)
          .put("trim_offsets", true)
          .put("use_regex", true);
    }
    ObjectNode model = root.putObject("model");
    model.put("type", "BPE").putNull("dropout");
    model.putNull("unk_token");
    model.putNull("continuing_subword_prefix");
    model.putNull("end_of_word_suffix");
    model.put("fuse_unk", false).put("byte_fallback", false);
    ObjectNode vocab = model.putObject("vocab");
    char[] sym = byteSymbols();
    for (int b = 0; b < 256; b++) {
      vocab.put(String.valueOf(sym[b]), b);
    }
    vocab.put("he", 256).put("ll", 257).put("hell", 258).put("<|endoftext|>", 259);
    model.putArray("merges").add("h e").add("l l").add("he ll");
    Path f = dir.resolve("tokenizer.json");
    om.writeValue(f.toFile(), root);
    return f;
  }

  @Test
  void huggingFaceBpeEncodesAsByHandAndRoundTrips() throws Exception {
    Tokenizer t = Tokenizers.forModel(writeBpe(tmp).getParent()).orElseThrow();
    // "hello" → hell + o; " hello" → Ġ + hell + o (Ġ is byte 32)
    int[] ids = t.encode("hello hello");
    assertArrayEquals(new int[] {258, 111, 32, 258, 111}, ids);
    assertEquals("hello hello", t.decode(ids));
    String mixed = "Mamba 🐍 naïve — ok";
    assertEquals(mixed, t.decode(t.encode(mixed)));
  }

  @Test
  void noTruncationOnLongText() throws Exception {
    Tokenizer t = HfTokenizer.load(writeBpe(tmp));
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < 1500; i++) {
      sb.append("hello ");
    }
    int[] ids = t.encode(sb.toString());
    System.out.println("long text: " + ids.length + " tokens");
    assertTrue(ids.length > 2000, "DJL truncated to " + ids.length);
    assertEquals(sb.toString(), t.decode(ids));
  }

  @Test
  void markerAndMissingFiles() throws Exception {
    assertTrue(Tokenizers.forModel(tmp).isEmpty());
    Tokenizers.writeByteTokenizerMarker(tmp);
    assertEquals(ByteTokenizer.INSTANCE, Tokenizers.forModel(tmp).orElseThrow());
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> HfTokenizer.load(tmp.resolve("nope.json")));
    assertTrue(e.getMessage().contains("nope.json"));
    Path bad = tmp.resolve("bad");
    Files.createDirectories(bad);
    Files.writeString(bad.resolve("tokenizer.json"), "{ not json");
    e = assertThrows(IllegalArgumentException.class, () -> Tokenizers.forModel(bad));
    assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
  }
}
