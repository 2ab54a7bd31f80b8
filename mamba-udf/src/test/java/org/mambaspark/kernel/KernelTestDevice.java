package org.mambaspark.kernel;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.aparapi.device.OpenCLDevice;
import java.util.List;

/**
 * The OpenCL device the kernel tests run on: the first GPU, else a CPU device (PoCL, which CI
 * installs). No OpenCL fails the test, loudly and with the fix, so that CI can never pass without
 * having run a kernel; {@code -Dmamba.kernel.tests=skip} turns that into a skip for local runs on
 * machines without OpenCL.
 */
final class KernelTestDevice {
  private static OpenCLDevice device;

  private KernelTestDevice() {}

  static synchronized OpenCLDevice get() {
    if (device == null) {
      List<OpenCLDevice> ds = OpenClDevices.usable(true);
      if (ds.isEmpty()) {
        String msg =
            "OpenCL is not available in this JVM ("
                + OpenClDevices.describeAll()
                + "): the kernel tests need an OpenCL device. Install PoCL (CPU OpenCL):"
                + " apt-get install -y pocl-opencl-icd, as .ci/run does; or skip these tests"
                + " locally with -Dmamba.kernel.tests=skip";
        if ("skip".equals(System.getProperty("mamba.kernel.tests"))) {
          System.out.println("SKIPPED: " + msg);
          assumeTrue(false, msg);
        }
        fail(msg);
      }
      device = ds.get(0);
      System.out.println("kernel tests run on " + OpenClDevices.describe(device));
    }
    return device;
  }
}
