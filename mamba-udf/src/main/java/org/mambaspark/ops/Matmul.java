package org.mambaspark.ops;

/**
 * The linear layers: out = inp @ weightᵀ + bias with PyTorch's (OC, C) weight layout, and its
 * backward.
 *
 * <p>Row-major flat arrays addressed as (offset, row stride) so that views (the z half of in_proj's
 * output, the Δ rank columns of x_proj's) need no copies. The fast path ({@link MatmulSimd}, Vector
 * API) is a register-tiled, panel-blocked GEMM threaded over (column panel, row block); the
 * references are the plain triple loops, kept as the definition and for the tests; without the
 * Vector API the references run, threaded over rows.
 */
public final class Matmul {
  private Matmul() {}

  /**
   * out[t, o] = Σ_c inp[t, c] · weight[o, c] + bias[o], for t in [0, BT), o in [0, OC); out is
   * overwritten.
   *
   * @param out at out[outOff + t*outStride + o]
   * @param inp at inp[inOff + t*inStride + c]
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
    if (Simd.ENABLED) {
      MatmulSimd.forward(out, outOff, outStride, inp, inOff, inStride, weight, bias, BT, C, OC);
    } else {
      Parallel.forRange(
          BT,
          Math.max(1, 65536 / Math.max(1, C * OC)),
          (t0, t1) ->
              forwardRows(
                  out, outOff, outStride, inp, inOff, inStride, weight, bias, t0, t1, C, OC));
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
    if (Simd.ENABLED) {
      MatmulSimd.backward(
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
      return;
    }
    if (dinp != null) {
      Parallel.forRange(
          BT,
          16,
          (t0, t1) ->
              backwardInputRows(
                  dinp, dinpOff, dinpStride, dout, doutOff, doutStride, weight, t0, t1, C, OC));
    }
    if (dweight != null || dbias != null) {
      Parallel.forRange(
          OC,
          16,
          (o0, o1) ->
              backwardWeightRows(
                  dweight, dbias, dout, doutOff, doutStride, inp, inOff, inStride, o0, o1, BT, C));
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
