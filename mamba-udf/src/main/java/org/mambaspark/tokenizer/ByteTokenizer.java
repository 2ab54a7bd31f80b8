package org.mambaspark.tokenizer;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * One token per UTF-8 byte, id = the byte's value 0..255: for models trained from scratch on raw
 * bytes (text, DNA, characters), where a vocabulary would be a liability and every input is
 * representable.
 *
 * <p>Such a model may have a vocabulary larger than 256 and keep the ids above 255 for its own
 * special tokens (EOS, separators): decode skips them, so generated ids can be decoded as they
 * come. Negative ids are a caller's bug and are rejected. A model can emit any byte sequence,
 * including invalid UTF-8: it decodes with U+FFFD replacement characters (Java's decoder; the count
 * per invalid run can differ from Rust's {@code from_utf8_lossy}), never an exception.
 *
 * <p>Stateless, hence thread-safe; one {@link #INSTANCE}. Text with unpaired surrogates (not valid
 * Unicode) encodes them as {@code '?'} (Java's UTF-8 encoder), so it does not round-trip.
 */
public final class ByteTokenizer implements Tokenizer {
  public static final ByteTokenizer INSTANCE = new ByteTokenizer();

  /** Ids 0..255 are bytes. */
  public static final int VOCAB_SIZE = 256;

  private ByteTokenizer() {}

  @Override
  public int[] encode(String text) {
    byte[] b = text.getBytes(StandardCharsets.UTF_8);
    int[] ids = new int[b.length];
    for (int i = 0; i < b.length; i++) {
      ids[i] = b[i] & 0xff;
    }
    return ids;
  }

  @Override
  public String decode(int[] ids, int from, int to) {
    Objects.checkFromToIndex(from, to, ids.length);
    byte[] b = new byte[to - from];
    int n = 0;
    for (int i = from; i < to; i++) {
      int id = ids[i];
      if (id < 0) {
        throw new IllegalArgumentException("token id " + id + " at position " + i + " is negative");
      }
      if (id < VOCAB_SIZE) {
        b[n++] = (byte) id;
      }
    }
    try {
      // new String(bytes, UTF_8) also replaces, but its replacement granularity is not specified
      return StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPLACE)
          .onUnmappableCharacter(CodingErrorAction.REPLACE)
          .decode(ByteBuffer.wrap(b, 0, n))
          .toString();
    } catch (CharacterCodingException e) {
      throw new IllegalStateException("UTF-8 decoding with replacement cannot fail", e);
    }
  }

  @Override
  public int vocabSize() {
    return VOCAB_SIZE;
  }

  @Override
  public String describe() {
    return "bytes (one token per UTF-8 byte, ids 0..255)";
  }

  @Override
  public String toString() {
    return describe();
  }
}
