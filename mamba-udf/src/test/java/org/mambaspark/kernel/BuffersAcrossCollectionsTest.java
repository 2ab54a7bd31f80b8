package org.mambaspark.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.aparapi.Kernel;
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
 * Explicit buffers stay right when the garbage collector moves their arrays between a launch and a
 * get, as it does to small arrays young in the heap. On a device that shares the host's memory
 * (PoCL in CI) Aparapi's default leaves the buffer at the array's old address once a get has pinned
 * the array at its new one: the next launch writes where the array used to be, over whatever the
 * heap has put there since, and the get after it reads that. {@link OpenClDevices#usable} gives CPU
 * devices copy semantics. The workload ({@link #main}) runs in a JVM of its own with a 4 MB young
 * generation, where collections come every few hundred kilobytes of allocation.
 */
class BuffersAcrossCollectionsTest {
  /** out[i] = v + i. */
  static final class Fill extends Kernel {
    float[] out;
    int n;
    float v;

    @Override
    public void run() {
      int i = getGlobalId();
      if (i < n) {
        out[i] = v + i;
      }
    }
  }

  @Test
  void getsAfterTheArrayMovedReadWhatTheLaunchWrote() throws IOException, InterruptedException {
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
    assertTrue(last.startsWith("stale gets: 0 of "), out);
  }

  /** Rounds of launch, collections, get, launch, collections, get; prints the stale gets. */
  public static void main(String[] args) {
    List<OpenCLDevice> devices = OpenClDevices.usable(true);
    OpenCLDevice device = devices.get(0);
    int n = 4096;
    Range range = Range.create(device, n, 64);
    Random random = new Random(1);
    int[][] young = new int[4096][];
    int stale = 0;
    int rounds = 40;
    for (int round = 0; round < rounds; round++) {
      Fill k = new Fill();
      try {
        k.setExplicit(true);
        k.n = n;
        k.out = new float[n];
        for (int launch = 0; launch < 2; launch++) {
          k.v = round * 1000f + launch;
          k.execute(range);
          OpenClDevices.checkRanOnDevice(k, device, "the fill kernel");
          for (int j = 0; j < 20_000; j++) { // about 3 MB of short-lived arrays
            young[random.nextInt(young.length)] = new int[random.nextInt(64) + 1];
          }
          k.get(k.out);
          for (int i = 0; i < n; i++) {
            if (k.out[i] != k.v + i) {
              stale++;
              break;
            }
          }
        }
      } finally {
        k.dispose();
      }
    }
    System.out.println("stale gets: " + stale + " of " + 2 * rounds);
  }
}
