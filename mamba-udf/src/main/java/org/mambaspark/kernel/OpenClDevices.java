package org.mambaspark.kernel;

import com.aparapi.Kernel;
import com.aparapi.device.Device;
import com.aparapi.device.OpenCLDevice;
import com.aparapi.internal.opencl.OpenCLLoader;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The OpenCL devices Aparapi sees, and the checks that keep a silent fallback from passing for a
 * GPU run: Aparapi quietly runs a kernel in its Java thread pool when OpenCL is missing or a kernel
 * does not compile, so every first launch is followed by {@link #checkRanOnDevice}.
 */
public final class OpenClDevices {
  /** {@code -Dmamba.opencl.cpu=true}: CPU OpenCL devices (PoCL) count as devices for kernels. */
  public static final String ALLOW_CPU_PROPERTY = "mamba.opencl.cpu";

  private OpenClDevices() {}

  /** Whether Aparapi's native library loaded and found an OpenCL runtime. */
  public static boolean openClAvailable() {
    try {
      return OpenCLLoader.isOpenCLAvailable();
    } catch (LinkageError e) {
      return false;
    }
  }

  /**
   * The devices kernels may run on, in platform order: GPUs and accelerators, then (when allowed)
   * CPUs. Empty when there is no OpenCL.
   */
  public static List<OpenCLDevice> usable(boolean allowCpu) {
    List<OpenCLDevice> out = new ArrayList<>();
    if (!openClAvailable()) {
      return out;
    }
    List<OpenCLDevice> all = OpenCLDevice.listDevices(null);
    for (OpenCLDevice d : all) {
      if (d.getType() == Device.TYPE.GPU || d.getType() == Device.TYPE.ACC) {
        out.add(d);
      }
    }
    if (allowCpu) {
      for (OpenCLDevice d : all) {
        if (d.getType() == Device.TYPE.CPU) {
          out.add(d);
        }
      }
    }
    return out;
  }

  /** Every OpenCL device, described (for messages that explain why none was usable). */
  public static String describeAll() {
    if (!openClAvailable()) {
      return "no OpenCL runtime (libOpenCL / an ICD such as the NVIDIA driver or pocl-opencl-icd)";
    }
    List<String> names = new ArrayList<>();
    for (OpenCLDevice d : OpenCLDevice.listDevices(null)) {
      names.add(describe(d));
    }
    return names.isEmpty() ? "an OpenCL runtime with no devices" : String.join("; ", names);
  }

  /** "NVIDIA H200 (OpenCL GPU, NVIDIA CUDA, 132 compute units, 139 GiB)". */
  public static String describe(OpenCLDevice d) {
    return String.format(
        Locale.ROOT,
        "%s (OpenCL %s, %s, %d compute units, %d MiB)",
        d.getName().trim(),
        d.getType(),
        d.getOpenCLPlatform().getName().trim(),
        d.getMaxComputeUnits(),
        d.getGlobalMemSize() >> 20);
  }

  /**
   * Throws unless the kernel's last launch ran as OpenCL on {@code device} (not in Aparapi's Java
   * thread pool or on another device).
   */
  public static void checkRanOnDevice(Kernel k, OpenCLDevice device, String what) {
    Device target = k.getTargetDevice();
    if (!k.isRunningCL() || !device.equals(target)) {
      throw new IllegalStateException(
          what
              + " did not run on "
              + describe(device)
              + ": Aparapi fell back to "
              + (target == null ? "no device" : target.getShortDescription()));
    }
  }
}
