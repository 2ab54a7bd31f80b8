package org.mambaspark.kernel;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.aparapi.device.OpenCLDevice;
import java.util.List;

/**
 * The one check every test that needs OpenCL makes: the kernel tests, the GPU backend's and the GPU
 * paths of the Spark-facing code. With an OpenCL device (a GPU, else PoCL's CPU device) they run on
 * it; without one each such test is reported as skipped, with {@link #SKIP_REASON} and the fix. CI
 * installs PoCL and fails when a test was skipped for this reason, so that it never passes without
 * having run a kernel.
 */
public final class OpenClTests {
  /** The start of every skip message; CI looks for it in the test reports. */
  public static final String SKIP_REASON = "no OpenCL device";

  private static volatile OpenCLDevice device;
  private static volatile String missing;

  private OpenClTests() {}

  /** The device the kernel tests run on; skips the calling test when there is none. */
  public static OpenCLDevice device() {
    assumeOpenCl();
    return device;
  }

  /**
   * Skips the calling test (or, from a {@code @BeforeEach}, each test of the class) when this JVM
   * sees no OpenCL device.
   */
  public static void assumeOpenCl() {
    assumeTrue(available(), () -> missing);
  }

  /** Whether this JVM sees an OpenCL device (a GPU, or a CPU device such as PoCL). */
  public static synchronized boolean available() {
    if (device == null && missing == null) {
      List<OpenCLDevice> ds = OpenClDevices.usable(true);
      if (ds.isEmpty()) {
        missing =
            SKIP_REASON
                + " ("
                + OpenClDevices.describeAll()
                + "): skipped. Install PoCL (OpenCL on the CPU) to run it: apt-get install -y"
                + " pocl-opencl-icd";
        System.out.println("SKIPPED: " + missing);
      } else {
        device = ds.get(0);
        System.out.println("OpenCL tests run on " + OpenClDevices.describe(device));
      }
    }
    return device != null;
  }

  /**
   * The GPU backend on the test device (CPU OpenCL devices admitted), for a class's
   * {@code @BeforeAll}; null without OpenCL (its tests then skip through {@link #assumeOpenCl}).
   * Pair with {@link #closeBackend} in {@code @AfterAll}.
   */
  public static GpuBackend openBackend() {
    if (!available()) {
      return null;
    }
    System.setProperty(OpenClDevices.ALLOW_CPU_PROPERTY, "true");
    return (GpuBackend) GpuBackend.open(0);
  }

  /** Undoes {@link #openBackend}'s admission of CPU OpenCL devices. */
  public static void closeBackend() {
    System.clearProperty(OpenClDevices.ALLOW_CPU_PROPERTY);
  }
}
