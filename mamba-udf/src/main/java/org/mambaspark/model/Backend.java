package org.mambaspark.model;

/**
 * Where the model's arithmetic runs: the CPU engine of this package ({@link CpuBackend}) or an
 * OpenCL device through Aparapi ({@code org.mambaspark.kernel.GpuBackend}, loaded by name so that
 * the numerical core compiles and runs without Aparapi). {@link Backends} picks one per JVM, logs
 * its device, and falls back to the CPU loudly when the GPU cannot be used.
 *
 * <p>A backend binds a model with {@link #open}: on a GPU that puts the weights on the device once
 * and keeps the buffers resident across calls, so open a model once per JVM and share the runner.
 */
public interface Backend {
  /** The two kinds of backend. */
  enum Kind {
    CPU,
    GPU
  }

  Kind kind();

  /**
   * The device in words, for logs and benchmark tables, e.g. {@code "NVIDIA H200 (OpenCL GPU 0,
   * NVIDIA CUDA)"} or {@code "CPU, 16 threads, Vector API"}.
   */
  String device();

  /**
   * A runner for this model on this backend. The weights are read now (on a GPU: packed and put on
   * the device); call {@link ModelRunner#reloadWeights} after changing them in place.
   */
  ModelRunner open(MambaModel model);
}
