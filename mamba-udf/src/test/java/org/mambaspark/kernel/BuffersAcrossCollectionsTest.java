package org.mambaspark.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Device-resident arrays stay right when the garbage collector moves them between launches, as it
 * does to small arrays young in the heap: each launch adds to what the last one left on the device,
 * and a get reads the sum. On a CPU device (PoCL in CI) Aparapi's get after a move would leave the
 * buffer at the array's old address, and the next launch would write there, into the heap; copy
 * semantics instead would rebuild the buffer from the array and lose the device's sums. {@link
 * KernelMemory#get(float[])} handles it. The workload ({@link #main}) runs in a JVM of its own with
 * a 4 MB young generation, where collections come every few hundred kilobytes of allocation.
 */
class BuffersAcrossCollectionsTest {
  /** sums[i] += v + i. */
  static final class Add extends KernelMemory {
    float[] sums;
    int n;
    float v;

    @Override
    public void run() {
      int i = getGlobalId();
      if (i < n) {
        sums[i] = sums[i] + v + i;
      }
    }
  }

  @Test
  void residentArraysSurviveCollectionsBetweenLaunches() throws IOException, InterruptedException {
    OpenClTests.device();
    String java = Paths.get(System.getProperty("java.home"), "bin", "java").toString();
    Process p =
        new ProcessBuilder(
                List.of(
                    java,
                    "-Xmx128m",
                    "-Xmn4m",
                    "-cp",
                    System.getProperty("java.class.path"),
                    BuffersAcrossCollectionsTest.class.getName()))
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(5, TimeUnit.MINUTES), "the workload did not finish");
    String last = out.strip().lines().reduce("", (a, b) -> b);
    System.out.println(last);
    assertEquals(0, p.exitValue(), "the workload's JVM failed:\n" + out);
    assertTrue(last.startsWith("wrong gets: 0 of "), out);
  }

  /**
   * Rounds of three launches on a fresh array, each adding to the last, with collections after each
   * and a get after the second and third; prints the gets that read other than the sums.
   */
  public static void main(String[] args) {
    OpenCLDevice device = OpenClDevices.usable(true).get(0);
    int n = 4096;
    Range range = Range.create(device, n, 64);
    Random random = new Random(1);
    int[][] young = new int[4096][];
    int wrong = 0;
    int rounds = 40;
    for (int round = 0; round < rounds; round++) {
      Add k = new Add();
      try {
        k.setExplicit(true);
        k.n = n;
        k.sums = new float[n];
        k.put(k.sums);
        float sum = 0f;
        for (int launch = 0; launch < 3; launch++) {
          k.v = round * 1000f + launch;
          sum += k.v;
          k.execute(range);
          OpenClDevices.checkRanOnDevice(k, device, "the add kernel");
          for (int j = 0; j < 20_000; j++) { // about 3 MB of short-lived arrays
            young[random.nextInt(young.length)] = new int[random.nextInt(64) + 1];
          }
          if (launch > 0) { // the first launch's sum stays on the device across a collection
            k.get(k.sums);
            for (int i = 0; i < n; i++) {
              if (k.sums[i] != sum + (launch + 1) * i) {
                wrong++;
                break;
              }
            }
          }
        }
      } finally {
        k.dispose();
      }
    }
    System.out.println("wrong gets: " + wrong + " of " + 2 * rounds);
  }
}
