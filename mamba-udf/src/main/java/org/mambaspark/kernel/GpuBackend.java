package org.mambaspark.kernel;

import com.aparapi.device.OpenCLDevice;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.locks.ReentrantLock;
import org.mambaspark.model.Backend;
import org.mambaspark.model.Backends;
import org.mambaspark.model.Initialization;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.ModelRunner;
import org.mambaspark.model.Workspace;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Aparapi (OpenCL) backend on one device. {@code model.Backends} loads this class by name and
 * calls {@link #open(int)}; one instance per device index per JVM, whose lock serializes every call
 * on the device (kernels are not thread-safe, and executor task threads share the GPU).
 *
 * <p>A device is accepted only after a probe: a small random model's forward through {@link
 * GpuModel} (which compiles every kernel of {@link MambaKernel}) must run as OpenCL on that device
 * and match the CPU engine. Any failure (no OpenCL, no GPU, a compile error, Aparapi's silent fall
 * back to its Java thread pool, wrong numbers) is an {@link IllegalStateException} with the reason,
 * which {@code Backends} logs loudly before using the CPU.
 */
public final class GpuBackend implements Backend {
  private static final Logger LOG = LoggerFactory.getLogger(GpuBackend.class);
  private static final Map<Integer, GpuBackend> BY_INDEX = new HashMap<>(); // guarded by class

  final OpenCLDevice device;
  final int index;
  final ReentrantLock lock = new ReentrantLock();
  private final String description;

  private GpuBackend(OpenCLDevice device, int index) {
    this.device = device;
    this.index = index;
    this.description = OpenClDevices.describe(device) + ", device " + index;
  }

  /**
   * The backend on the index-th usable OpenCL device (GPUs and accelerators; CPU devices too with
   * {@code -Dmamba.opencl.cpu=true}), probed once.
   *
   * @throws IllegalStateException why the device cannot be used
   */
  public static synchronized Backend open(int index) {
    GpuBackend b = BY_INDEX.get(index);
    if (b != null) {
      return b;
    }
    if (!OpenClDevices.openClAvailable()) {
      throw new IllegalStateException(
          "OpenCL is not available (Aparapi found no OpenCL runtime: libOpenCL.so and a driver"
              + " ICD)");
    }
    boolean allowCpu = Boolean.getBoolean(OpenClDevices.ALLOW_CPU_PROPERTY);
    List<OpenCLDevice> ds = OpenClDevices.usable(allowCpu);
    if (ds.isEmpty()) {
      throw new IllegalStateException(
          "no OpenCL GPU"
              + (allowCpu ? " or CPU device" : "")
              + " found; OpenCL devices: "
              + OpenClDevices.describeAll());
    }
    if (index >= ds.size()) {
      throw new IllegalStateException(
          "device index " + index + " asked for, but there are " + ds.size() + " usable devices");
    }
    b = new GpuBackend(ds.get(index), index);
    long t0 = System.nanoTime();
    b.probe();
    LOG.info(
        "GPU probe passed on {} in {} ms (kernels compiled, ran as OpenCL, matched the CPU)",
        b.description,
        (System.nanoTime() - t0) / 1_000_000);
    BY_INDEX.put(index, b);
    return b;
  }

  @Override
  public Kind kind() {
    return Kind.GPU;
  }

  @Override
  public String device() {
    return description;
  }

  /**
   * A runner whose weights live on this device. A model whose weights exceed one device array (2
   * GiB) runs on the CPU instead, with a loud warning.
   */
  @Override
  public ModelRunner open(MambaModel model) {
    try {
      return new GpuModel(this, model);
    } catch (IllegalArgumentException e) {
      LOG.warn(
          "\n{}\n*** mamba: this model cannot run on {}: {}\n*** RUNNING IT ON THE CPU\n{}",
          BANNER,
          description,
          e.getMessage(),
          BANNER);
      return Backends.cpu().open(model);
    }
  }

  private static final String BANNER = "*".repeat(100);

  @Override
  public String toString() {
    return "gpu: " + description;
  }

  /** A 2-layer model with odd sizes: forward on the device vs the CPU, 1e-4 relative. */
  private void probe() {
    MambaConfig c =
        MambaConfig.builder()
            .vocabSize(37)
            .hiddenSize(24)
            .numLayers(2)
            .stateSize(5)
            .convKernel(4)
            .build();
    MambaModel m = new MambaModel(Initialization.initialize(c, 7));
    int B = 2;
    int L = 19;
    int[] ids = new int[B * L];
    SplittableRandom r = new SplittableRandom(3);
    for (int i = 0; i < ids.length; i++) {
      ids[i] = r.nextInt(c.vocabSize);
    }
    Workspace ws = new Workspace(c);
    m.forward(ws, ids, B, L, null, null);
    float[] want = ws.hidden;
    float[] got = new float[B * L * c.hiddenSize];
    try (GpuModel g = new GpuModel(this, m)) {
      g.forward(got, ids, B, L, null);
    } catch (IllegalStateException e) {
      throw e;
    } catch (RuntimeException | Error e) {
      throw new IllegalStateException("the kernels failed on " + description + ": " + e, e);
    }
    double num = 0;
    double den = 0;
    for (int i = 0; i < got.length; i++) {
      double d = (double) got[i] - want[i];
      num += d * d;
      den += (double) want[i] * want[i];
    }
    double err = Math.sqrt(num / Math.max(den, 1e-30));
    if (!(err < 1e-4)) {
      throw new IllegalStateException(
          "the probe forward on " + description + " differs from the CPU: rel err " + err);
    }
  }
}
