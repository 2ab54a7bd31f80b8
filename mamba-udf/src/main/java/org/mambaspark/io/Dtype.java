package org.mambaspark.io;

/**
 * The safetensors element types this package reads, by their header names, with their byte sizes.
 * The 8-bit float types (F8_E4M3, F8_E5M2) and U64 (whose values need not fit a Java long) are left
 * out on purpose.
 */
enum Dtype {
  F64(8, true),
  F32(4, true),
  F16(2, true),
  BF16(2, true),
  I64(8, false),
  I32(4, false),
  I16(2, false),
  I8(1, false),
  U32(4, false),
  U16(2, false),
  U8(1, false),
  BOOL(1, false);

  /** Bytes per element. */
  final int size;

  /** Read with {@code readFloats} (true) or {@code readLongs} (false). */
  final boolean floating;

  Dtype(int size, boolean floating) {
    this.size = size;
    this.floating = floating;
  }

  /** The dtype for a header name, or null when it is not one this package reads. */
  static Dtype parse(String name) {
    for (Dtype d : values()) {
      if (d.name().equals(name)) {
        return d;
      }
    }
    return null;
  }

  static String supportedNames() {
    StringBuilder s = new StringBuilder();
    for (Dtype d : values()) {
      s.append(s.length() == 0 ? "" : ", ").append(d.name());
    }
    return s.toString();
  }
}
