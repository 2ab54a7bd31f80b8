package org.mambaspark.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.util.Utils;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A GPT-NeoX-style byte-level BPE through DJL, offline: {@code
 * src/test/resources/tokenizer/tokenizer.json}.
 *
 * <p>That file, written for these tests: NFC normalizer; ByteLevel pre-tokenizer (GPT-2's split
 * regex, no prefix space), post-processor and decoder, as in GPT-NeoX. Unlike GPT-NeoX, ids 0..255
 * are the 256 bytes in byte order (each written as GPT-2's printable stand-in: byte 32 is "Ġ", byte
 * 10 "Ċ"), so ids can be derived by hand. Then twelve merges, rank = id - 256:
 *
 * <pre>
 * 256 Ġt = Ġ t     259 ll = l l       262 hello = hell o   265 Ġworl = Ġwor l
 * 257 he = h e     260 or = o r       263 Ġw = Ġ w         266 Ġworld = Ġworl d
 * 258 Ġthe = Ġt he 261 hell = he ll   264 Ġwor = Ġw or     267 é = Ã © (bytes C3 A9)
 * </pre>
 *
 * and two special added tokens, 268 {@code <|endoftext|>} and 269 {@code <|padding|>}: 270 tokens.
 */
class HfTokenizerTest {
  static final String SENTENCE = "hello world, the end.\n";
  // "hello" | " world" | "," | " the" | " end" | "." | "\n": the pre-tokenizer's pieces, merged
  // within each
  static final int[] SENTENCE_IDS = {262, 266, 44, 258, 32, 101, 110, 100, 46, 10};

  static HfTokenizer tok;

  @TempDir Path tmp;

  static Path resource() {
    try {
      return Path.of(HfTokenizerTest.class.getResource("/tokenizer/tokenizer.json").toURI());
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  @BeforeAll
  static void load() {
    tok = HfTokenizer.load(resource());
  }

  @AfterAll
  static void close() {
    tok.close();
  }

  @Test
  void encodesAsDerivedByHand() {
    assertArrayEquals(SENTENCE_IDS, tok.encode(SENTENCE));
    // "hello": h e l l o → he l l o (rank 1) → he ll o (3) → hell o (5) → hello (6)
    assertArrayEquals(new int[] {262}, tok.encode("hello"));
    // " hello": Ġ stays apart, there is no merge "Ġ hello"
    assertArrayEquals(new int[] {32, 262}, tok.encode(" hello"));
    // "Hello": only "l l" applies
    assertArrayEquals(new int[] {72, 101, 259, 111}, tok.encode("Hello"));
    // "the" without its space: "h e", and "t he" is no merge
    assertArrayEquals(new int[] {116, 257}, tok.encode("the"));
    // a merge of two bytes of one character: é = C3 A9 → 267
    assertArrayEquals(new int[] {99, 97, 102, 267}, tok.encode("café"));
    assertArrayEquals(new int[] {240, 159, 144, 141}, tok.encode("🐍"));
    assertArrayEquals(new int[] {}, tok.encode(""));
  }

  @Test
  void noSpecialTokensAddedButSpelledOnesAreRecognised() {
    // add_special_tokens=false: nothing around the text; a special token written in the text is
    // still one
    // token, as in Hugging Face (decode keeps it)
    assertArrayEquals(new int[] {104, 105, 268}, tok.encode("hi<|endoftext|>"));
    assertEquals("hi<|endoftext|>", tok.decode(new int[] {104, 105, 268}));
  }

  @Test
  void roundTrips() {
    String[] texts = {
      SENTENCE,
      "Mamba 🐍 naïve — ok",
      "日本語のテキスト",
      "  leading and trailing spaces  ",
      "tabs\tand\r\nnewlines\n\n",
      "a . b , c ? d !", // what clean_up_tokenization_spaces would change
      "nul\0byte"
    };
    for (String s : texts) {
      assertEquals(s, tok.decode(tok.encode(s)), s);
    }
    // random text from an NFC-stable alphabet (no combining marks), fixed seed
    int[] alphabet =
        "abcdefghijklmnopqrstuvwxyzABC XYZ0123456789 .,;:!?'\"()[]{}<>|\\/\n\t-_=+éßжω日本語🐍😀"
            .codePoints()
            .toArray();
    Random r = new Random(42);
    for (int n = 0; n < 200; n++) {
      StringBuilder sb = new StringBuilder();
      int len = r.nextInt(60);
      for (int i = 0; i < len; i++) {
        sb.appendCodePoint(alphabet[r.nextInt(alphabet.length)]);
      }
      String s = sb.toString();
      assertEquals(s, tok.decode(tok.encode(s)), s);
    }
  }

  @Test
  void normalizerRunsFirst() {
    // NFC (as GPT-NeoX): e + U+0301 is encoded as the one character é, and decodes so
    assertArrayEquals(new int[] {267}, tok.encode("e\u0301"));
    assertEquals("é", tok.decode(tok.encode("e\u0301")));
  }

  @Test
  void noTruncationOnLongText() throws IOException {
    String text = SENTENCE.repeat(300);
    int[] expected = new int[SENTENCE_IDS.length * 300];
    for (int i = 0; i < 300; i++) {
      System.arraycopy(SENTENCE_IDS, 0, expected, i * SENTENCE_IDS.length, SENTENCE_IDS.length);
    }
    int[] ids = tok.encode(text);
    System.out.println("long text: " + text.length() + " chars, " + ids.length + " tokens");
    assertEquals(3000, ids.length, "DJL truncates at 512 by default");
    assertArrayEquals(expected, ids);
    assertEquals(text, tok.decode(ids));

    // a tokenizer.json that itself asks for truncation at 16 tokens and padding to 32 gets neither
    ObjectMapper om = new ObjectMapper();
    ObjectNode root = (ObjectNode) om.readTree(resource().toFile());
    root.putObject("truncation")
        .put("direction", "Right")
        .put("max_length", 16)
        .put("strategy", "LongestFirst")
        .put("stride", 0);
    ObjectNode padding = root.putObject("padding");
    padding.putObject("strategy").put("Fixed", 32);
    padding
        .put("direction", "Right")
        .putNull("pad_to_multiple_of")
        .put("pad_id", 269)
        .put("pad_type_id", 0)
        .put("pad_token", "<|padding|>");
    Path f = tmp.resolve("tokenizer.json");
    om.writeValue(f.toFile(), root);
    try (HfTokenizer t = HfTokenizer.load(f)) {
      assertArrayEquals(expected, t.encode(text));
      assertArrayEquals(new int[] {262}, t.encode("hello"));
    }
  }

  @Test
  void invalidUtf8DecodesWithReplacement() {
    assertEquals("\uFFFD", tok.decode(new int[] {0xff}));
    assertEquals(
        "\uFFFD", tok.decode(new int[] {240, 159})); // emoji cut short: generation mid-character
    assertEquals("a\uFFFDb", tok.decode(new int[] {'a', 0xc3, 'b'}));
  }

  @Test
  void unknownIdsSkippedNegativesRejected() {
    // ids past the tokenizer's vocabulary (a model's padded embedding rows) decode to nothing
    assertEquals("hello", tok.decode(new int[] {262, 270, 50_279}));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> tok.decode(new int[] {262, 262, -5}));
    assertTrue(
        e.getMessage().contains("-5") && e.getMessage().contains("position 2"), e.getMessage());
    assertEquals("world", tok.decode(new int[] {262, 119, 260, 108, 100, 46}, 1, 5));
    assertThrows(IndexOutOfBoundsException.class, () -> tok.decode(new int[] {262}, 0, 2));
  }

  @Test
  void vocabSizeAndDescription() {
    assertEquals(270, tok.vocabSize());
    assertTrue(tok.describe().contains("tokenizer.json") && tok.describe().contains("BPE"));
  }

  /**
   * Spark task threads share one tokenizer per JVM: concurrent calls give the single-threaded
   * answers.
   */
  @Test
  void concurrentCallsAgree() throws Exception {
    List<String> texts = new ArrayList<>();
    for (int i = 0; i < 32; i++) {
      texts.add(SENTENCE.repeat(i + 1) + " item " + i + " café 🐍");
    }
    List<int[]> expected = new ArrayList<>();
    for (String s : texts) {
      expected.add(tok.encode(s));
    }
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try {
      List<Future<Integer>> futures = new ArrayList<>();
      for (int w = 0; w < 8; w++) {
        int seed = w;
        futures.add(
            pool.submit(
                () -> {
                  Random r = new Random(seed);
                  int mismatches = 0;
                  for (int n = 0; n < 400; n++) {
                    int k = r.nextInt(texts.size());
                    int[] ids = tok.encode(texts.get(k));
                    if (!Arrays.equals(expected.get(k), ids)
                        || !texts.get(k).equals(tok.decode(ids))) {
                      mismatches++;
                    }
                  }
                  return mismatches;
                }));
      }
      for (Future<Integer> f : futures) {
        assertEquals(0, f.get());
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void closeIsIdempotentAndLaterCallsFail() {
    HfTokenizer t = HfTokenizer.load(resource());
    assertArrayEquals(new int[] {262}, t.encode("hello"));
    t.close();
    t.close();
    assertThrows(IllegalStateException.class, () -> t.encode("hello"));
    assertThrows(IllegalStateException.class, () -> t.decode(new int[] {262}));
  }

  @Test
  void loadErrorsNameTheFile() throws IOException {
    Path missing = tmp.resolve("missing.json");
    assertNamesFile(missing);
    Path notJson = Files.writeString(tmp.resolve("not-json.json"), "{ \"model\": ");
    assertNamesFile(notJson);
    Path noModel = Files.writeString(tmp.resolve("no-model.json"), "{\"version\": \"1.0\"}");
    assertNamesFile(noModel);
    // valid JSON with a model the Rust library rejects: its error comes through DJL
    Path badModel =
        Files.writeString(tmp.resolve("bad-model.json"), "{\"model\": {\"type\": \"Nope\"}}");
    assertNamesFile(badModel);
  }

  static void assertNamesFile(Path f) {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> HfTokenizer.load(f));
    System.out.println(e.getMessage());
    assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
  }

  /**
   * No network here: the tokenizers above loaded from the native library inside the DJL jar,
   * extracted to DJL's cache, with the CPU flavour forced and DJL's call home off.
   */
  @Test
  void nativeLibraryComesFromTheJar() throws IOException {
    if (System.getenv("RUST_FLAVOR") == null) {
      assertEquals("cpu", System.getProperty("RUST_FLAVOR"));
    }
    if (System.getenv("OPT_OUT_TRACKING") == null) {
      assertEquals("true", System.getProperty("OPT_OUT_TRACKING"));
    }
    Path cache = Utils.getEngineCacheDir("tokenizers");
    try (Stream<Path> files = Files.walk(cache)) {
      List<Path> libs = files.filter(p -> p.endsWith("libtokenizers.so")).toList();
      System.out.println("DJL native library: " + libs);
      assertTrue(
          libs.stream().anyMatch(p -> p.getParent().getFileName().toString().contains("cpu")),
          "" + libs);
    }
  }
}
