package org.mambaspark.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Finding a model's tokenizer from the files in its directory, and tokenizers by name. */
class TokenizersTest {
  @TempDir Path tmp;

  Path modelWithTokenizerJson() throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("hf-model"));
    Files.copy(HfTokenizerTest.resource(), dir.resolve(Tokenizers.TOKENIZER_JSON));
    return dir;
  }

  @Test
  void tokenizerJsonGivesHuggingFace() throws IOException {
    try (Tokenizer t = Tokenizers.forModel(modelWithTokenizerJson()).orElseThrow()) {
      assertInstanceOf(HfTokenizer.class, t);
      assertArrayEquals(HfTokenizerTest.SENTENCE_IDS, t.encode(HfTokenizerTest.SENTENCE));
    }
  }

  /**
   * Hugging Face model directories carry a tokenizer_config.json beside tokenizer.json; given it
   * (optTokenizerConfigPath), DJL would apply its clean_up_tokenization_spaces (lossy decode: "a .
   * b" → "a. b") and add_prefix_space ("hello" → [32, 262]). Neither applies here.
   */
  @Test
  void tokenizerConfigBesideTokenizerJsonIsIgnored() throws IOException {
    Path dir = modelWithTokenizerJson();
    Files.writeString(
        dir.resolve(Tokenizers.TOKENIZER_CONFIG),
        "{\"tokenizer_class\": \"GPTNeoXTokenizer\", \"clean_up_tokenization_spaces\": true,"
            + " \"add_prefix_space\": true, \"add_bos_token\": true, \"model_max_length\": 16}");
    try (Tokenizer t = Tokenizers.forModel(dir).orElseThrow()) {
      assertArrayEquals(new int[] {262}, t.encode("hello"));
      String s = "a . b , c ? d ! it 's";
      assertEquals(s, t.decode(t.encode(s)));
      String longText = HfTokenizerTest.SENTENCE.repeat(10);
      assertEquals(100, t.encode(longText).length);
    }
  }

  @Test
  void byteMarkerGivesBytes() throws IOException {
    Tokenizers.writeByteTokenizerMarker(tmp);
    assertSame(ByteTokenizer.INSTANCE, Tokenizers.forModel(tmp).orElseThrow());
    // the marker is plain JSON in Hugging Face's file name
    assertEquals(
        "ByteTokenizer",
        new ObjectMapper()
            .readTree(tmp.resolve("tokenizer_config.json").toFile())
            .get("tokenizer_class")
            .asText());
  }

  @Test
  void noTokenizerGivesEmpty() throws IOException {
    assertTrue(Tokenizers.forModel(tmp).isEmpty());
    // a config for a tokenizer this engine cannot load, without tokenizer.json
    Files.writeString(
        tmp.resolve(Tokenizers.TOKENIZER_CONFIG), "{\"tokenizer_class\": \"GPT2Tokenizer\"}");
    assertTrue(Tokenizers.forModel(tmp).isEmpty());
  }

  @Test
  void badFilesAreNamed() throws IOException {
    Path a = Files.createDirectories(tmp.resolve("a"));
    Files.writeString(a.resolve(Tokenizers.TOKENIZER_JSON), "{ not json");
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Tokenizers.forModel(a));
    assertTrue(e.getMessage().contains(a.resolve("tokenizer.json").toString()), e.getMessage());

    Path b = Files.createDirectories(tmp.resolve("b"));
    Files.writeString(b.resolve(Tokenizers.TOKENIZER_CONFIG), "{\"tokenizer_class\": ");
    e = assertThrows(IllegalArgumentException.class, () -> Tokenizers.forModel(b));
    assertTrue(
        e.getMessage().contains(b.resolve("tokenizer_config.json").toString()), e.getMessage());

    Path c = tmp.resolve("no-such-model");
    e = assertThrows(IllegalArgumentException.class, () -> Tokenizers.forModel(c));
    assertTrue(e.getMessage().contains(c.toString()), e.getMessage());
  }

  @Test
  void byName() throws IOException {
    assertSame(ByteTokenizer.INSTANCE, Tokenizers.byName("bytes"));
    Path dir = modelWithTokenizerJson();
    try (Tokenizer fromFile = Tokenizers.byName(dir.resolve("tokenizer.json").toString());
        Tokenizer fromDir = Tokenizers.byName(dir.toString())) {
      assertArrayEquals(new int[] {262}, fromFile.encode("hello"));
      assertArrayEquals(new int[] {262}, fromDir.encode("hello"));
    }
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Tokenizers.byName("gpt2"));
    assertTrue(e.getMessage().contains("gpt2"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> Tokenizers.byName(tmp.toString()));
  }
}
