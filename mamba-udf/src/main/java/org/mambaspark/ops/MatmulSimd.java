package org.mambaspark.ops;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Matmul} with the Vector API. Loaded only when {@link Simd#ENABLED}.
 *
 * <p>Design (after BLIS/GotoBLAS, simplified): every product is out[i, j] (+)= Σ_k A[i, k]·Bm[k,
 * j]. The j axis is cut in panels of {@code PW} = 4 vectors (64 floats with AVX-512); for each
 * panel and block of {@code KC} k's, the B slice is packed contiguous (K_C × PW, zero-padded:
 * transposing the weight for the forward, copying for the backward), then a 4 × PW register tile
 * (16 vector accumulators, 4 broadcasts + 4 loads per 16 FMAs) sweeps the rows. Jobs are (panel,
 * row block) pairs, so each output element has one owner and a fixed summation order: results do
 * not depend on the thread count. Token-by-token decoding (a handful of rows) is memory-bound and
 * takes a dot-product kernel over the weight rows instead, threaded over output features.
 */
final class MatmulSimd {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int VL = S.length();

  /** Panel width: 4 vectors. */
  private static final int PW = 4 * VL;

  /**
   * k's per packed block: a KC × PW panel (64 KiB with AVX-512) stays in L2 while the rows sweep
   * it.
   */
  private static final int KC = 256;

  /** Rows per job. */
  private static final int MC = 512;

  /** Below this many rows the forward uses the dot-product kernel (no packing). */
  private static final int SMALL_ROWS = 8;

  private static final ThreadLocal<float[]> PACK =
      ThreadLocal.withInitial(() -> new float[KC * PW + PW]);
  private static final ThreadLocal<float[]> TILE = ThreadLocal.withInitial(() -> new float[4 * PW]);

  private MatmulSimd() {}

  static void forward(
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
    if (BT < SMALL_ROWS) {
      forwardFewRows(out, outOff, outStride, inp, inOff, inStride, weight, bias, BT, C, OC);
      return;
    }
    // A = inp (BT × C), Bm[k=c, j=o] = weight[o, c]: the panel is packed transposed.
    gemm(out, outOff, outStride, inp, inOff, inStride, 1, weight, 1, C, bias, false, BT, C, OC);
  }

  static void backward(
      float[] dinp,
      int dinpOff,
      int dinpStride,
      float[] dweight,
      float[] dbias,
      float[] dout,
      int doutOff,
      int doutStride,
      float[] inp,
      int inOff,
      int inStride,
      float[] weight,
      int BT,
      int C,
      int OC) {
    if (dinp != null) {
      // dinp[t, c] += Σ_o dout[t, o] · weight[o, c]: A = dout (BT × OC), Bm = weight (OC × C) as it
      // is.
      gemm(
          dinp,
          dinpOff,
          dinpStride,
          dout,
          doutOff,
          doutStride,
          1,
          weight,
          C,
          1,
          null,
          true,
          BT,
          OC,
          C);
    }
    if (dweight != null) {
      // dweight[o, c] += Σ_t dout[t, o] · inp[t, c]: A = doutᵀ (OC × BT), Bm = inp (BT × C).
      gemm(
          dweight,
          0,
          C,
          dout,
          doutOff,
          1,
          doutStride,
          inp,
          inStride,
          1,
          null,
          true,
          OC,
          BT,
          C,
          inOff);
    }
    if (dbias != null) {
      Parallel.forRange(
          OC,
          64,
          (o0, o1) -> {
            for (int o = o0; o < o1; o++) {
              float s = 0f;
              for (int t = 0; t < BT; t++) {
                s += dout[doutOff + t * doutStride + o];
              }
              dbias[o] += s;
            }
          });
    }
  }

  private static void gemm(
      float[] out,
      int outOff,
      int outRs,
      float[] a,
      int aOff,
      int aRs,
      int aCs,
      float[] b,
      int bKs,
      int bJs,
      float[] bias,
      boolean accumulate,
      int M,
      int K,
      int N) {
    gemm(out, outOff, outRs, a, aOff, aRs, aCs, b, bKs, bJs, bias, accumulate, M, K, N, 0);
  }

  /**
   * out[i, j] (+)= Σ_k A[i, k]·Bm[k, j] (+ bias[j]) for i < M, j < N, k < K, where A[i, k] = a[aOff
   * + i·aRs + k·aCs], Bm[k, j] = b[bOff + k·bKs + j·bJs], out[i, j] = out[outOff + i·outRs + j].
   */
  private static void gemm(
      float[] out,
      int outOff,
      int outRs,
      float[] a,
      int aOff,
      int aRs,
      int aCs,
      float[] b,
      int bKs,
      int bJs,
      float[] bias,
      boolean accumulate,
      int M,
      int K,
      int N,
      int bOff) {
    int panels = (N + PW - 1) / PW, rowBlocks = (M + MC - 1) / MC;
    Parallel.forEachBlock(
        panels * rowBlocks,
        job -> {
          int p = job / rowBlocks, rb = job - p * rowBlocks;
          int j0 = p * PW, w = Math.min(PW, N - j0);
          int i0 = rb * MC, i1 = Math.min(M, i0 + MC);
          float[] pack = PACK.get();
          float[] tileOut = TILE.get();
          for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = Math.min(KC, K - k0);
            // pack Bm[k0 .. k0+kc, j0 .. j0+w) into pack (kc × PW), zero-padded past w
            if (bJs == 1) {
              for (int k = 0; k < kc; k++) {
                int dst = k * PW;
                System.arraycopy(b, bOff + (k0 + k) * bKs + j0, pack, dst, w);
                for (int j = w; j < PW; j++) {
                  pack[dst + j] = 0f;
                }
              }
            } else { // transposing: read each source row contiguously
              for (int j = 0; j < PW; j++) {
                if (j < w) {
                  int src = bOff + k0 * bKs + (j0 + j) * bJs;
                  for (int k = 0; k < kc; k++) {
                    pack[k * PW + j] = b[src + k * bKs];
                  }
                } else {
                  for (int k = 0; k < kc; k++) {
                    pack[k * PW + j] = 0f;
                  }
                }
              }
            }
            // the bias row rides after the panel
            int biasAt = kc * PW;
            boolean first = k0 == 0 && !accumulate;
            for (int j = 0; j < PW; j++) {
              pack[biasAt + j] = first && bias != null && j < w ? bias[j0 + j] : 0f;
            }
            int i = i0;
            for (; i + 4 <= i1; i += 4) {
              tile4(
                  out,
                  outOff + i * outRs + j0,
                  outRs,
                  a,
                  aOff + i * aRs + k0 * aCs,
                  aRs,
                  aCs,
                  pack,
                  kc,
                  w,
                  !first,
                  tileOut);
            }
            for (; i < i1; i++) {
              tile1(
                  out,
                  outOff + i * outRs + j0,
                  a,
                  aOff + i * aRs + k0 * aCs,
                  aCs,
                  pack,
                  kc,
                  w,
                  !first,
                  tileOut);
            }
          }
        });
  }

  /** 4 rows × PW columns: o (+)= A(4 × kc) · pack(kc × PW) + pack's bias row. */
  private static void tile4(
      float[] out,
      int o,
      int outRs,
      float[] a,
      int ao,
      int aRs,
      int aCs,
      float[] pack,
      int kc,
      int w,
      boolean load,
      float[] tileOut) {
    int bi = kc * PW;
    FloatVector c00 = FloatVector.fromArray(S, pack, bi),
        c01 = FloatVector.fromArray(S, pack, bi + VL);
    FloatVector c02 = FloatVector.fromArray(S, pack, bi + 2 * VL),
        c03 = FloatVector.fromArray(S, pack, bi + 3 * VL);
    FloatVector c10 = c00, c11 = c01, c12 = c02, c13 = c03;
    FloatVector c20 = c00, c21 = c01, c22 = c02, c23 = c03;
    FloatVector c30 = c00, c31 = c01, c32 = c02, c33 = c03;
    int a0 = ao, a1 = ao + aRs, a2 = ao + 2 * aRs, a3 = ao + 3 * aRs;
    for (int k = 0; k < kc; k++) {
      int p = k * PW, ak = k * aCs;
      FloatVector b0 = FloatVector.fromArray(S, pack, p);
      FloatVector b1 = FloatVector.fromArray(S, pack, p + VL);
      FloatVector b2 = FloatVector.fromArray(S, pack, p + 2 * VL);
      FloatVector b3 = FloatVector.fromArray(S, pack, p + 3 * VL);
      FloatVector x = FloatVector.broadcast(S, a[a0 + ak]);
      c00 = b0.fma(x, c00);
      c01 = b1.fma(x, c01);
      c02 = b2.fma(x, c02);
      c03 = b3.fma(x, c03);
      x = FloatVector.broadcast(S, a[a1 + ak]);
      c10 = b0.fma(x, c10);
      c11 = b1.fma(x, c11);
      c12 = b2.fma(x, c12);
      c13 = b3.fma(x, c13);
      x = FloatVector.broadcast(S, a[a2 + ak]);
      c20 = b0.fma(x, c20);
      c21 = b1.fma(x, c21);
      c22 = b2.fma(x, c22);
      c23 = b3.fma(x, c23);
      x = FloatVector.broadcast(S, a[a3 + ak]);
      c30 = b0.fma(x, c30);
      c31 = b1.fma(x, c31);
      c32 = b2.fma(x, c32);
      c33 = b3.fma(x, c33);
    }
    // Vectors must not cross a call boundary (an un-inlined callee would box them): spill to the
    // tile buffer,
    // which the plain loop in flush() adds or copies into out.
    c00.intoArray(tileOut, 0);
    c01.intoArray(tileOut, VL);
    c02.intoArray(tileOut, 2 * VL);
    c03.intoArray(tileOut, 3 * VL);
    c10.intoArray(tileOut, PW);
    c11.intoArray(tileOut, PW + VL);
    c12.intoArray(tileOut, PW + 2 * VL);
    c13.intoArray(tileOut, PW + 3 * VL);
    c20.intoArray(tileOut, 2 * PW);
    c21.intoArray(tileOut, 2 * PW + VL);
    c22.intoArray(tileOut, 2 * PW + 2 * VL);
    c23.intoArray(tileOut, 2 * PW + 3 * VL);
    c30.intoArray(tileOut, 3 * PW);
    c31.intoArray(tileOut, 3 * PW + VL);
    c32.intoArray(tileOut, 3 * PW + 2 * VL);
    c33.intoArray(tileOut, 3 * PW + 3 * VL);
    flush(out, o, outRs, tileOut, 4, w, load);
  }

  private static void tile1(
      float[] out,
      int o,
      float[] a,
      int ao,
      int aCs,
      float[] pack,
      int kc,
      int w,
      boolean load,
      float[] tileOut) {
    int bi = kc * PW;
    FloatVector c0 = FloatVector.fromArray(S, pack, bi),
        c1 = FloatVector.fromArray(S, pack, bi + VL);
    FloatVector c2 = FloatVector.fromArray(S, pack, bi + 2 * VL),
        c3 = FloatVector.fromArray(S, pack, bi + 3 * VL);
    for (int k = 0; k < kc; k++) {
      int p = k * PW;
      FloatVector x = FloatVector.broadcast(S, a[ao + k * aCs]);
      c0 = FloatVector.fromArray(S, pack, p).fma(x, c0);
      c1 = FloatVector.fromArray(S, pack, p + VL).fma(x, c1);
      c2 = FloatVector.fromArray(S, pack, p + 2 * VL).fma(x, c2);
      c3 = FloatVector.fromArray(S, pack, p + 3 * VL).fma(x, c3);
    }
    c0.intoArray(tileOut, 0);
    c1.intoArray(tileOut, VL);
    c2.intoArray(tileOut, 2 * VL);
    c3.intoArray(tileOut, 3 * VL);
    flush(out, o, 0, tileOut, 1, w, load);
  }

  /** out[o + r·outRs + j] (+)= tile[r·PW + j] for r < rows, j < w. */
  private static void flush(
      float[] out, int o, int outRs, float[] tile, int rows, int w, boolean load) {
    for (int r = 0; r < rows; r++) {
      int oo = o + r * outRs, to = r * PW;
      if (load) {
        for (int j = 0; j < w; j++) {
          out[oo + j] += tile[to + j];
        }
      } else {
        System.arraycopy(tile, to, out, oo, w);
      }
    }
  }

  /** Few rows: dot products along c, 4 weight rows at a time, threaded over output features. */
  private static void forwardFewRows(
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
    int groups = (OC + 3) / 4;
    Parallel.forRange(
        groups,
        Math.max(1, 8192 / Math.max(1, C)),
        (g0, g1) -> {
          int cv = C - C % VL;
          for (int g = g0; g < g1; g++) {
            int o = 4 * g;
            if (o + 4 <= OC) {
              int w0 = o * C, w1 = w0 + C, w2 = w1 + C, w3 = w2 + C;
              for (int t = 0; t < BT; t++) {
                int io = inOff + t * inStride;
                FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
                for (int c = 0; c < cv; c += VL) {
                  FloatVector x = FloatVector.fromArray(S, inp, io + c);
                  s0 = FloatVector.fromArray(S, weight, w0 + c).fma(x, s0);
                  s1 = FloatVector.fromArray(S, weight, w1 + c).fma(x, s1);
                  s2 = FloatVector.fromArray(S, weight, w2 + c).fma(x, s2);
                  s3 = FloatVector.fromArray(S, weight, w3 + c).fma(x, s3);
                }
                float r0 = s0.reduceLanes(VectorOperators.ADD),
                    r1 = s1.reduceLanes(VectorOperators.ADD);
                float r2 = s2.reduceLanes(VectorOperators.ADD),
                    r3 = s3.reduceLanes(VectorOperators.ADD);
                for (int c = cv; c < C; c++) {
                  float x = inp[io + c];
                  r0 += x * weight[w0 + c];
                  r1 += x * weight[w1 + c];
                  r2 += x * weight[w2 + c];
                  r3 += x * weight[w3 + c];
                }
                int oo = outOff + t * outStride + o;
                out[oo] = r0 + (bias == null ? 0f : bias[o]);
                out[oo + 1] = r1 + (bias == null ? 0f : bias[o + 1]);
                out[oo + 2] = r2 + (bias == null ? 0f : bias[o + 2]);
                out[oo + 3] = r3 + (bias == null ? 0f : bias[o + 3]);
              }
            } else {
              for (int oi = o; oi < OC; oi++) {
                int wo = oi * C;
                for (int t = 0; t < BT; t++) {
                  int io = inOff + t * inStride;
                  FloatVector s = FloatVector.zero(S);
                  for (int c = 0; c < cv; c += VL) {
                    s =
                        FloatVector.fromArray(S, weight, wo + c)
                            .fma(FloatVector.fromArray(S, inp, io + c), s);
                  }
                  float r = s.reduceLanes(VectorOperators.ADD);
                  for (int c = cv; c < C; c++) {
                    r += inp[io + c] * weight[wo + c];
                  }
                  out[outOff + t * outStride + oi] = r + (bias == null ? 0f : bias[oi]);
                }
              }
            }
          }
        });
  }
}
