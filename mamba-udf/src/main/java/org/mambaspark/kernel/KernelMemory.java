package org.mambaspark.kernel;

import com.aparapi.Kernel;
import com.aparapi.device.Device;
import com.aparapi.device.OpenCLDevice;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.util.Locale;

/**
 * The device memory every operation shares, as flat arrays addressed by offsets (llm.c's activation
 * block), and the decoding of weights kept in slabs. Aparapi gives each Kernel instance its own
 * device buffers, so the whole model is one instance: the op families extend this class in a chain
 * ({@link ScanKernel}, {@link StepKernel}, {@link SsdKernel}, {@link MambaKernel}) and the last
 * one's {@code run()} dispatches on {@link #op}. Each array is bound to exactly one field (two
 * fields on one Java array would be two device buffers).
 */
public abstract class KernelMemory extends Kernel {
  /** Which operation {@link #run} performs. */
  int op;

  /**
   * Reads the array back from the device, except on a CPU device (PoCL). There Aparapi's buffer is
   * the Java array itself ({@code CL_MEM_USE_HOST_PTR}, its default for every device), so the array
   * already holds what the kernels wrote, also after the collector moved it; and a get would do
   * harm. It pins the array and records its address, so after a move the next launch sees no move,
   * keeps the buffer at the old address and writes into whatever the heap holds there now (the test
   * JVMs died in G1's evacuation). Copy semantics ({@code setSharedMemory(false)}) would not do:
   * Aparapi rebuilds a moved array's buffer from the array, so a device-resident array (a decode
   * state) would fall back to what the host last held. A GPU computes in its own memory and needs
   * the get.
   */
  @Override
  public Kernel get(float[] array) {
    return computesInHostMemory() ? this : super.get(array);
  }

  /** As {@link #get(float[])}. */
  @Override
  public Kernel get(int[] array) {
    return computesInHostMemory() ? this : super.get(array);
  }

  private boolean computesInHostMemory() {
    Device d = getTargetDevice();
    return d instanceof OpenCLDevice o && o.getType() == Device.TYPE.CPU && o.isSharedMemory();
  }

  // Memory (see the class comment); sizes are the owner's business.
  float[] act = new float[1];
  float[] gact = new float[1];
  float[] W = new float[1];
  float[] G = new float[1];
  float[] part = new float[1];
  float[] state = new float[1];

  /** Local memory, shared by every op (one allocation per launch, sized by the owner). */
  @Local float[] lmem = new float[1];

  // ---- weight slabs: the matrices of a model too large for W (or kept as bf16), in at most
  // SLABS int arrays of under 2 GiB each (Aparapi leaves OpenCL for a larger array). A slab holds
  // each float's bits (WFMT_F32), or two bf16 an int (WFMT_BF16: element i in the low half when i
  // is even); OP_STAGE decodes a layer's matrices into W before the layer's products run.
  static final int SLABS = 8;
  static final int WFMT_F32 = 0;
  static final int WFMT_BF16 = 1;

  int[] S0 = new int[1];
  int[] S1 = new int[1];
  int[] S2 = new int[1];
  int[] S3 = new int[1];
  int[] S4 = new int[1];
  int[] S5 = new int[1];
  int[] S6 = new int[1];
  int[] S7 = new int[1];
  int wFmt;
  int wPow2Off; // W (256): 2^(e − 150) for a biased exponent e ≥ 1, and 2^−149 at e = 0
  int embSlab = -1; // the slab holding the embedding (V, D), or -1: it is in W

  float[] saved = new float[1]; // per-layer inputs kept for the backward (training)
  float[] out = new float[1]; //   small results: losses, last-position logits
  float[] hid = new float[1]; //   hidden states, when the caller wants them
  int[] ids = new int[1]; //       token ids, targets, the embedding-gradient index

  // ---- weight slabs

  final int slabWord(int s, int i) {
    int v = 0;
    if (s == 0) {
      v = S0[i];
    } else if (s == 1) {
      v = S1[i];
    } else if (s == 2) {
      v = S2[i];
    } else if (s == 3) {
      v = S3[i];
    } else if (s == 4) {
      v = S4[i];
    } else if (s == 5) {
      v = S5[i];
    } else if (s == 6) {
      v = S6[i];
    } else if (s == 7) {
      v = S7[i];
    }
    return v;
  }

  /**
   * Element i of slab s as a float. Aparapi cannot translate Float.intBitsToFloat, so the bits are
   * decoded with integer operations and a table of powers of two: (1.m)·2^(e−127) is the integer 1m
   * (24 bits, exact in a float) times 2^(e−150), and a subnormal's m times 2^−149 — exact.
   */
  final float slabFloat(int s, int i) {
    return wordFloat(wFmt == WFMT_F32 ? slabWord(s, i) : slabWord(s, i >> 1), i);
  }

  /** Element i of a slab from the word that holds it (slabWord at i, or at i/2 for bf16). */
  final float wordFloat(int word, int i) {
    int b = wordBits(word, i);
    return fromBits(b, W[wPow2Off + ((b >> 23) & 0xFF)]);
  }

  /** {@link #wordFloat} with the powers of two in lmem[pow2, pow2 + 256). */
  final float wordFloatLocal(int word, int i, int pow2) {
    int b = wordBits(word, i);
    return fromBits(b, lmem[pow2 + ((b >> 23) & 0xFF)]);
  }

  /** The fp32 bits of element i in its word: the word itself, or its bf16 half shifted up. */
  final int wordBits(int word, int i) {
    int b = word;
    if (wFmt != WFMT_F32) {
      b = (i & 1) == 0 ? word << 16 : word & 0xFFFF0000;
    }
    return b;
  }

  /** The float with bits b, given 2^(e−150) for its exponent field e (see {@link #slabFloat}). */
  final float fromBits(int b, float pow2) {
    int m = b & 0x7FFFFF;
    if (((b >> 23) & 0xFF) != 0) {
      m = m | 0x800000;
    }
    float v = m * pow2;
    return b < 0 ? -v : v;
  }

  /** Σ of v over the work-group (power-of-two size), in lmem[0, wg); every thread gets it. */
  final float groupSum(float v) {
    int lid = getLocalId();
    localBarrier();
    lmem[lid] = v;
    localBarrier();
    for (int off = getLocalSize() / 2; off > 0; off = off / 2) {
      if (lid < off) {
        lmem[lid] += lmem[lid + off];
      }
      localBarrier();
    }
    return lmem[0];
  }

  /**
   * Floats from which the collector never moves a float array: G1 leaves objects of half a region
   * or more (humongous) where they are. Aparapi rebuilds a moved array's buffer from the Java
   * array, which on a GPU replaces what the kernels left on the device with the host's last copy,
   * so the arrays whose device values outlive a launch ({@link #residentFloats}) are allocated at
   * least this large. The region size is G1's default for this heap, rounded up (or {@code
   * -XX:G1HeapRegionSize}); 0 under another collector, where the padding would not help.
   */
  static final int UNMOVED_FLOATS = unmovedFloats();

  private static int unmovedFloats() {
    boolean g1 = false;
    for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
      g1 |= gc.getName().startsWith("G1");
    }
    if (!g1) {
      return 0;
    }
    long region = 1L << 20;
    while (region < (32L << 20) && region * 2048 < Runtime.getRuntime().maxMemory()) {
      region *= 2;
    }
    for (String arg : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (arg.startsWith("-XX:G1HeapRegionSize=")) {
        region = Math.max(region, parseBytes(arg.substring(arg.indexOf('=') + 1)));
      }
    }
    return (int) (region / 2 / Float.BYTES);
  }

  private static long parseBytes(String v) {
    String s = v.trim().toLowerCase(Locale.ROOT);
    long unit = 1;
    if (s.endsWith("k") || s.endsWith("m") || s.endsWith("g")) {
      unit = s.endsWith("k") ? 1L << 10 : s.endsWith("m") ? 1L << 20 : 1L << 30;
      s = s.substring(0, s.length() - 1);
    }
    try {
      return Long.parseLong(s) * unit;
    } catch (NumberFormatException e) {
      return 32L << 20; // G1's largest region: safe whatever was meant
    }
  }

  /**
   * A device array of at least {@code floats} whose values stay on the device from one launch to
   * the next, at least {@link #UNMOVED_FLOATS} long so that the collector never moves it.
   */
  static float[] residentFloats(long floats, String what) {
    return new float[checkedSize(Math.max(floats, UNMOVED_FLOATS), what)];
  }

  /** The length of a device array of {@code floats}, or one line on what does not fit. */
  static int checkedSize(long floats, String what) {
    if (floats > (1L << 29) - 16) {
      throw new IllegalArgumentException(
          what
              + " need "
              + floats
              + " floats, more than one device array holds (2 GiB, beyond which Aparapi falls back"
              + " to the Java thread pool); use a smaller batch");
    }
    return (int) Math.max(1, floats);
  }
}
