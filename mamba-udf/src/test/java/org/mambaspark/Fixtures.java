package org.mambaspark;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/**
 * Locates the reference outputs from Hugging Face transformers (float64) in the repository's {@code
 * fixtures/} folder: surefire passes {@code -Dmamba.fixtures}; otherwise the path is tried relative
 * to the module and to the project root.
 */
public final class Fixtures {
  private Fixtures() {}

  public static Path root() {
    String p = System.getProperty("mamba.fixtures");
    if (p != null && Files.isDirectory(Paths.get(p))) {
      return Paths.get(p);
    }
    for (String c : new String[] {"../fixtures", "fixtures"}) {
      if (Files.isDirectory(Paths.get(c))) {
        return Paths.get(c).toAbsolutePath().normalize();
      }
    }
    throw new IllegalStateException(
        "fixtures not found: set -Dmamba.fixtures or run from the repository");
  }

  /** e.g. {@code dir("tiny")}: holds model/ and expected.safetensors. */
  public static Path dir(String name) {
    return root().resolve(name);
  }

  /** ||a - b|| / ||b|| in double. */
  public static double relErr(float[] a, float[] b) {
    if (a.length != b.length) {
      throw new IllegalArgumentException("length " + a.length + " vs " + b.length);
    }
    double num = 0, den = 0;
    for (int i = 0; i < a.length; i++) {
      double d = (double) a[i] - b[i];
      num += d * d;
      den += (double) b[i] * b[i];
    }
    return den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
  }
}
