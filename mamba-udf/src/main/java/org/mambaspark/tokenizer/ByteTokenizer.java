package org.mambaspark.tokenizer;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * One token per UTF-8 byte, id = the byte's value 0..255: for models trained from scratch on raw
 * bytes (text, DNA, characters). Ids of 256 and above are the model's own special tokens (EOS,
 * separators): decode skips them. Invalid UTF-8 (a model can emit any byte sequence) decodes with
 * U+FFFD replacement characters.
 */
public final class ByteTokenizer implements Tokenizer {
  public static final ByteTokenizer INSTANCE = new ByteTokenizer();

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
    byte[] b = new byte[to - from];
    int n = 0;
    for (int i = from; i < to; i++) {
      int id = ids[i];
      if (id < 0) {
        throw new IllegalArgumentException("token id " + id + " at position " + i + " is negative");
      }
      if (id < 256) {
        b[n++] = (byte) id;
      }
    }
    try {
      CharBuffer cb =
          StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPLACE)
              .onUnmappableCharacter(CodingErrorAction.REPLACE)
              .decode(ByteBuffer.wrap(b, 0, n));
      return cb.toString();
    } catch (CharacterCodingException e) {
      throw new IllegalStateException("UTF-8 decoding with replacement cannot fail", e);
    }
  }

  @Override
  public String describe() {
    return "bytes (one token per UTF-8 byte)";
  }
}
