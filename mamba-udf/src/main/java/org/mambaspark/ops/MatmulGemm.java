package org.mambaspark.ops;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * The blocked, threaded GEMM behind {@link Matmul}, with its scalar micro-kernels. No Vector API
 * type appears here: with {@code simd} true the micro-kernels of {@link MatmulSimd} run, and that
 * class is loaded on the first such call only.
 *
 * <p>Every product is out[i, j] (+)= Σ_k A[i, k]·B[k, j] (+ bias[j]), with A and B read through
 * (offset, row stride, column stride), so one routine serves the forward (A = inp, B = weightᵀ),
 * dinp (A = dout, B = weight) and dweight (A = doutᵀ, B = inp). The design is GotoBLAS/BLIS's, cut
 * to what these shapes need (numbers for AVX-512, where a vector holds 16 floats):
 *
 * <ul>
 *   <li>a job is a block of at most {@link #MC} rows × {@link #NC} columns of out; the pool's
 *       workers take jobs from a shared counter, so a core slowed by another process (a Spark
 *       neighbour) takes fewer of them;
 *   <li>per job and per block of {@link #KC} k's, B is packed into NR-wide column panels (kc × NR,
 *       zero-padded past N) and A into micro-panels of MR rows interleaved by k (zero-padded past
 *       M): strided and transposed reads happen once, in the packing, and the micro-kernel reads
 *       two unit-stride streams. A is read in place where packing would not pay: doutᵀ already has
 *       the micro-panel layout (with a k stride), and rows of A used by one or two panels only
 *       (x_proj's 80 columns, dt_proj's dinp with 48) are cheaper to read than to copy;
 *   <li>the micro-kernel keeps an MR × NR = 4 × 64 tile of out in 16 vector registers over kc k's
 *       (per k: 4 loads of B, 4 broadcasts of A, 16 FMAs). Its B panel (kc × NR = 32 KiB) stays in
 *       L1 while the job's A micro-panels (MC × kc = 256 KiB) stream from L2; out is read and
 *       written once per k block. Measured on Zen 5: KC = 128 beats 256 by 15% (the B panel fits
 *       L1), and a job of 512 rows packs the weight once per call at BT = 512;
 *   <li>tiles at the right or bottom edge run the same arithmetic on a scratch tile, so every
 *       element of out sees the same operations in the same order: results depend neither on the
 *       thread count nor on where job boundaries fall (a retried Spark task reproduces its
 *       numbers).
 * </ul>
 *
 * <p>Matrix-vector products (decoding: a handful of rows) are bound by reading the weight, and
 * packing it would read it three times: {@link #fewRows} sends them to dot products along c
 * instead, threaded over output features.
 *
 * <p>The scalar micro-kernel (no Vector API) keeps the tile in an array and copies each B row to
 * offset 0 of a scratch row first: C2 in Java 17 vectorizes a loop only when all its arrays are
 * indexed without differing loop-invariant offsets, and then wants long rows (NR = 256 there).
 */
final class MatmulGemm {
  /** Rows of the register tile (the broadcast side). */
  static final int MR = 4;

  /** Columns of the register tile: four vectors (64 floats with AVX-512); 256 for the scalar. */
  static final int NR = Simd.ENABLED ? MatmulSimd.NR : 256;

  /** k's per packed block. */
  static final int KC = 128;

  /** Rows per job, a multiple of MR: the packed A block is MC × KC (256 KiB), in L2. */
  static final int MC = 512;

  /** Columns per job, a multiple of NR: the packed B block is KC × NC (256 KiB). */
  static final int NC = NR * Math.max(1, 512 / NR);

  /**
   * Below this many rows, and for C long enough to pay for the lane reductions, the forward takes
   * dot products: packing the weight costs about as much as 40 rows of multiply-adds.
   */
  static final int FEW_ROWS = 48;

  /**
   * A job of at most this many panels reads rows of A in place: packing them would pay off over few
   * panels only (x_proj's 80 columns, dt_proj's dinp with 48).
   */
  static final int INPLACE_PANELS = 2;

  /**
   * Multiply-adds below which a piece of the GEMM is not worth handing to another thread: waking a
   * pool worker costs some 10 µs, about 1M multiply-adds.
   */
  static final int GRAIN_MACS = 1 << 20;

  /** The same for the memory-bound dot products: 10 µs of reading the weight. */
  static final int FEW_GRAIN_MACS = 1 << 18;

  private static final ThreadLocal<float[]> PACK_A =
      ThreadLocal.withInitial(() -> new float[MC * KC]);
  private static final ThreadLocal<float[]> PACK_B =
      ThreadLocal.withInitial(() -> new float[KC * NC + NC]);

  /** One weight row's k block, decoded to fp32 for packing. */
  private static final ThreadLocal<float[]> WEIGHT_ROW =
      ThreadLocal.withInitial(() -> new float[KC]);

  /** An MR × NR edge tile, then the scalar kernel's B row. */
  private static final ThreadLocal<float[]> TILE =
      ThreadLocal.withInitial(() -> new float[(MR + 1) * NR]);

  private MatmulGemm() {}

  /**
   * Whether a forward of BT rows over C inputs takes the dot products (see {@link #FEW_ROWS}); the
   * scalar dot products are slow enough that the scalar GEMM wins from 4 rows on.
   */
  static boolean fewRows(boolean simd, int BT, int C) {
    return BT < 4 || (simd && BT < FEW_ROWS && C >= 256);
  }

  /**
   * out[i, j] (+)= Σ_k A[i, k]·B[k, j] (+ bias[j]) for i < M, j < N, k < K, where A[i, k] = a[aOff
   * + i·aRs + k·aCs], B[k, j] = b[bOff + k·bKs + j·bJs], out[i, j] = out[outOff + i·outRs + j].
   * With accumulate the products are added to out (bias must be null); without, out is overwritten.
   */
  static void gemm(
      boolean simd,
      float[] out,
      int outOff,
      int outRs,
      float[] a,
      int aOff,
      int aRs,
      int aCs,
      float[] b,
      int bOff,
      int bKs,
      int bJs,
      float[] bias,
      boolean accumulate,
      int M,
      int K,
      int N) {
    gemm(
        simd,
        out,
        outOff,
        outRs,
        a,
        aOff,
        aRs,
        aCs,
        b,
        bOff,
        bKs,
        bJs,
        null,
        bias,
        accumulate,
        M,
        K,
        N);
  }

  /**
   * The forward out[i, j] = Σ_k A[i, k]·W[j, k] + bias[j] with the weight W (N, K) in any format: B
   * = Wᵀ, each panel decoded to fp32 as it is packed. A[i, k] = a[aOff + i·aRs + k].
   */
  static void gemm(
      boolean simd,
      float[] out,
      int outOff,
      int outRs,
      float[] a,
      int aOff,
      int aRs,
      WeightMatrix w,
      float[] bias,
      int M) {
    gemm(
        simd, out, outOff, outRs, a, aOff, aRs, 1, null, 0, 1, w.cols, w, bias, false, M, w.cols,
        w.rows);
  }

  /** {@link #gemm}, with B read from {@code bw}ᵀ instead of b when bw is non-null. */
  private static void gemm(
      boolean simd,
      float[] out,
      int outOff,
      int outRs,
      float[] a,
      int aOff,
      int aRs,
      int aCs,
      float[] b,
      int bOff,
      int bKs,
      int bJs,
      WeightMatrix bw,
      float[] bias,
      boolean accumulate,
      int M,
      int K,
      int N) {
    if (M <= 0 || N <= 0) {
      return;
    }
    if (K <= 0) {
      if (!accumulate) {
        for (int i = 0; i < M; i++) {
          for (int j = 0; j < N; j++) {
            out[outOff + i * outRs + j] = bias == null ? 0f : bias[j];
          }
        }
      }
      return;
    }
    int panels = ceilDiv(N, NR), units = ceilDiv(M, MR);
    int colBlocks = ceilDiv(panels, NC / NR), rowBlocks = ceilDiv(units, MC / MR);
    int T = Parallel.threads();
    if (colBlocks * rowBlocks < 2 * T) { // two jobs per worker at least, where the rows allow it
      rowBlocks = Math.min(units, ceilDiv(2 * T, colBlocks));
    }
    int jobs = colBlocks * rowBlocks, rb = rowBlocks, cb = colBlocks;
    long macs = (long) M * K * N;
    int workers = (int) Math.max(1, Math.min(Math.min(T, jobs), macs / GRAIN_MACS));
    AtomicInteger next = new AtomicInteger();
    Parallel.forRange(
        workers,
        1,
        (w0, w1) -> {
          float[] ap = PACK_A.get(), bp = PACK_B.get(), tile = TILE.get();
          for (int job = next.getAndIncrement(); job < jobs; job = next.getAndIncrement()) {
            int c = job / rb, r = job - c * rb;
            int p0 = (int) ((long) panels * c / cb), p1 = (int) ((long) panels * (c + 1) / cb);
            int u0 = (int) ((long) units * r / rb), u1 = (int) ((long) units * (r + 1) / rb);
            block(
                simd,
                out,
                outOff,
                outRs,
                a,
                aOff,
                aRs,
                aCs,
                b,
                bOff,
                bKs,
                bJs,
                bw,
                bias,
                accumulate,
                M,
                K,
                N,
                u0 * MR,
                Math.min(M, u1 * MR),
                p0 * NR,
                Math.min(N, p1 * NR),
                ap,
                bp,
                tile);
          }
        });
  }

  /** One job: rows [i0, i1) × columns [j0, j1) of out, all k's. */
  private static void block(
      boolean simd,
      float[] out,
      int outOff,
      int outRs,
      float[] a,
      int aOff,
      int aRs,
      int aCs,
      float[] b,
      int bOff,
      int bKs,
      int bJs,
      WeightMatrix bw,
      float[] bias,
      boolean accumulate,
      int M,
      int K,
      int N,
      int i0,
      int i1,
      int j0,
      int j1,
      float[] ap,
      float[] bp,
      float[] tile) {
    int np = ceilDiv(j1 - j0, NR), nu = ceilDiv(i1 - i0, MR);
    // the first k block starts from the bias (or zero) row, kept after the packed B panels
    int biasAt = KC * NC;
    for (int j = 0; j < np * NR; j++) {
      bp[biasAt + j] = bias != null && j0 + j < j1 ? bias[j0 + j] : 0f;
    }
    // A is read in place where packing would not pay: doutᵀ (aRs = 1) already has the micro-panel
    // layout, with k stride aCs; rows of A (aCs = 1) are used by np panels only. Otherwise A is
    // packed, and so is a bottom edge of fewer than MR rows.
    boolean inPlace = aRs == 1 || (aCs == 1 && np <= INPLACE_PANELS);
    int last = nu - 1;
    boolean ragged = i1 - i0 - last * MR < MR;
    for (int k0 = 0; k0 < K; k0 += KC) {
      int kc = Math.min(KC, K - k0);
      if (bw != null) {
        packWeight(bp, bw, k0, kc, j0, j1, WEIGHT_ROW.get());
      } else {
        packB(bp, b, bOff, bKs, bJs, k0, kc, j0, j1);
      }
      if (!inPlace) {
        packA(ap, a, aOff, aRs, aCs, k0, kc, i0, i1);
      } else if (ragged) {
        packA(ap, a, aOff, aRs, aCs, k0, kc, i0 + last * MR, i1);
      }
      boolean first = k0 == 0 && !accumulate;
      for (int p = 0; p < np; p++) {
        int j = j0 + p * NR, bo = p * kc * NR, w = Math.min(NR, N - j);
        for (int u = 0; u < nu; u++) {
          int i = i0 + u * MR, h = Math.min(MR, M - i), o = outOff + i * outRs + j;
          // the micro-panel: A[i + r, k0 + k] = ak[ao + r·ars + k·aks]
          float[] ak = ap;
          int ao = inPlace ? 0 : u * kc * MR, ars = 1, aks = MR;
          if (inPlace && h == MR) {
            ak = a;
            ao = aOff + i * aRs + k0 * aCs;
            ars = aRs;
            aks = aCs;
          }
          if (h == MR && w == NR) {
            kernel(
                simd,
                kc,
                ak,
                ao,
                ars,
                aks,
                bp,
                bo,
                first ? bp : out,
                first ? biasAt + p * NR : o,
                first ? 0 : outRs,
                out,
                o,
                outRs,
                tile);
          } else { // an edge: the same arithmetic on a scratch tile, valid part copied in and out
            if (!first) {
              for (int r = 0; r < h; r++) {
                System.arraycopy(out, o + r * outRs, tile, r * NR, w);
              }
            }
            kernelEdge(
                simd,
                w,
                kc,
                ak,
                ao,
                ars,
                aks,
                bp,
                bo,
                first ? bp : tile,
                first ? biasAt + p * NR : 0,
                first ? 0 : NR,
                tile,
                0,
                NR,
                tile);
            for (int r = 0; r < h; r++) {
              System.arraycopy(tile, r * NR, out, o + r * outRs, w);
            }
          }
        }
      }
    }
  }

  /**
   * c[r, :NR] = init[r, :NR] + Σ_k ap[ao + r·aRs + k·aKs]·bp[bo + k·NR + :NR] for r < MR; row r of
   * c at co + r·cRs, of init at io + r·iRs (iRs = 0: the bias row).
   */
  private static void kernel(
      boolean simd,
      int kc,
      float[] ap,
      int ao,
      int aRs,
      int aKs,
      float[] bp,
      int bo,
      float[] init,
      int io,
      int iRs,
      float[] c,
      int co,
      int cRs,
      float[] tile) {
    if (simd) {
      MatmulSimd.kernel(kc, ap, ao, aRs, aKs, bp, bo, init, io, iRs, c, co, cRs);
    } else {
      kernelScalar(NR, kc, ap, ao, aRs, aKs, bp, bo, init, io, iRs, c, co, cRs, tile);
    }
  }

  /**
   * {@link #kernel} for a tile with w ≤ NR valid columns: where they fit in one or two vectors,
   * only those are computed (x_proj's 80 columns are 64 + 16), each with the same FMA chain as in
   * the full tile.
   */
  private static void kernelEdge(
      boolean simd,
      int w,
      int kc,
      float[] ap,
      int ao,
      int aRs,
      int aKs,
      float[] bp,
      int bo,
      float[] init,
      int io,
      int iRs,
      float[] c,
      int co,
      int cRs,
      float[] tile) {
    int vl = NR / 4, nv = ceilDiv(w, vl);
    if (!simd) {
      kernelScalar(w, kc, ap, ao, aRs, aKs, bp, bo, init, io, iRs, c, co, cRs, tile);
      return;
    }
    if (nv >= 3) { // three single-vector kernels cost more than one full one
      MatmulSimd.kernel(kc, ap, ao, aRs, aKs, bp, bo, init, io, iRs, c, co, cRs);
      return;
    }
    for (int v = 0; v < nv; v++) {
      int dv = v * vl;
      MatmulSimd.kernel1(kc, ap, ao, aRs, aKs, bp, bo + dv, init, io + dv, iRs, c, co + dv, cRs);
    }
  }

  /**
   * bp[p·kc·NR + k·NR + j] = B[k0 + k, j0 + p·NR + j] for the columns [j0, j1), zero past j1 up to
   * the panel's end.
   */
  private static void packB(
      float[] bp, float[] b, int bOff, int bKs, int bJs, int k0, int kc, int j0, int j1) {
    int np = ceilDiv(j1 - j0, NR);
    for (int p = 0; p < np; p++) {
      int jp = j0 + p * NR, w = Math.min(NR, j1 - jp), dst = p * kc * NR;
      if (bJs == 1) { // rows of B are contiguous (weight in dinp, inp in dweight): copy
        for (int k = 0; k < kc; k++) {
          int d = dst + k * NR;
          System.arraycopy(b, bOff + (k0 + k) * bKs + jp, bp, d, w);
          for (int j = w; j < NR; j++) {
            bp[d + j] = 0f;
          }
        }
      } else { // columns of B are contiguous (weight rows in the forward): transpose
        for (int j = 0; j < w; j++) {
          int src = bOff + k0 * bKs + (jp + j) * bJs, d = dst + j;
          for (int k = 0; k < kc; k++) {
            bp[d + k * NR] = b[src + k * bKs];
          }
        }
        for (int j = w; j < NR; j++) {
          for (int k = 0; k < kc; k++) {
            bp[dst + k * NR + j] = 0f;
          }
        }
      }
    }
  }

  /**
   * {@link #packB} for B = Wᵀ: bp[p·kc·NR + k·NR + j] = W[j0 + p·NR + j, k0 + k], each weight row
   * decoded to fp32 (into {@code row}, at least kc long) before it is spread down its column.
   */
  private static void packWeight(
      float[] bp, WeightMatrix w, int k0, int kc, int j0, int j1, float[] row) {
    int np = ceilDiv(j1 - j0, NR);
    for (int p = 0; p < np; p++) {
      int jp = j0 + p * NR, n = Math.min(NR, j1 - jp), dst = p * kc * NR;
      for (int j = 0; j < NR; j++) {
        if (j < n) {
          w.decode(jp + j, k0, kc, row, 0);
          for (int k = 0; k < kc; k++) {
            bp[dst + k * NR + j] = row[k];
          }
        } else {
          for (int k = 0; k < kc; k++) {
            bp[dst + k * NR + j] = 0f;
          }
        }
      }
    }
  }

  /**
   * ap[u·kc·MR + k·MR + r] = A[i0 + u·MR + r, k0 + k] for the rows [i0, i1): micro-panels of MR
   * rows interleaved by k (the order the micro-kernel broadcasts them in), zero past i1.
   */
  private static void packA(
      float[] ap, float[] a, int aOff, int aRs, int aCs, int k0, int kc, int i0, int i1) {
    int nu = ceilDiv(i1 - i0, MR);
    for (int u = 0; u < nu; u++) {
      int iu = i0 + u * MR, h = Math.min(MR, i1 - iu), d = u * kc * MR;
      if (h == MR && aCs == 1) { // rows of A are contiguous (inp, dout): interleave four of them
        int s0 = aOff + iu * aRs + k0, s1 = s0 + aRs, s2 = s1 + aRs, s3 = s2 + aRs;
        for (int k = 0; k < kc; k++) {
          int dk = d + k * MR;
          ap[dk] = a[s0 + k];
          ap[dk + 1] = a[s1 + k];
          ap[dk + 2] = a[s2 + k];
          ap[dk + 3] = a[s3 + k];
        }
      } else {
        for (int k = 0; k < kc; k++) {
          int src = aOff + iu * aRs + (k0 + k) * aCs, dk = d + k * MR;
          for (int r = 0; r < h; r++) {
            ap[dk + r] = a[src + r * aRs];
          }
          for (int r = h; r < MR; r++) {
            ap[dk + r] = 0f;
          }
        }
      }
    }
  }

  /**
   * The scalar micro-kernel, {@link MatmulSimd#kernel}'s contract for the first nw ≤ NR columns (an
   * edge tile computes its valid columns only). The tile lives in scratch rows {@code acc[r·NR ..]}
   * and each B row is first copied to {@code acc[MR·NR ..]}: with every array indexed from a
   * constant offset, C2 vectorizes the j loop.
   */
  static void kernelScalar(
      int nw,
      int kc,
      float[] ap,
      int ao,
      int aRs,
      int aKs,
      float[] bp,
      int bo,
      float[] init,
      int io,
      int iRs,
      float[] c,
      int co,
      int cRs,
      float[] acc) {
    for (int r = 0; r < MR; r++) {
      System.arraycopy(init, io + r * iRs, acc, r * NR, nw);
    }
    int x = MR * NR, r1 = ao + aRs, r2 = r1 + aRs, r3 = r2 + aRs;
    for (int k = 0; k < kc; k++) {
      System.arraycopy(bp, bo + k * NR, acc, x, nw);
      int ak = k * aKs;
      float a0 = ap[ao + ak], a1 = ap[r1 + ak], a2 = ap[r2 + ak], a3 = ap[r3 + ak];
      for (int j = 0; j < nw; j++) {
        float bj = acc[x + j];
        acc[j] += a0 * bj;
        acc[NR + j] += a1 * bj;
        acc[2 * NR + j] += a2 * bj;
        acc[3 * NR + j] += a3 * bj;
      }
    }
    for (int r = 0; r < MR; r++) {
      System.arraycopy(acc, r * NR, c, co + r * cRs, nw);
    }
  }

  /**
   * The dot-product forward: out[t, o] = Σ_c inp[t, c]·weight[o, c] + bias[o], threaded over chunks
   * of groups of four output features (taken one at a time: a slowed core takes fewer), each
   * group's weight rows read from memory once.
   */
  static void forwardFewRows(
      boolean simd,
      float[] out,
      int outOff,
      int outStride,
      float[] inp,
      int inOff,
      int inStride,
      float[] weight,
      float[] bias,
      int BT,
      int C,
      int OC) {
    int groups = ceilDiv(OC, 4);
    int grain = Math.max(1, FEW_GRAIN_MACS / Math.max(1, 4 * C * BT));
    Parallel.forChunks(
        groups,
        grain,
        (g0, g1) -> {
          int o0 = 4 * g0, o1 = Math.min(OC, 4 * g1);
          if (simd) {
            MatmulSimd.dotRows(
                out, outOff, outStride, inp, inOff, inStride, weight, bias, BT, C, o0, o1);
          } else {
            dotRowsScalar(
                out, outOff, outStride, inp, inOff, inStride, weight, bias, BT, C, o0, o1);
          }
        });
  }

  /**
   * {@link #forwardFewRows} for a weight in any {@link WeightMatrix} format: threaded over groups
   * of four output features; without the Vector API, each weight row is decoded once and dotted
   * with every row of inp.
   */
  static void forwardFewRows(
      boolean simd,
      float[] out,
      int outOff,
      int outStride,
      float[] inp,
      int inOff,
      int inStride,
      WeightMatrix w,
      float[] bias,
      int BT) {
    int C = w.cols, OC = w.rows;
    boolean vector = simd && WeightMatrixSimd.usable();
    int groups = ceilDiv(OC, 4);
    int grain = Math.max(1, FEW_GRAIN_MACS / Math.max(1, 4 * C * BT));
    Parallel.forChunks(
        groups,
        grain,
        (g0, g1) -> {
          int o0 = 4 * g0, o1 = Math.min(OC, 4 * g1);
          if (vector) {
            WeightMatrixSimd.dotRows(
                out, outOff, outStride, inp, inOff, inStride, w, bias, BT, o0, o1);
          } else {
            float[] row = new float[C];
            for (int o = o0; o < o1; o++) {
              w.decode(o, 0, C, row, 0);
              for (int t = 0; t < BT; t++) {
                int io = inOff + t * inStride;
                float s = 0f;
                for (int c = 0; c < C; c++) {
                  s += inp[io + c] * row[c];
                }
                out[outOff + t * outStride + o] = s + (bias == null ? 0f : bias[o]);
              }
            }
          }
        });
  }

  /**
   * {@link #forwardFewRows} for the output features [o0, o1), scalar: four weight rows against one
   * row of inp, two partial sums each (eight independent adds keep the loads flowing; C2 does not
   * reorder a float sum).
   */
  static void dotRowsScalar(
      float[] out,
      int outOff,
      int outStride,
      float[] inp,
      int inOff,
      int inStride,
      float[] weight,
      float[] bias,
      int BT,
      int C,
      int o0,
      int o1) {
    int o = o0;
    for (; o + 4 <= o1; o += 4) {
      int w0 = o * C, w1 = w0 + C, w2 = w1 + C, w3 = w2 + C;
      for (int t = 0; t < BT; t++) {
        int io = inOff + t * inStride;
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f, u0 = 0f, u1 = 0f, u2 = 0f, u3 = 0f;
        int c = 0;
        for (; c + 2 <= C; c += 2) {
          float x = inp[io + c], y = inp[io + c + 1];
          s0 += x * weight[w0 + c];
          s1 += x * weight[w1 + c];
          s2 += x * weight[w2 + c];
          s3 += x * weight[w3 + c];
          u0 += y * weight[w0 + c + 1];
          u1 += y * weight[w1 + c + 1];
          u2 += y * weight[w2 + c + 1];
          u3 += y * weight[w3 + c + 1];
        }
        if (c < C) {
          float x = inp[io + c];
          s0 += x * weight[w0 + c];
          s1 += x * weight[w1 + c];
          s2 += x * weight[w2 + c];
          s3 += x * weight[w3 + c];
        }
        int oo = outOff + t * outStride + o;
        out[oo] = s0 + u0 + (bias == null ? 0f : bias[o]);
        out[oo + 1] = s1 + u1 + (bias == null ? 0f : bias[o + 1]);
        out[oo + 2] = s2 + u2 + (bias == null ? 0f : bias[o + 2]);
        out[oo + 3] = s3 + u3 + (bias == null ? 0f : bias[o + 3]);
      }
    }
    for (; o < o1; o++) {
      int wo = o * C;
      for (int t = 0; t < BT; t++) {
        int io = inOff + t * inStride;
        float s = 0f;
        for (int c = 0; c < C; c++) {
          s += inp[io + c] * weight[wo + c];
        }
        out[outOff + t * outStride + o] = s + (bias == null ? 0f : bias[o]);
      }
    }
  }

  /** dbias[o] += Σ_t dout[t, o], threaded over o, each range walking dout row by row. */
  static void biasBackward(
      float[] dbias, float[] dout, int doutOff, int doutStride, int BT, int OC) {
    Parallel.forRange(
        OC,
        Math.max(256, FEW_GRAIN_MACS / Math.max(1, BT)),
        (o0, o1) -> {
          for (int t = 0; t < BT; t++) {
            int d = doutOff + t * doutStride;
            for (int o = o0; o < o1; o++) {
              dbias[o] += dout[d + o];
            }
          }
        });
  }

  static int ceilDiv(int x, int y) {
    return (x + y - 1) / y;
  }
}
