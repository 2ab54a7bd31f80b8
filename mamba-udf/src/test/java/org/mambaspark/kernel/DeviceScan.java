package org.mambaspark.kernel;

import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;

/**
 * The scan kernels of {@link ScanKernel} on their own, over host arrays in the CPU engine's layouts
 * (the arguments of {@code ops.SelectiveScan}): what the kernel tests compare against the CPU and
 * what {@link KernelBench} times. Upload, launch and download are separate calls, so that a
 * benchmark can time the kernels without the transfers. Not thread-safe.
 *
 * <p>Device memory (offsets into the kernel's arrays):
 *
 * <pre>
 *   act:   u, Δ, y (B, L, ED) | dbc (B, L, P) | z (B, L, zStride) | hChunks (B, chunks, N, ED)
 *   gact:  dy, du, dΔ (B, L, ED) | ddbc (B, L, P) | dz (B, L, zStride) | dA (N, ED) | dD (ED)
 *   W:     A·log2(e) (N, ED) | D (ED)            state: h (B, N, ED)
 *   part:  dB|dC per channel group (ED/ce, B, L, 2N) | dA (B, parts, N, ED) | dD (B, parts, ED)
 *          | the backward parts' adjoint carries (B, parts, N, ED) and ΣΔ (B, parts, ED)
 * </pre>
 */
public final class DeviceScan implements AutoCloseable {
  /**
   * The scan kernels' version, {@code -Dmamba.gpu.scan=1|4}: 4 (default) shares each chunk's
   * barriers among the N states ({@link ScanKernel#scanForward4}, {@link ScanKernel#scanBackward4})
   * and needs I = 4 positions a thread; 1 is the general-tiling reference, which other tilings run.
   */
  public static final int VERSION = Integer.getInteger("mamba.gpu.scan", 4);

  /**
   * The tiling, or a smaller one whose local memory fits {@code localBytes} for state size N: fewer
   * channels first (down to 4; a large N multiplies every per-channel buffer), then fewer segments,
   * then fewer positions (leaving version 4), then the rest.
   */
  public static ScanTiling fit(ScanTiling t, int N, long localBytes, boolean backward) {
    ScanTiling c = t;
    while (4L * local(c, N, backward) > localBytes) {
      if (c.ce > 4) {
        c = new ScanTiling(c.ce / 2, c.segments, c.items);
      } else if (c.segments > 2) {
        c = new ScanTiling(c.ce, c.segments / 2, c.items);
      } else if (c.items > 1) {
        c = new ScanTiling(c.ce, c.segments, c.items / 2);
      } else if (c.ce > 1) {
        c = new ScanTiling(c.ce / 2, c.segments, c.items);
      } else if (c.segments > 1) {
        c = new ScanTiling(1, 1, 1);
      } else {
        throw new IllegalArgumentException(
            "no scan tiling fits " + localBytes + " bytes of local memory for N = " + N);
      }
    }
    return c;
  }

  /**
   * A forward tiling with the backward's chunk (so that its saved chunk states serve it), with as
   * many of the backward's channels as fit {@code localBytes} in the kernels' {@code version}.
   */
  public static ScanTiling forwardWithChunk(ScanTiling bwd, int N, long localBytes, int version) {
    int T = bwd.chunk();
    for (int ce = bwd.ce; ce >= 1; ce /= 2) {
      ScanTiling f = T % 4 == 0 ? new ScanTiling(ce, T / 4, 4) : new ScanTiling(ce, T, 1);
      if (4L * forwardLocal(f, N, version) <= localBytes) {
        return f;
      }
    }
    throw new IllegalArgumentException(
        "no forward tiling with chunk " + T + " fits " + localBytes + " bytes for N = " + N);
  }

  private static int local(ScanTiling t, int N, boolean backward) {
    return backward ? backwardLocal(t, N, VERSION) : forwardLocal(t, N, VERSION);
  }

  /** The version (forward and backward) that runs with this tiling when {@code asked} is. */
  static int version(ScanTiling t, int asked) {
    return t.items == 4 && asked >= 4 ? 4 : 1;
  }

  /** Local floats of the forward that runs for (t, version). */
  static int forwardLocal(ScanTiling t, int N, int version) {
    return version(t, version) == 4
        ? ScanKernel.scanForward4Local(t.ce, t.segments, N)
        : ScanKernelV1.scanForwardLocal(t.ce, t.segments, t.items, N);
  }

  /** Local floats of the backward that runs for (t, version). */
  static int backwardLocal(ScanTiling t, int N, int version) {
    return version(t, version) == 4
        ? ScanKernel.scanBackward4Local(t.ce, t.segments, N)
        : ScanKernelV1.scanBackwardLocal(t.ce, t.segments, t.items, N);
  }

  /** The forward's op code for (t, version). */
  static int forwardOp(ScanTiling t, int version) {
    return version(t, version) == 4 ? ScanKernel.OP_SCAN_FWD4 : ScanKernelV1.OP_SCAN_FWD;
  }

  /** The backward's op code for (t, version). */
  static int backwardOp(ScanTiling t, int version) {
    return version(t, version) == 4 ? ScanKernel.OP_SCAN_BWD4 : ScanKernelV1.OP_SCAN_BWD;
  }

  final ScanKernel kernel;
  final OpenCLDevice device;
  final int B;
  final int L;
  final int ED;
  final int N;
  final int R;
  final int P;
  final int zStride;
  final ScanTiling fwd;
  final ScanTiling bwd;
  final int chunks;
  private boolean checked;

  // offsets
  final int oU;
  final int oDt;
  final int oY;
  final int oDbc;
  final int oZ;
  final int oHc;
  final int gDy;
  final int gDu;
  final int gDdt;
  final int gDdbc;
  final int gDz;
  final int gDa;
  final int gDd;

  /**
   * @param P the dbc row width (R + 2N, or more)
   * @param zStride the z row width (ED for a separate z, 2ED for in_proj's output)
   * @param withBackward allocate the gradient buffers
   * @param version the kernels' version ({@link #VERSION})
   */
  public DeviceScan(
      OpenCLDevice device,
      int B,
      int L,
      int ED,
      int N,
      int R,
      int P,
      int zStride,
      ScanTiling fwd,
      ScanTiling bwd,
      boolean withBackward,
      int version) {
    if (bwd != null && bwd.chunk() != fwd.chunk()) {
      throw new IllegalArgumentException(
          "forward and backward chunks differ: " + fwd.chunk() + " vs " + bwd.chunk());
    }
    this.device = device;
    this.B = B;
    this.L = L;
    this.ED = ED;
    this.N = N;
    this.R = R;
    this.P = P;
    this.zStride = zStride;
    this.fwd = fwd;
    this.bwd = bwd;
    this.version = version;
    this.chunks = (L + fwd.chunk() - 1) / fwd.chunk();
    long BT = (long) B * L;
    long[] a = {BT * ED, BT * ED, BT * ED, BT * P, BT * zStride, (long) B * chunks * N * ED};
    long[] off = offsets(a);
    oU = (int) off[0];
    oDt = (int) off[1];
    oY = (int) off[2];
    oDbc = (int) off[3];
    oZ = (int) off[4];
    oHc = (int) off[5];
    kernel = new ScanKernelV1();
    kernel.setExplicit(true);
    kernel.act = new float[KernelMemory.checkedSize(off[6], "activations")];
    kernel.W = new float[N * ED + ED];
    kernel.state = new float[B * N * ED];
    int lmemNeed = forwardLocal(fwd, N, version);
    if (withBackward) {
      long[] g = {BT * ED, BT * ED, BT * ED, BT * P, BT * zStride, (long) N * ED, ED};
      long[] goff = offsets(g);
      gDy = (int) goff[0];
      gDu = (int) goff[1];
      gDdt = (int) goff[2];
      gDdbc = (int) goff[3];
      gDz = (int) goff[4];
      gDa = (int) goff[5];
      gDd = (int) goff[6];
      kernel.gact = new float[KernelMemory.checkedSize(goff[7], "gradients")];
      setBackwardParts(1);
      lmemNeed = Math.max(lmemNeed, backwardLocal(bwd, N, version));
    } else {
      gDy = gDu = gDdt = gDdbc = gDz = gDa = gDd = 0;
    }
    kernel.lmem = new float[lmemNeed];
    long localBytes = 4L * lmemNeed;
    if (localBytes > device.getLocalMemSize()) {
      throw new IllegalArgumentException(
          "the tiling needs "
              + localBytes
              + " bytes of local memory; "
              + device.getName()
              + " has "
              + device.getLocalMemSize());
    }
    kernel.sB = B;
    kernel.sL = L;
    kernel.sED = ED;
    kernel.sN = N;
    kernel.sR = R;
    kernel.sP = P;
    kernel.sChunks = chunks;
    kernel.uOff = oU;
    kernel.dtOff = oDt;
    kernel.yOff = oY;
    kernel.dbcOff = oDbc;
    kernel.zOff = oZ;
    kernel.zStride = zStride;
    kernel.hcOff = oHc;
    kernel.a2Off = 0;
    kernel.dOff = N * ED;
    kernel.hOff = 0;
    kernel.dyOff = gDy;
    kernel.duOff = gDu;
    kernel.ddtOff = gDdt;
    kernel.ddbcOff = gDdbc;
    kernel.dzOff = gDz;
    kernel.dAOff = gDa;
    kernel.dDOff = gDd;
    kernel.sGradMode = 0;
  }

  private static long[] offsets(long[] sizes) {
    long[] off = new long[sizes.length + 1];
    for (int i = 0; i < sizes.length; i++) {
      off[i + 1] = off[i] + sizes[i];
    }
    return off;
  }

  public int chunks() {
    return chunks;
  }

  /**
   * Copies the forward's inputs to the device.
   *
   * @param u (B, L, ED)
   * @param delta (B, L, ED) after softplus
   * @param A (N, ED) = -exp(A_log)ᵀ (the CPU engine's layout)
   * @param dbc (B, L, P)
   * @param D (ED)
   * @param z (B, L, zStride), read at zOff within each row
   * @param zOff column of z within a row
   * @param h0 (B, N, ED) initial state, or null for zeros
   */
  public void upload(
      float[] u,
      float[] delta,
      float[] A,
      float[] dbc,
      float[] D,
      float[] z,
      int zOff,
      float[] h0) {
    int BT = B * L;
    System.arraycopy(u, 0, kernel.act, oU, BT * ED);
    System.arraycopy(delta, 0, kernel.act, oDt, BT * ED);
    System.arraycopy(dbc, 0, kernel.act, oDbc, BT * P);
    System.arraycopy(z, 0, kernel.act, oZ, BT * zStride);
    kernel.zOff = oZ + zOff;
    kernel.dzOff = gDz + zOff;
    for (int i = 0; i < N * ED; i++) {
      kernel.W[i] = A[i] * ScanKernel.LOG2E;
    }
    System.arraycopy(D, 0, kernel.W, N * ED, ED);
    kernel.sHasState = h0 == null ? 0 : 1;
    if (h0 != null) {
      System.arraycopy(h0, 0, kernel.state, 0, B * N * ED);
    }
    kernel.put(kernel.act).put(kernel.W).put(kernel.state);
  }

  /**
   * Benchmarks: fills the forward's inputs on the host side of the device arrays with values in the
   * ranges a trained model produces (Δ small, A negative), without a second host copy, and puts
   * them. z is at column 0 of its rows; h_0 = 0.
   */
  public void uploadRandom(long seed) {
    int BT = B * L;
    long rng = seed * 0x9E3779B97F4A7C15L + 1;
    float[] act = kernel.act;
    for (int i = 0; i < BT * ED; i++) {
      rng = xorshift(rng);
      act[oU + i] = unit(rng) * 4f - 2f;
      rng = xorshift(rng);
      act[oDt + i] = 0.001f + 0.1f * unit(rng);
    }
    for (int i = 0; i < BT * P; i++) {
      rng = xorshift(rng);
      act[oDbc + i] = unit(rng) * 2f - 1f;
    }
    for (int i = 0; i < BT * zStride; i++) {
      rng = xorshift(rng);
      act[oZ + i] = unit(rng) * 6f - 3f;
    }
    for (int i = 0; i < N * ED; i++) {
      rng = xorshift(rng);
      kernel.W[i] = -(0.5f + 7.5f * unit(rng)) * ScanKernel.LOG2E;
    }
    for (int e = 0; e < ED; e++) {
      kernel.W[N * ED + e] = 1f;
    }
    kernel.zOff = oZ;
    kernel.dzOff = gDz;
    kernel.sHasState = 0;
    kernel.put(kernel.act).put(kernel.W).put(kernel.state);
  }

  /** Benchmarks: a random dy, put, gradients zeroed. */
  public void uploadRandomGradient(long seed) {
    java.util.Arrays.fill(kernel.gact, 0f);
    long rng = seed * 0x9E3779B97F4A7C15L + 3;
    for (int i = 0; i < B * L * ED; i++) {
      rng = xorshift(rng);
      kernel.gact[gDy + i] = unit(rng) * 2f - 1f;
    }
    kernel.put(kernel.gact);
  }

  /** Benchmarks: the state back to h_0 = 0 (each timed forward starts fresh). */
  void resetState() {
    kernel.sHasState = 0;
  }

  private static long xorshift(long x) {
    x ^= x << 13;
    x ^= x >>> 7;
    x ^= x << 17;
    return x;
  }

  private static float unit(long bits) {
    return (bits >>> 40) * (1f / (1 << 24));
  }

  /** The kernels' version asked for (see {@link #VERSION}). */
  public final int version;

  /** The forward version a launch uses with this tiling. */
  public int forwardVersion() {
    return version(fwd, version);
  }

  /** The backward version a launch uses with this tiling. */
  public int backwardVersion() {
    return version(bwd, version);
  }

  /** Launches the forward on the device (no transfers): y, h_L and, when asked, hChunks. */
  public void forward(boolean saveChunks) {
    kernel.op = forwardOp(fwd, version);
    kernel.sCe = fwd.ce;
    kernel.sSeg = fwd.segments;
    kernel.sItems = fwd.items;
    kernel.sSave = saveChunks ? 1 : 0;
    kernel.sWriteState = 1;
    int groups = B * ((ED + fwd.ce - 1) / fwd.ce);
    launch(Range.create(device, groups * fwd.threads(), fwd.threads()), "the scan forward");
    kernel.sHasState = 1; // a second forward continues from h_L
  }

  /**
   * Copies the forward's results back.
   *
   * @param y (B, L, ED) or null
   * @param h (B, N, ED) or null
   * @param hChunks (B, chunks, N, ED) or null
   */
  public void download(float[] y, float[] h, float[] hChunks) {
    kernel.get(kernel.act);
    kernel.get(kernel.state);
    if (y != null) {
      System.arraycopy(kernel.act, oY, y, 0, B * L * ED);
    }
    if (h != null) {
      System.arraycopy(kernel.state, 0, h, 0, B * N * ED);
    }
    if (hChunks != null) {
      System.arraycopy(kernel.act, oHc, hChunks, 0, B * chunks * N * ED);
    }
  }

  /** Copies dy (B, L, ED) to the device and zeroes the gradients. */
  public void uploadGradient(float[] dy) {
    java.util.Arrays.fill(kernel.gact, 0f);
    System.arraycopy(dy, 0, kernel.gact, gDy, B * L * ED);
    kernel.put(kernel.gact);
  }

  /**
   * Splits each row's chunks into {@code parts} parts, each its own work-group (version 4 only),
   * and sizes the partial sums for them: dB|dC per channel group (ED/ce, B, L, 2N) | dA (B, parts,
   * N, ED) | dD (B, parts, ED) | the parts' adjoint carries (B, parts, N, ED) and ΣΔ (B, parts,
   * ED).
   */
  public void setBackwardParts(int parts) {
    if (parts < 1 || (parts > 1 && version(bwd, version) != 4)) {
      throw new IllegalArgumentException("backward parts " + parts + " need version 4 and >= 1");
    }
    long BT = (long) B * L;
    long pBc = (long) ((ED + bwd.ce - 1) / bwd.ce) * BT * 2 * N;
    long perPart = (long) B * parts * ((long) N * ED + ED);
    kernel.part = new float[KernelMemory.checkedSize(pBc + 2 * perPart, "partial sums")];
    kernel.pBcOff = 0;
    kernel.pAOff = (int) pBc;
    kernel.pDOff = (int) (pBc + (long) B * parts * N * ED);
    kernel.pWqOff = (int) (pBc + perPart);
    kernel.pWsOff = (int) (pBc + perPart + (long) B * parts * N * ED);
    kernel.sParts = parts;
  }

  /** Launches the backward and its reduction (no transfers); needs a forward with saveChunks. */
  public void backward() {
    kernel.sCe = bwd.ce;
    kernel.sSeg = bwd.segments;
    kernel.sItems = bwd.items;
    int groups = B * ((ED + bwd.ce - 1) / bwd.ce);
    if (kernel.sParts > 1) {
      kernel.op = ScanKernel.OP_SCAN_BWD_CARRY;
      launch(
          Range.create(device, groups * (kernel.sParts - 1) * bwd.threads(), bwd.threads()),
          "the scan backward's carries");
    }
    kernel.op = backwardOp(bwd, version);
    launch(
        Range.create(device, groups * kernel.sParts * bwd.threads(), bwd.threads()),
        "the scan backward");
    kernel.op = ScanKernel.OP_SCAN_BWD_REDUCE;
    int n = B * L * 2 * N + N * ED + ED;
    int wg = 128;
    launch(Range.create(device, (n + wg - 1) / wg * wg, wg), "the scan backward reduction");
  }

  /**
   * Copies the backward's results back (each array receives, not adds).
   *
   * @param du (B, L, ED)
   * @param ddelta (B, L, ED)
   * @param dA (N, ED)
   * @param ddbc (B, L, P): the B and C columns (the rest zero)
   * @param dD (ED)
   * @param dz (B, L, zStride): the z columns (the rest zero)
   */
  public void downloadGradients(
      float[] du, float[] ddelta, float[] dA, float[] ddbc, float[] dD, float[] dz) {
    kernel.get(kernel.gact);
    int BT = B * L;
    System.arraycopy(kernel.gact, gDu, du, 0, BT * ED);
    System.arraycopy(kernel.gact, gDdt, ddelta, 0, BT * ED);
    System.arraycopy(kernel.gact, gDa, dA, 0, N * ED);
    System.arraycopy(kernel.gact, gDdbc, ddbc, 0, BT * P);
    System.arraycopy(kernel.gact, gDd, dD, 0, ED);
    System.arraycopy(kernel.gact, gDz, dz, 0, BT * zStride);
  }

  /** Benchmarks: accumulate OpenCL's kernel time of every launch into kernelNanos. */
  boolean profile;

  long kernelNanos;

  private void launch(Range range, String what) {
    kernel.execute(range);
    if (profile) {
      kernelNanos += KernelTimer.lastKernelNanos(kernel);
    }
    if (!checked) {
      OpenClDevices.checkRanOnDevice(kernel, device, what);
      checked = true;
    }
  }

  /** The kernel, for benchmarks that read Aparapi's timings. */
  ScanKernel kernel() {
    return kernel;
  }

  @Override
  public void close() {
    kernel.dispose();
  }
}
