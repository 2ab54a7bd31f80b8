package org.mambaspark.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@link MatmulTest}'s and {@link WeightMatrixTest}'s comparisons in configurations this JVM cannot
 * reach: the Vector API path at other vector lengths ({@code FloatVector.SPECIES_PREFERRED} follows
 * {@code -XX:MaxVectorSize}, so JVMs forked with 8, 16 and 32 bytes run 2-, 4- and 8-float vectors:
 * register tiles of 4 × 8, 4 × 16 and 4 × 32, other edges, tails and panel widths), and the scalar
 * path as it runs without the Vector API ({@code -Dmamba.simd=false}: 256-wide panels).
 */
class MatmulSpeciesTest {
  /** In the forked JVM: the forward and backward comparisons for the path this JVM runs. */
  public static void main(String[] args) {
    System.out.printf(
        "%s: matmul forward vs reference largest rel err %.2e, backward %.2e%n",
        Matmul.describe(),
        MatmulTest.forwardWorst(Simd.ENABLED),
        MatmulTest.backwardWorst(Simd.ENABLED));
    new WeightMatrixTest().forwardMatchesTheDecodedReferenceInEveryFormatAndPath();
  }

  /** Runs {@link #main} in a JVM with the given extra options; returns its output. */
  private static String fork(String... options) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
    command.add("--add-modules=jdk.incubator.vector");
    command.addAll(List.of(options));
    command.addAll(
        List.of("-cp", System.getProperty("java.class.path"), MatmulSpeciesTest.class.getName()));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(5, TimeUnit.MINUTES), "forked JVM did not finish");
    output
        .lines()
        .filter(
            line -> line.contains("matmul") || line.contains("Exception") || line.contains("at "))
        .forEach(System.out::println);
    assertEquals(0, p.exitValue(), output);
    return output;
  }

  @Test
  void otherVectorLengths() throws IOException, InterruptedException {
    assumeTrue(Simd.ENABLED, "the Vector API module is not loaded");
    for (int bytes : new int[] {8, 16, 32}) {
      String output = fork("-XX:MaxVectorSize=" + bytes);
      assertTrue(output.contains("register tile 4x" + bytes + ","), output); // 4 vectors of bytes/4
    }
  }

  @Test
  void scalarPathWithoutTheVectorApi() throws IOException, InterruptedException {
    String output = fork("-Dmamba.simd=false");
    assertTrue(output.contains("scalar (no Vector API) GEMM, register tile 4x256,"), output);
  }
}
