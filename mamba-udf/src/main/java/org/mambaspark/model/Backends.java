package org.mambaspark.model;

import java.lang.reflect.InvocationTargetException;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import org.mambaspark.ops.LoudWarning;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Picks the {@link Backend} once per JVM and says which device runs, in the log.
 *
 * <ul>
 *   <li>{@code -Dmamba.backend=auto} (default): the OpenCL GPU if one is usable, else the CPU;
 *   <li>{@code -Dmamba.backend=gpu}: the same choice, but a missing GPU is reported as a failed
 *       request (still falling back to the CPU, so that a job finishes);
 *   <li>{@code -Dmamba.backend=cpu}: the CPU, without looking for a GPU.
 * </ul>
 *
 * <p>{@code -Dmamba.gpu.device=N} picks the N-th OpenCL GPU (default 0); on Spark, {@link
 * #forGpuAddress} takes the address the scheduler gave the task instead. The GPU backend lives in
 * {@code org.mambaspark.kernel} (the only package that imports Aparapi) and is loaded by name, so
 * the core needs neither Aparapi nor OpenCL. It is usable only if its kernels compile, run on the
 * OpenCL device (not Aparapi's Java thread pool) and give the right numbers on a probe; otherwise
 * this class logs the reason once, loudly, and returns the CPU backend. Only OpenCL devices of type
 * GPU (or accelerator) count, unless {@code -Dmamba.opencl.cpu=true} admits CPU devices such as
 * PoCL (the tests run the kernels that way).
 *
 * <p>The GPU kernels compute the architectures of {@code GPU_ARCHITECTURES} (Mamba-1, Mamba-2,
 * Falcon-Mamba); a runner the GPU backend were asked to open for another would be a CPU runner,
 * logged once per architecture, loudly, with the reason.
 */
public final class Backends {
  public static final String BACKEND_PROPERTY = "mamba.backend";
  public static final String DEVICE_PROPERTY = "mamba.gpu.device";
  static final String GPU_BACKEND_CLASS = "org.mambaspark.kernel.GpuBackend";

  private static final Logger LOG = LoggerFactory.getLogger(Backends.class);

  private static Backend chosen; // guarded by Backends.class
  private static final Map<Integer, Backend> BY_DEVICE =
      new HashMap<>(); // guarded by Backends.class

  private Backends() {}

  /** The JVM's backend, chosen (and logged) on the first call. */
  public static synchronized Backend get() {
    if (chosen == null) {
      chosen = forDevice(deviceIndexProperty());
    }
    return chosen;
  }

  /**
   * The backend for a Spark task's GPU: {@code address} is what the scheduler assigned ({@code
   * TaskContext.get().resources().get("gpu").addresses()[0]}, an index such as {@code "0"}), or
   * null/empty when the task has no GPU (then {@link #get}). One backend per device index per JVM;
   * tasks that share a device share its backend, and its calls are serialized.
   */
  public static synchronized Backend forGpuAddress(String address) {
    if (address == null || address.isBlank()) {
      return get();
    }
    int index;
    try {
      index = Integer.parseInt(address.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "a GPU address must be a device index such as 0 or 1, got '" + address + "'", e);
    }
    if (index < 0) {
      throw new IllegalArgumentException("a GPU address must not be negative, got " + index);
    }
    return forDevice(index);
  }

  /** The CPU backend, whatever the JVM chose (for comparisons and tests). */
  public static Backend cpu() {
    return CpuBackend.INSTANCE;
  }

  private static Backend forDevice(int index) {
    Backend b = BY_DEVICE.get(index);
    if (b == null) {
      b = choose(requested(), index);
      BY_DEVICE.put(index, b);
    }
    return b;
  }

  private static Backend choose(String mode, int index) {
    if (mode.equals("cpu")) {
      LOG.info(
          "mamba backend: {} (-D{}=cpu, no GPU looked for)",
          CpuBackend.INSTANCE.device(),
          BACKEND_PROPERTY);
      return CpuBackend.INSTANCE;
    }
    String why;
    try {
      Backend gpu = loadGpu(index);
      LOG.info("mamba backend: GPU {} (OpenCL through Aparapi)", gpu.device());
      return new KernelArchitecturesGpu(gpu);
    } catch (IllegalStateException e) {
      why = e.getMessage();
    } catch (ReflectiveOperationException | LinkageError e) {
      why = "the GPU backend could not be loaded: " + e;
    }
    String asked =
        mode.equals("gpu")
            ? "-D" + BACKEND_PROPERTY + "=gpu was requested, but the GPU cannot be used"
            : "no usable GPU";
    String banner =
        String.format(
            "%n%s%n*** mamba: %s (device %d): %s%n*** RUNNING ON THE CPU: %s%n%s",
            BANNER, asked, index, why, CpuBackend.INSTANCE.device(), BANNER);
    lastFallbackWarning = banner;
    LoudWarning.warn(LOG, banner);
    return CpuBackend.INSTANCE;
  }

  /**
   * The GPU backend, for the architectures its kernels compute ({@link #GPU_ARCHITECTURES}); a
   * model of another architecture gets a CPU runner, said loudly, so that it is never run through
   * the wrong kernels.
   */
  static final class KernelArchitecturesGpu implements Backend {
    private final Backend gpu;

    KernelArchitecturesGpu(Backend gpu) {
      this.gpu = gpu;
    }

    @Override
    public Kind kind() {
      return gpu.kind();
    }

    @Override
    public String device() {
      return gpu.device();
    }

    @Override
    public ModelRunner open(MambaModel model) {
      Architecture a = model.config.architecture;
      if (GPU_ARCHITECTURES.contains(a)) {
        return gpu.open(model);
      }
      warnCpuFor(a, gpu.device());
      return CpuBackend.INSTANCE.open(model);
    }

    @Override
    public String toString() {
      return gpu.toString();
    }
  }

  /** The architectures the GPU kernels compute (every one this engine knows, today). */
  static final EnumSet<Architecture> GPU_ARCHITECTURES =
      EnumSet.of(Architecture.MAMBA, Architecture.MAMBA2, Architecture.FALCON_MAMBA);

  private static final EnumSet<Architecture> WARNED_CPU_FOR =
      EnumSet.noneOf(Architecture.class); // guarded by Backends.class

  private static synchronized void warnCpuFor(Architecture a, String device) {
    if (WARNED_CPU_FOR.add(a)) {
      String banner =
          String.format(
              "%n%s%n*** mamba: the GPU backend (%s) runs %s; this is a %s model"
                  + " (%s)%n*** RUNNING IT ON THE CPU: %s%n%s",
              BANNER,
              device,
              GPU_ARCHITECTURES,
              a.hfClass,
              a.modelType,
              CpuBackend.INSTANCE.device(),
              BANNER);
      lastFallbackWarning = banner;
      LoudWarning.warn(LOG, banner);
    }
  }

  /** The last fallback banner logged (tests check it was raised, whatever the logging binding). */
  static volatile String lastFallbackWarning;

  private static final String BANNER = "*".repeat(100);

  private static Backend loadGpu(int index) throws ReflectiveOperationException {
    Class<?> c = Class.forName(GPU_BACKEND_CLASS);
    try {
      return (Backend) c.getMethod("open", int.class).invoke(null, index);
    } catch (InvocationTargetException e) {
      Throwable cause = e.getCause();
      if (cause instanceof IllegalStateException ise) {
        throw ise;
      }
      throw new IllegalStateException("the GPU backend failed to start: " + cause, cause);
    }
  }

  static String requested() {
    String mode = System.getProperty(BACKEND_PROPERTY, "auto").trim().toLowerCase(Locale.ROOT);
    if (!mode.equals("auto") && !mode.equals("cpu") && !mode.equals("gpu")) {
      throw new IllegalArgumentException(
          BACKEND_PROPERTY + " must be auto, cpu or gpu, got '" + mode + "'");
    }
    return mode;
  }

  static int deviceIndexProperty() {
    String p = System.getProperty(DEVICE_PROPERTY, "0").trim();
    try {
      int i = Integer.parseInt(p);
      if (i >= 0) {
        return i;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new IllegalArgumentException(
        DEVICE_PROPERTY + " must be a device index (0, 1, ...), got '" + p + "'");
  }

  /** Forgets the choice (tests switch properties between cases). */
  static synchronized void reset() {
    chosen = null;
    BY_DEVICE.clear();
    WARNED_CPU_FOR.clear();
  }
}
