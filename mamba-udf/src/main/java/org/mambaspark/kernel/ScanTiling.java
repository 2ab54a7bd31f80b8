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
   * Work-groups a compute unit the backward aims for when it splits rows into parts ({@link
   * #backwardParts}).
   */
  static final int BACKWARD_GROUPS_PER_UNIT = 4;

  static final int MAX_BACKWARD_PARTS = 32;

  /**
   * Parts to split each row's chunks into for the backward ({@link ScanKernel#scanBackwardCarry}):
   * enough that the B·(ED / ce) row groups times the parts give every compute unit {@link
   * #BACKWARD_GROUPS_PER_UNIT} groups, at most one part a chunk; 1 when the rows alone do. One long
   * row (B = 1, L = 16384) otherwise walks its 256 chunks in 384 groups on 132 units. {@code
   * -Dmamba.gpu.scanParts=P} sets it (1: never split), for tuning.
   */
  static int backwardParts(int B, int ED, int L, ScanTiling bwd, int computeUnits) {
    int chunks = (L + bwd.chunk() - 1) / bwd.chunk();
    Integer forced = Integer.getInteger("mamba.gpu.scanParts");
    if (forced != null) {
      if (forced < 1) {
        throw new IllegalArgumentException("-Dmamba.gpu.scanParts must be >= 1, got " + forced);
      }
      return Math.min(forced, Math.max(1, chunks));
    }
    long groups = (long) B * ((ED + bwd.ce - 1) / bwd.ce);
    long want = (long) BACKWARD_GROUPS_PER_UNIT * computeUnits;
    if (groups >= want) {
      return 1;
    }
    long parts = (want + groups - 1) / groups;
    return (int) Math.max(1, Math.min(parts, Math.min(chunks, MAX_BACKWARD_PARTS)));
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
