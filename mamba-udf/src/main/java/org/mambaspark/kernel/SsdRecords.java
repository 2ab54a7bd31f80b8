package org.mambaspark.kernel;

import org.mambaspark.model.MambaConfig;

/**
 * The launch-table records of {@link SsdKernel}'s passes for one Mamba-2 layer, shared by the
 * forward over sequences ({@link GpuModel}) and the decode step ({@link DecodePlan}).
 */
final class SsdRecords {
  private SsdRecords() {}

  /**
   * The SSD scan of layer l over the layout's B·L rows, reading the conv output (xs) and δ
   * (in_proj's last H columns), writing y.
   *
   * @param inState 1: the state (B, H, P, N) at hOff of the device's state array, carried; 0: a
   *     scratch state at hOff of act, from zero
   */
  static int[] scan(
      MambaConfig c, DeviceWeights wl, int l, GpuModel.Layout a, int inState, int hOff) {
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
      inState
    };
  }

  /** The gated norm of layer l: y · silu(z) (z: in_proj's first ED columns) into the dbc area. */
  static int[] gatedNorm(MambaConfig c, DeviceWeights wl, int l, GpuModel.Layout a) {
    int ED = c.intermediateSize;
    return new int[] {
      SsdKernel.P_GATED_NORM, a.BT, ED, c.nGroups, a.y, a.xz, c.inProjSize(), a.dbc, wl.gatedNorm[l]
    };
  }
}
