package org.mambaspark.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** One token per UTF-8 byte: ids by hand, round trips, invalid bytes, special ids. */
class ByteTokenizerTest {
  private final Tokenizer t = ByteTokenizer.INSTANCE;

  @Test
  void idsAreTheUtf8Bytes() {
    assertArrayEquals(new int[] {}, t.encode(""));
    assertArrayEquals(new int[] {104, 105}, t.encode("hi"));
    assertArrayEquals(new int[] {0x41, 0x0a, 0x00}, t.encode("A\n\0"));
    assertArrayEquals(new int[] {0xc3, 0xa9}, t.encode("é")); // U+00E9: 2 bytes
    assertArrayEquals(new int[] {0xe6, 0x97, 0xa5}, t.encode("日")); // U+65E5: 3 bytes
    assertArrayEquals(new int[] {0xf0, 0x9f, 0x90, 0x8d}, t.encode("🐍")); // U+1F40D: 4 bytes
    assertEquals(256, t.vocabSize());
  }

  @Test
  void roundTrips() {
    String[] texts = {
      "",
      "hello",
      "ACGTTGCA",
      "naïve café",
      "日本語",
      "emoji 🐍 ok 😀",
      "tab\tnew\nline\r\n",
      "nul\0byte"
    };
    for (String s : texts) {
      assertEquals(s, t.decode(t.encode(s)), s);
    }
  }

  @Test
  void invalidUtf8DecodesWithReplacement() {
    assertEquals("\uFFFD", t.decode(new int[] {0xff}));
    assertEquals(
        "a\uFFFDb", t.decode(new int[] {'a', 0xc3, 'b'})); // lead byte without continuation
    assertEquals("\uFFFD", t.decode(new int[] {0xf0, 0x9f, 0x90})); // emoji cut short
    assertEquals("\uFFFD\uFFFD", t.decode(new int[] {0xc0, 0x80})); // overlong NUL
    // a prefix of a multi-byte character (a model mid-character) decodes, and the full sequence is
    // right
    int[] snake = t.encode("🐍");
    assertEquals("\uFFFD", t.decode(snake, 0, 2));
    assertEquals("🐍", t.decode(snake, 0, 4));
  }

  @Test
  void specialIdsAreSkippedNegativesRejected() {
    assertEquals("ab", t.decode(new int[] {'a', 256, 300, 'b', 1 << 20}));
    // skipping happens before UTF-8 decoding: an EOS between the bytes of one character does not
    // split it
    assertEquals("é", t.decode(new int[] {0xc3, 256, 0xa9}));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> t.decode(new int[] {'a', -1}));
    assertTrue(
        e.getMessage().contains("-1") && e.getMessage().contains("position 1"), e.getMessage());
  }

  @Test
  void decodesARange() {
    int[] ids = t.encode("xhiy");
    assertEquals("hi", t.decode(ids, 1, 3));
    assertEquals("", t.decode(ids, 2, 2));
    assertThrows(IndexOutOfBoundsException.class, () -> t.decode(ids, 3, 5));
    assertThrows(IndexOutOfBoundsException.class, () -> t.decode(ids, 2, 1));
  }
}
