package org.mambaspark.model;

import java.util.Arrays;
import org.mambaspark.ops.Activations;
import org.mambaspark.ops.Conv1d;
import org.mambaspark.ops.GatedRmsNorm;
import org.mambaspark.ops.Matmul;
import org.mambaspark.ops.Ssd;

/**
 * Mamba-2's mixer (HF {@code Mamba2Mixer.torch_forward}; mamba_ssm {@code Mamba2}), with H heads of
 * P channels in G groups; C = ED + 2GN conv channels, I = ED + C + H in_proj rows:
 *
 * <pre>
 *   [z | xBC | δ] = in_proj(u)                              (BT, I)
 *   [x | B | C] = silu(conv(xBC))                           (BT, ED | GN | GN)
 *   Δ = clamp(softplus(δ + dt_bias), time_step_limit)      (BT, H)
 *   y = ssd(x, Δ, A = -exp(A_log), B, C) + D·x             (BT, ED)   head h uses group h / (H/G)
 *   out = out_proj(rmsnorm_per_group(y · silu(z)) · norm)   (BT, D)
 * </pre>
 *
 * The gated norm normalises each group of ED/G channels on its own (mamba_ssm's RMSNormGated with
 * norm_before_gate=False). The SSM state is (B, H, P, N) per layer, HF's layout.
 */
final class SsdMixer implements Mixer {
  private final MambaConfig c;
  private final int D;
  private final int ED;
  private final int H;
  private final int P;
  private final int G;
  private final int N;
  private final int K;
  private final int C;
  private final int I;
  private final int Q;

  SsdMixer(MambaConfig c) {
    this.c = c;
    this.D = c.hiddenSize;
    this.ED = c.intermediateSize;
    this.H = c.numHeads;
    this.P = c.headDim;
    this.G = c.nGroups;
    this.N = c.stateSize;
    this.K = c.convKernel;
    this.C = c.convChannels();
    this.I = c.inProjSize();
    this.Q = c.chunkSize;
  }

  /** One layer's intermediate tensors over BT = B·L positions. */
  static final class Acts implements Buffers {
    final float[] zxbcdt; //  (BT, I)   in_proj output: [z | xBC | δ]
    final float[] xbc; //     (BT, C)   conv + silu output: [x | B | C]
    final float[] dt; //      (BT, H)   Δ
    final float[] a; //       (H)       A = -exp(A_log)
    final float[] y; //       (BT, ED)  scan output (with the D skip)
    final float[] yn; //      (BT, ED)  gated norm output, out_proj's input
    final float[] rstd; //    (BT, G)   1/rms of each group of y · silu(z)
    // Saved for the backward pass only (null in inference):
    final float[] convPre; // (BT, C)   conv output before silu
    final float[] saved; //   the scan's chunk-boundary states (Ssd.savedSize)

    Acts(MambaConfig c, int B, int L, boolean training) {
      int BT = B * L, ED = c.intermediateSize, H = c.numHeads, C = c.convChannels();
      zxbcdt = new float[BT * c.inProjSize()];
      xbc = new float[BT * C];
      dt = new float[BT * H];
      a = new float[H];
      y = new float[BT * ED];
      yn = new float[BT * ED];
      rstd = new float[BT * c.nGroups];
      convPre = training ? new float[BT * C] : null;
      saved =
          training ? new float[Ssd.savedSize(B, L, H, c.headDim, c.stateSize, c.chunkSize)] : null;
    }
  }

  /** Gradient scratch, reused per layer. */
  static final class Scratch implements Buffers {
    final float[] dzxbcdt; // (BT, I)
    final float[] dxbc; //    (BT, C)
    final float[] ddt; //     (BT, H)
    final float[] dy; //      (BT, ED)
    final float[] dyn; //     (BT, ED)
    final float[] da; //      (H)

    Scratch(MambaConfig c, int B, int L) {
      int BT = B * L, ED = c.intermediateSize;
      dzxbcdt = new float[BT * c.inProjSize()];
      dxbc = new float[BT * c.convChannels()];
      ddt = new float[BT * c.numHeads];
      dy = new float[BT * ED];
      dyn = new float[BT * ED];
      da = new float[c.numHeads];
    }
  }

  @Override
  public BlockWeights newWeights() {
    return new Mamba2LayerWeights(c);
  }

  @Override
  public Buffers newActivations(int B, int L, boolean training, int scanChunk) {
    return new Acts(c, B, L, training);
  }

  @Override
  public Buffers newScratch(int B, int L) {
    return new Scratch(c, B, L);
  }

  @Override
  public void forward(
      float[] out,
      float[] xNorm,
      BlockWeights bw,
      BlockMatrices m,
      Buffers act,
      float[] convState,
      float[] ssmState,
      int B,
      int L) {
    Mamba2LayerWeights w = (Mamba2LayerWeights) bw;
    Acts a = (Acts) act;
    int BT = B * L;
    for (int h = 0; h < H; h++) {
      a.a[h] = (float) -Math.exp(w.aLog[h]);
    }
    Matmul.matmulForward(a.zxbcdt, 0, I, xNorm, 0, D, m.inProj, w.inProjBias, BT);
    Conv1d.convForward(
        a.xbc, a.convPre, a.zxbcdt, ED, I, convState, w.conv1dWeight, w.conv1dBias, B, L, C, K);
    if (convState != null) {
      Conv1d.updateState(convState, a.zxbcdt, ED, I, B, L, C, K);
    }
    timeStepForward(a.dt, a.zxbcdt, w.dtBias, BT);
    int bOff = ED, cOff = ED + G * N;
    if (L == 1 && ssmState != null) { // a decode step
      Ssd.ssdStep(
          a.y, 0, ED, ssmState, a.xbc, 0, C, a.dt, 0, H, a.a, a.xbc, bOff, C, a.xbc, cOff, C,
          w.dSkip, B, H, P, G, N);
    } else {
      Ssd.ssdForward(
          a.y, 0, ED, ssmState, a.saved, a.xbc, 0, C, a.dt, 0, H, a.a, a.xbc, bOff, C, a.xbc, cOff,
          C, w.dSkip, B, L, H, P, G, N, Q);
    }
    GatedRmsNorm.gatedRmsnormForward(
        a.yn, a.rstd, a.y, a.zxbcdt, 0, I, w.normWeight, BT, ED, G, c.layerNormEpsilon);
    Matmul.matmulForward(out, 0, D, a.yn, 0, ED, m.outProj, w.outProjBias, BT);
  }

  @Override
  public void backward(
      float[] dxNorm,
      BlockWeights gw,
      float[] dout,
      float[] xNorm,
      BlockWeights bw,
      Buffers act,
      Buffers scratch,
      int B,
      int L) {
    Mamba2LayerWeights w = (Mamba2LayerWeights) bw;
    Mamba2LayerWeights g = (Mamba2LayerWeights) gw;
    Acts a = (Acts) act;
    Scratch s = (Scratch) scratch;
    int BT = B * L;
    Arrays.fill(s.dyn, 0f);
    Matmul.matmulBackward(
        s.dyn, 0, ED, g.outProj, g.outProjBias, dout, 0, D, a.yn, 0, ED, w.outProj, BT, ED, D);
    // the gated norm: dy, dz (into in_proj's gradient), d norm.weight
    Arrays.fill(s.dzxbcdt, 0f);
    Arrays.fill(s.dy, 0f);
    GatedRmsNorm.gatedRmsnormBackward(
        s.dy,
        s.dzxbcdt,
        0,
        I,
        g.normWeight,
        s.dyn,
        a.y,
        a.zxbcdt,
        0,
        I,
        w.normWeight,
        a.rstd,
        BT,
        ED,
        G);
    // the scan: dx, dB, dC (into the conv output's gradient), dΔ, dA, dD
    Arrays.fill(s.dxbc, 0f);
    Arrays.fill(s.ddt, 0f);
    Arrays.fill(s.da, 0f);
    int bOff = ED, cOff = ED + G * N;
    Ssd.ssdBackward(
        s.dxbc, 0, C, s.ddt, 0, H, s.da, s.dxbc, bOff, C, s.dxbc, cOff, C, g.dSkip, null, s.dy, 0,
        ED, a.saved, a.xbc, 0, C, a.dt, 0, H, a.a, a.xbc, bOff, C, a.xbc, cOff, C, w.dSkip, B, L, H,
        P, G, N, Q);
    // A = -exp(A_log)  =>  dA_log = dA · A
    for (int h = 0; h < H; h++) {
      g.aLog[h] += s.da[h] * a.a[h];
    }
    timeStepBackward(s.dzxbcdt, g.dtBias, s.ddt, a.zxbcdt, w.dtBias, BT);
    // xBC's channels: silu(conv(.))
    Conv1d.convBackward(
        s.dzxbcdt,
        g.conv1dWeight,
        g.conv1dBias,
        s.dxbc,
        a.convPre,
        a.zxbcdt,
        ED,
        I,
        w.conv1dWeight,
        B,
        L,
        C,
        K);
    Matmul.matmulBackward(
        dxNorm, 0, D, g.inProj, g.inProjBias, s.dzxbcdt, 0, I, xNorm, 0, D, w.inProj, BT, D, I);
  }

  /** dt (BT, H) = clamp(softplus(δ + dt_bias), time_step_limit); δ is in_proj's last H columns. */
  private void timeStepForward(float[] dt, float[] zxbcdt, float[] dtBias, int BT) {
    float lo = c.timeStepLimitMin, hi = c.timeStepLimitMax;
    for (int t = 0; t < BT; t++) {
      int o = t * I + ED + C;
      for (int h = 0; h < H; h++) {
        float v = Activations.softplus(zxbcdt[o + h] + dtBias[h]);
        dt[t * H + h] = Math.min(Math.max(v, lo), hi);
      }
    }
  }

  /**
   * The gradient of {@link #timeStepForward}: through the clamp where it passes its input (as
   * torch.clamp, inclusive bounds), then the softplus; into dδ (in dzxbcdt) and d dt_bias, +=.
   */
  private void timeStepBackward(
      float[] dzxbcdt, float[] dDtBias, float[] ddt, float[] zxbcdt, float[] dtBias, int BT) {
    float lo = c.timeStepLimitMin, hi = c.timeStepLimitMax;
    for (int t = 0; t < BT; t++) {
      int o = t * I + ED + C;
      for (int h = 0; h < H; h++) {
        float pre = zxbcdt[o + h] + dtBias[h];
        float v = Activations.softplus(pre);
        float d = v < lo || v > hi ? 0f : ddt[t * H + h];
        if (pre <= Activations.SOFTPLUS_THRESHOLD) {
          d *= Activations.sigmoid(pre);
        }
        dzxbcdt[o + h] += d;
        dDtBias[h] += d;
      }
    }
  }

  /**
   * As HF's {@code Mamba2PreTrainedModel._init_weights} and PyTorch's module defaults: in_proj and
   * out_proj U(±1/√fan_in), conv U(±1/√K), dt_bias = softplus⁻¹(dt) (dt log-uniform in
   * [time_step_min, time_step_max], floored), A_log[h] = log(h + 1), D = 1, norm weight 1.
   */
  @Override
  public void initialize(BlockWeights bw, InitDraws rnd) {
    Mamba2LayerWeights l = (Mamba2LayerWeights) bw;
    Initialization.uniform(l.inProj, 1 / Math.sqrt(D), rnd);
    Initialization.uniform(l.conv1dWeight, 1 / Math.sqrt(K), rnd);
    if (l.conv1dBias != null) {
      Initialization.uniform(l.conv1dBias, 1 / Math.sqrt(K), rnd);
    }
    Initialization.timeStepBias(l.dtBias, c, rnd);
    for (int h = 0; h < H; h++) {
      l.aLog[h] = (float) Math.log(h + 1);
    }
    Arrays.fill(l.dSkip, 1f);
    Arrays.fill(l.normWeight, 1f);
    Initialization.uniform(l.outProj, 1 / Math.sqrt(ED), rnd);
    Initialization.rescaleResidual(l.outProj, c);
  }
}
