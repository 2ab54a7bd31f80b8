package org.mambaspark.ops;

/**
 * The linear layers: out = inp @ weightᵀ + bias with PyTorch's (OC, C) weight layout, and its
 * backward, after llm.c's matmul_forward / matmul_backward (outputs first, backward adds).
 *
 * <p>Row-major flat arrays addressed as (offset, row stride) so that views (the z half of in_proj's
 * output, the Δ rank columns of x_proj's) need no copies. The fast path is {@link MatmulGemm}: a
 * packed, cache-blocked, register-tiled GEMM threaded over blocks of out, with the Vector API
 * micro-kernel of {@link MatmulSimd} when {@link Simd#ENABLED} and a scalar one C2 vectorizes
 * otherwise; a handful of rows (decoding) takes dot products along c instead. The references are
 * the plain triple loops, kept as the definition and for the tests.
 *
 * <p>Shapes in Mamba-130m (D = 768, ED = 1536, R = 48, V = 50280): in_proj (2·ED, D), x_proj (R +
 * 2N, ED), dt_proj (ED, R) reading the first R columns of x_proj's output (inStride R + 2N),
 * out_proj (D, ED), lm_head (V, D).
 */
public final class Matmul {
  private Matmul() {}

  /** Which path runs and its blocking, for logs and benchmarks. */
  public static String describe() {
    String kind = Simd.ENABLED ? "Vector API" : "scalar (no Vector API)";
    return String.format(
        "%s GEMM, register tile %dx%d, KC %d, MC %d, NC %d",
        kind, MatmulGemm.MR, MatmulGemm.NR, MatmulGemm.KC, MatmulGemm.MC, MatmulGemm.NC);
  }

  /**
   * out[t, o] = Σ_c inp[t, c] · weight[o, c] + bias[o], for t in [0, BT), o in [0, OC); out is
   * overwritten.
   *
   * @param out (BT, OC) at out[outOff + t*outStride + o]
   * @param inp (BT, C) at inp[inOff + t*inStride + c]
   * @param weight (OC, C), contiguous
   * @param bias (OC) or null
   */
  public static void matmulForward(
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
    forward(Simd.ENABLED, out, outOff, outStride, inp, inOff, inStride, weight, bias, BT, C, OC);
  }

  /** {@link #matmulForward} with the micro-kernels chosen: the tests run the scalar ones too. */
  static void forward(
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
    if (MatmulGemm.fewRows(simd, BT, C)) {
      MatmulGemm.forwardFewRows(
          simd, out, outOff, outStride, inp, inOff, inStride, weight, bias, BT, C, OC);
    } else {
      // A = inp (BT × C), B[c, o] = weight[o, c]: packed transposed
      MatmulGemm.gemm(
          simd, out, outOff, outStride, inp, inOff, inStride, 1, weight, 0, 1, C, bias, false, BT,
          C, OC);
    }
  }

  /**
   * {@link #matmulForward} with the weight in any {@link WeightMatrix} format: out[t, o] = Σ_c
   * inp[t, c] · W[o, c] + bias[o] for t < BT, o < W.rows, c < W.cols; out is overwritten. fp32 runs
   * as above; bf16 and int8 widen the weights to fp32 in registers (dot products for a few rows) or
   * as the GEMM packs its panels (many rows).
   */
  public static void matmulForward(
      float[] out,
      int outOff,
      int outStride,
      float[] inp,
      int inOff,
      int inStride,
      WeightMatrix weight,
      float[] bias,
      int BT) {
    forward(Simd.ENABLED, out, outOff, outStride, inp, inOff, inStride, weight, bias, BT);
  }

  /** The {@link WeightMatrix} forward with the micro-kernels chosen. */
  static void forward(
      boolean simd,
      float[] out,
      int outOff,
      int outStride,
      float[] inp,
      int inOff,
      int inStride,
      WeightMatrix weight,
      float[] bias,
      int BT) {
    int C = weight.cols, OC = weight.rows;
    if (weight.dtype == WeightMatrix.Dtype.FP32) {
      forward(simd, out, outOff, outStride, inp, inOff, inStride, weight.f32, bias, BT, C, OC);
    } else if (MatmulGemm.fewRows(simd, BT, C)) {
      MatmulGemm.forwardFewRows(
          simd, out, outOff, outStride, inp, inOff, inStride, weight, bias, BT);
    } else {
      MatmulGemm.gemm(simd, out, outOff, outStride, inp, inOff, inStride, weight, bias, BT);
    }
  }

  /** The definition for a {@link WeightMatrix}, single-threaded, each weight decoded by get. */
  public static void matmulForwardReference(
      float[] out,
      int outOff,
      int outStride,
      float[] inp,
      int inOff,
      int inStride,
      WeightMatrix weight,
      float[] bias,
      int BT) {
    int C = weight.cols, OC = weight.rows;
    for (int t = 0; t < BT; t++) {
      int io = inOff + t * inStride, oo = outOff + t * outStride;
      for (int o = 0; o < OC; o++) {
        float s = bias == null ? 0f : bias[o];
        for (int c = 0; c < C; c++) {
          s += inp[io + c] * weight.get(o, c);
        }
        out[oo + o] = s;
      }
    }
  }

  /** The definition, single-threaded. Same arguments as {@link #matmulForward}. */
  public static void matmulForwardReference(
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
    forwardRows(out, outOff, outStride, inp, inOff, inStride, weight, bias, 0, BT, C, OC);
  }

  private static void forwardRows(
      float[] out,
      int outOff,
      int outStride,
      float[] inp,
      int inOff,
      int inStride,
      float[] weight,
      float[] bias,
      int t0,
      int t1,
      int C,
      int OC) {
    for (int t = t0; t < t1; t++) {
      int io = inOff + t * inStride, oo = outOff + t * outStride;
      for (int o = 0; o < OC; o++) {
        float s = bias == null ? 0f : bias[o];
        int wo = o * C;
        for (int c = 0; c < C; c++) {
          s += inp[io + c] * weight[wo + c];
        }
        out[oo + o] = s;
      }
    }
  }

  /**
   * Accumulates (+=) the gradients of {@link #matmulForward}: dinp += dout @ weight, dweight +=
   * doutᵀ @ inp, dbias += Σ_t dout. Any of dinp, dweight, dbias may be null (not wanted).
   *
   * @param dinp at dinp[dinpOff + t*dinpStride + c]
   * @param dweight (OC, C)
   * @param dbias (OC)
   * @param dout at dout[doutOff + t*doutStride + o]
   */
  public static void matmulBackward(
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
    backward(
        Simd.ENABLED,
        dinp,
        dinpOff,
        dinpStride,
        dweight,
        dbias,
        dout,
        doutOff,
        doutStride,
        inp,
        inOff,
        inStride,
        weight,
        BT,
        C,
        OC);
  }

  /** {@link #matmulBackward} with the micro-kernels chosen. */
  static void backward(
      boolean simd,
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
      // dinp[t, c] += Σ_o dout[t, o] · weight[o, c]: A = dout (BT × OC), B = weight (OC × C)
      MatmulGemm.gemm(
          simd,
          dinp,
          dinpOff,
          dinpStride,
          dout,
          doutOff,
          doutStride,
          1,
          weight,
          0,
          C,
          1,
          null,
          true,
          BT,
          OC,
          C);
    }
    if (dweight != null) {
      // dweight[o, c] += Σ_t dout[t, o] · inp[t, c]: A = doutᵀ (OC × BT), B = inp (BT × C)
      MatmulGemm.gemm(
          simd,
          dweight,
          0,
          C,
          dout,
          doutOff,
          1,
          doutStride,
          inp,
          inOff,
          inStride,
          1,
          null,
          true,
          OC,
          BT,
          C);
    }
    if (dbias != null) {
      MatmulGemm.biasBackward(dbias, dout, doutOff, doutStride, BT, OC);
    }
  }

  /** The definition, single-threaded. Same arguments as {@link #matmulBackward}. */
  public static void matmulBackwardReference(
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
      backwardInputRows(dinp, dinpOff, dinpStride, dout, doutOff, doutStride, weight, 0, BT, C, OC);
    }
    if (dweight != null || dbias != null) {
      backwardWeightRows(
          dweight, dbias, dout, doutOff, doutStride, inp, inOff, inStride, 0, OC, BT, C);
    }
  }

  private static void backwardInputRows(
      float[] dinp,
      int dinpOff,
      int dinpStride,
      float[] dout,
      int doutOff,
      int doutStride,
      float[] weight,
      int t0,
      int t1,
      int C,
      int OC) {
    for (int t = t0; t < t1; t++) {
      int di = dinpOff + t * dinpStride, dd = doutOff + t * doutStride;
      for (int o = 0; o < OC; o++) {
        float d = dout[dd + o];
        int wo = o * C;
        for (int c = 0; c < C; c++) {
          dinp[di + c] += d * weight[wo + c];
        }
      }
    }
  }

  private static void backwardWeightRows(
      float[] dweight,
      float[] dbias,
      float[] dout,
      int doutOff,
      int doutStride,
      float[] inp,
      int inOff,
      int inStride,
      int o0,
      int o1,
      int BT,
      int C) {
    for (int o = o0; o < o1; o++) {
      int wo = o * C;
      for (int t = 0; t < BT; t++) {
        float d = dout[doutOff + t * doutStride + o];
        if (dbias != null) {
          dbias[o] += d;
        }
        if (dweight != null) {
          int io = inOff + t * inStride;
          for (int c = 0; c < C; c++) {
            dweight[wo + c] += d * inp[io + c];
          }
        }
      }
    }
  }
}
