package org.mambaspark.ops;

/**
 * bfloat16, the top half of a float's bits: the one rounding for bf16 checkpoints, wire tensors,
 * device weights and the CPU's 16-bit weights.
 */
public final class Bf16 {
  private Bf16() {}

  /** float to bfloat16, rounding to nearest even on the dropped 16 bits; a NaN stays a NaN. */
  public static short round(float x) {
    int bits = Float.floatToRawIntBits(x);
    if (Float.isNaN(x)) {
      return (short) ((bits >>> 16) | 0x40);
    }
    return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
  }

  /** bfloat16 to float, exactly. */
  public static float widen(short bf16) {
    return Float.intBitsToFloat((bf16 & 0xffff) << 16);
  }
}
