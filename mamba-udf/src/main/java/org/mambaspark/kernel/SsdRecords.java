package org.mambaspark.kernel;

import org.mambaspark.model.MambaConfig;

/**
 * The launch-table records of {@link SsdKernel}'s passes for one Mamba-2 layer, shared by the
 * forward over sequences ({@link ForwardPlan}) and the decode step ({@link DecodePlan}), and the
 * training backward's ({@link #backward}).
 */
final class SsdRecords {
  private SsdRecords() {}

  /**
   * The SSD scan of layer l over the layout's B·L rows, reading the conv output (xs) and δ
   * (in_proj's last H columns), writing y; a training layout's scan also saves the state at the
   * start of each of its chunks ({@code Layout.ssdQ} positions) for the backward.
   *
   * @param inState 1: the state (B, H, P, N) at hOff of the device's state array, carried; 0: a
   *     scratch state at hOff of act, from zero, or none kept when hOff is -1
   * @param local the local floats of the launch that runs it
   */
  static int[] scan(
      MambaConfig c, DeviceWeights wl, int l, Layout a, int inState, int hOff, int local) {
    int ED = c.intermediateSize;
    int I = c.inProjSize();
    int C = c.convChannels();
    int H = c.numHeads;
    if (wl.a2[l] != wl.dtProjBias[l] + H || wl.dSkip[l] != wl.dtProjBias[l] + 2 * H) {
      throw new IllegalStateException("Mamba-2's dt_bias, A and D must lie together in W");
    }
    return new int[] {
      SsdKernel.P_SSD_SCAN,
      a.B,
      a.L,
      c.numHeads,
      c.headDim,
      c.nGroups,
      c.stateSize,
      a.xs,
      C,
      a.xz + ED + C,
      I,
      a.y,
      wl.dtProjBias[l],
      hOff,
      inState,
      a.training ? a.ssdSave : -1,
      a.ssdQ,
      local
    };
  }

  /** The gated norm of layer l: y · silu(z) (z: in_proj's first ED columns) into the dbc area. */
  static int[] gatedNorm(MambaConfig c, DeviceWeights wl, int l, Layout a) {
    int ED = c.intermediateSize;
    return new int[] {
      SsdKernel.P_GATED_NORM, a.BT, ED, c.nGroups, a.y, a.xz, c.inProjSize(), a.dbc, wl.gatedNorm[l]
    };
  }

  /** Records {@link #backward} writes for one layer of the layout. */
  static int backwardPasses(Layout a) {
    return 3 + 2 * a.ssdChunks;
  }

  /**
   * The backward of layer l's SSD mixer between out_proj and the conv, as {@link #backwardPasses}
   * records from record {@code at} of the table: the gated norm's backward (dy, dz, and d weight's
   * per-row terms at {@code dpre}), then each chunk's states and dB/dC from the last, then dδ and d
   * A_log / d D. The gradient areas of the layout: dyn at {@code ddbc}, the conv output's gradient
   * at {@code dxs}, dΔ's per-channel terms at {@code ddelta}.
   */
  static void backward(
      int[] plan, float[] planF, int at, MambaConfig c, DeviceWeights wl, int l, Layout a) {
    int REC = StepKernel.REC;
    int ED = c.intermediateSize;
    int I = c.inProjSize();
    int C = c.convChannels();
    int H = c.numHeads;
    int P = c.headDim;
    int G = c.nGroups;
    int N = c.stateSize;
    int delta = a.xz + ED + C;
    int w = wl.dtProjBias[l];
    float lo = c.timeStepLimitMin;
    float hi = c.timeStepLimitMax;
    int r = at;
    put(
        plan,
        r * REC,
        SsdKernel.P_GATED_NORM_BWD,
        a.BT,
        ED,
        G,
        a.y,
        a.xz,
        I,
        wl.gatedNorm[l],
        a.ddbc,
        a.dy,
        a.dxz,
        I,
        a.dpre);
    planF[r++ * REC] = c.layerNormEpsilon;
    for (int k = a.ssdChunks - 1; k >= 0; k--) {
      put(
          plan,
          r * REC,
          SsdKernel.P_SSD_STATES_BWD,
          a.B,
          a.L,
          H,
          P,
          G,
          N,
          a.xs,
          C,
          delta,
          I,
          w,
          a.ssdSave,
          a.ssdQ,
          k,
          a.dy,
          a.dxs,
          a.ddelta,
          a.ssdHs,
          a.ssdDh,
          a.ssdCarry,
          a.ssdSumA,
          a.ssdSumD);
      bounds(planF, r++ * REC, lo, hi);
      put(
          plan,
          r * REC,
          SsdKernel.P_SSD_BC_BWD,
          a.B,
          a.L,
          H,
          P,
          G,
          N,
          a.xs,
          C,
          delta,
          I,
          w,
          a.ssdQ,
          k,
          a.dy,
          a.dxs,
          a.ssdHs,
          a.ssdDh);
      bounds(planF, r++ * REC, lo, hi);
    }
    put(plan, r * REC, SsdKernel.P_SSD_DT_BWD, a.BT, H, P, delta, I, w, a.ddelta, a.dxz + ED + C);
    bounds(planF, r++ * REC, lo, hi);
    put(plan, r * REC, SsdKernel.P_SSD_PARAM_BWD, a.B, H, P, w, a.ssdSumA, a.ssdSumD);
  }

  private static void put(int[] plan, int off, int... record) {
    System.arraycopy(record, 0, plan, off, record.length);
  }

  private static void bounds(float[] planF, int off, float lo, float hi) {
    planF[off] = lo;
    planF[off + 1] = hi;
  }
}
