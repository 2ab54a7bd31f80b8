package org.mambaspark.model;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Weights for training from scratch, as HF's {@code MambaPreTrainedModel._init_weights} (and {@code
 * Mamba2PreTrainedModel}'s) and PyTorch's module defaults lay them out (mamba_ssm does the same).
 * Mamba-1 and Falcon-Mamba:
 *
 * <ul>
 *   <li>embeddings ~ N(0, initializer_range²); norms = 1;
 *   <li>Linear weights (in_proj, x_proj, out_proj, an untied lm_head) ~ U(±1/√fan_in), PyTorch's
 *       kaiming_uniform with a = √5; their biases 0; with rescale_prenorm_residual, out_proj is
 *       divided by √num_layers;
 *   <li>conv1d weight and bias ~ U(±1/√K) (fan_in of a depthwise conv is K);
 *   <li>dt_proj.weight ~ U(±R^-½ · time_step_scale); dt_proj.bias = softplus⁻¹(dt) with dt
 *       log-uniform in [time_step_min, time_step_max], floored at time_step_floor, so that
 *       softplus(bias) starts at dt;
 *   <li>A_log[e, n] = log(n + 1) (S4D-real), D = 1.
 * </ul>
 *
 * Mamba-2: in_proj, out_proj, conv1d as above; dt_bias as dt_proj.bias (per head); A_log[h] = log(h
 * + 1); D = 1; the gated norm's weight 1.
 *
 * <p>Deterministic in the seed: parameters are drawn in {@link MambaWeights#parameters()} order
 * from one generator.
 */
public final class Initialization {
  private Initialization() {}

  public static MambaWeights initialize(MambaConfig c, long seed) {
    MambaWeights w = new MambaWeights(c);
    Mixer mixer = c.architecture.mixer(c);
    SplittableRandom rnd = new SplittableRandom(seed);
    normal(w.embeddings, c.initializerRange, rnd);
    for (BlockWeights l : w.blocks) {
      Arrays.fill(l.norm, 1f);
      mixer.initialize(l, rnd);
    }
    Arrays.fill(w.normF, 1f);
    if (!c.tieWordEmbeddings) {
      uniform(w.lmHead, 1 / Math.sqrt(c.hiddenSize), rnd);
    }
    return w;
  }

  /**
   * Δ's bias = softplus⁻¹(dt), dt log-uniform in [time_step_min, time_step_max] floored at
   * time_step_floor, so that softplus(bias) starts at dt (one per channel, or per head).
   */
  static void timeStepBias(float[] bias, MambaConfig c, SplittableRandom rnd) {
    double lo = Math.log(c.timeStepMin), hi = Math.log(c.timeStepMax);
    for (int e = 0; e < bias.length; e++) {
      double dt = Math.max(Math.exp(lo + rnd.nextDouble() * (hi - lo)), c.timeStepFloor);
      bias[e] = (float) (dt + Math.log(-Math.expm1(-dt))); // inverse softplus
    }
  }

  /** With rescale_prenorm_residual, out_proj is divided by √num_layers. */
  static void rescaleResidual(float[] outProj, MambaConfig c) {
    if (c.rescalePrenormResidual) {
      float s = (float) (1 / Math.sqrt(c.numLayers));
      for (int i = 0; i < outProj.length; i++) {
        outProj[i] *= s;
      }
    }
  }

  private static void normal(float[] a, double std, SplittableRandom rnd) {
    for (int i = 0; i < a.length; i += 2) { // Box-Muller, two at a time
      double u1 = 1.0 - rnd.nextDouble(), u2 = rnd.nextDouble();
      double r = Math.sqrt(-2 * Math.log(u1)), th = 2 * Math.PI * u2;
      a[i] = (float) (std * r * Math.cos(th));
      if (i + 1 < a.length) {
        a[i + 1] = (float) (std * r * Math.sin(th));
      }
    }
  }

  static void uniform(float[] a, double bound, SplittableRandom rnd) {
    for (int i = 0; i < a.length; i++) {
      a[i] = (float) ((2 * rnd.nextDouble() - 1) * bound);
    }
  }
}
