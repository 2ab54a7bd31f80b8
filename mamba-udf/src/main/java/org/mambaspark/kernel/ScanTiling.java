package org.mambaspark.kernel;

/**
 * The shape of a scan work-group ({@link ScanKernel}'s version 4): ce channels × S segments of I =
 * 4 positions (chunk T = S·I), ce·S threads; and the tiling policy the model runs with.
 */
final class ScanTiling {
  final int ce;
  final int segments;
  final int items;

  ScanTiling(int ce, int segments, int items) {
    if (ce <= 0 || segments <= 0 || items <= 0) {
      throw new IllegalArgumentException(
          "tiling sizes must be positive: ce=" + ce + " S=" + segments + " I=" + items);
    }
    this.ce = ce;
    this.segments = segments;
    this.items = items;
  }

  int chunk() {
    return segments * items;
  }

  int threads() {
    return ce * segments;
  }

  @Override
  public String toString() {
    return "ce=" + ce + " S=" + segments + " I=" + items + " (chunk " + chunk() + ")";
  }

  /**
   * Defaults, from a sweep on the H200 ({@code KernelBench scan-sweep}, N = 16): forward 16
   * channels × 16 segments × 4 positions (chunk 64, 256 threads); backward 16 × 4 × 4 (chunk 16).
   * For batches with too few rows to give every compute unit two groups ({@link #fewRows}, e.g. B =
   * 1, ED = 1536), narrower groups with more segments: forward 8 × 32 × 4 (0.96 ms at B=1 L=16384,
   * where 16 × 16 × 4 ran 1.28 and 4 × 32 × 4 1.19), backward 4 × 16 × 4. The forward that saves
   * chunk states for a backward must use its chunk ({@link #forwardWithChunk}).
   */
  static final ScanTiling FORWARD = new ScanTiling(16, 16, 4);

  static final ScanTiling BACKWARD = new ScanTiling(16, 4, 4);
  static final ScanTiling FORWARD_FEW_ROWS = new ScanTiling(8, 32, 4);
  static final ScanTiling BACKWARD_FEW_ROWS = new ScanTiling(4, 16, 4);

  /**
   * Work-groups a compute unit {@code -Dmamba.gpu.scanParts=auto} aims for ({@link
   * #backwardParts}).
   */
  static final int BACKWARD_GROUPS_PER_UNIT = 4;

  static final int MAX_BACKWARD_PARTS = 32;

  /**
   * Parts to split each row's chunks into for the backward ({@link ScanKernel#scanBackwardCarry}),
   * at most one a chunk: {@code -Dmamba.gpu.scanParts=P} asks for P; {@code auto} for enough that
   * the B·(ED / ce) row groups times the parts give every compute unit {@link
   * #BACKWARD_GROUPS_PER_UNIT} groups (one long row, B = 1 and L = 16384, walks its 256 chunks in
   * 384 groups on an H100's 132 units); unset, 1. The split is tested (PoCL, the fixtures) but not
   * yet timed on a GPU, so it stays off until {@code KernelBench scan-bwd parts=...} picks the
   * rule.
   */
  static int backwardParts(int B, int ED, int L, ScanTiling bwd, int computeUnits) {
    int chunks = (L + bwd.chunk() - 1) / bwd.chunk();
    String asked = System.getProperty("mamba.gpu.scanParts", "1").trim();
    long parts;
    if (asked.equals("auto")) {
      long groups = (long) B * ((ED + bwd.ce - 1) / bwd.ce);
      long want = (long) BACKWARD_GROUPS_PER_UNIT * computeUnits;
      parts = groups >= want ? 1 : Math.min((want + groups - 1) / groups, MAX_BACKWARD_PARTS);
    } else {
      try {
        parts = Integer.parseInt(asked);
      } catch (NumberFormatException e) {
        parts = 0;
      }
      if (parts < 1) {
        throw new IllegalArgumentException(
            "-Dmamba.gpu.scanParts must be a positive number of parts or auto, got '"
                + asked
                + "'");
      }
    }
    return (int) Math.max(1, Math.min(parts, chunks));
  }

  /** Whether (B, ED) rows in groups of 16 channels give fewer than two groups a compute unit. */
  static boolean fewRows(int B, int ED, int computeUnits) {
    return (long) B * ((ED + 15) / 16) < 2L * computeUnits;
  }

  /** Local floats the forward needs with this tiling for state size N. */
  int forwardLocal(int N) {
    return ScanKernel.scanForward4Local(ce, segments, N);
  }

  /** Local floats the backward needs with this tiling for state size N. */
  int backwardLocal(int N) {
    return ScanKernel.scanBackward4Local(ce, segments, N);
  }

  /**
   * The tiling, or one with fewer channels, then fewer segments (always 4 positions a thread),
   * whose local memory fits {@code localBytes} for state size N.
   */
  static ScanTiling fit(ScanTiling t, int N, long localBytes, boolean backward) {
    ScanTiling c = t;
    while (4L * (backward ? c.backwardLocal(N) : c.forwardLocal(N)) > localBytes) {
      if (c.ce > 1) {
        c = new ScanTiling(c.ce / 2, c.segments, 4);
      } else if (c.segments > 1) {
        c = new ScanTiling(1, c.segments / 2, 4);
      } else {
        throw new IllegalArgumentException(
            "state size N = "
                + N
                + " needs more local memory than the device's "
                + localBytes
                + " bytes for the GPU scan; use the CPU backend (-Dmamba.backend=cpu)");
      }
    }
    return c;
  }

  /**
   * A forward tiling with the backward's chunk (so that its saved chunk states serve it), with as
   * many of the backward's channels as fit {@code localBytes}.
   */
  static ScanTiling forwardWithChunk(ScanTiling bwd, int N, long localBytes) {
    int T = bwd.chunk();
    for (int ce = bwd.ce; ce >= 1; ce /= 2) {
      ScanTiling f = new ScanTiling(ce, T / 4, 4);
      if (4L * f.forwardLocal(N) <= localBytes) {
        return f;
      }
    }
    throw new IllegalArgumentException(
        "no forward tiling with chunk " + T + " fits " + localBytes + " bytes for N = " + N);
  }
}
