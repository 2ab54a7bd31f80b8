package org.mambaspark.model;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Weights for training from scratch, as HF's {@code MambaPreTrainedModel._init_weights} and
 * PyTorch's module defaults lay them out (mamba_ssm does the same):
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
 * Deterministic in the seed: parameters are drawn in {@link MambaWeights#parameters()} order from
 * one generator.
 */
public final class Initialization {
  private Initialization() {}

  public static MambaWeights initialize(MambaConfig c, long seed) {
    MambaWeights w = new MambaWeights(c);
    SplittableRandom rnd = new SplittableRandom(seed);
    int D = c.hiddenSize,
        ED = c.intermediateSize,
        N = c.stateSize,
        R = c.timeStepRank,
        K = c.convKernel;
    normal(w.embeddings, c.initializerRange, rnd);
    for (LayerWeights l : w.layers) {
      Arrays.fill(l.norm, 1f);
      uniform(l.inProj, 1 / Math.sqrt(D), rnd);
      uniform(l.conv1dWeight, 1 / Math.sqrt(K), rnd);
      if (l.conv1dBias != null) {
        uniform(l.conv1dBias, 1 / Math.sqrt(K), rnd);
      }
      uniform(l.xProj, 1 / Math.sqrt(ED), rnd);
      uniform(l.dtProj, c.timeStepScale / Math.sqrt(R), rnd);
      double lo = Math.log(c.timeStepMin), hi = Math.log(c.timeStepMax);
      for (int e = 0; e < ED; e++) {
        double dt = Math.max(Math.exp(lo + rnd.nextDouble() * (hi - lo)), c.timeStepFloor);
        l.dtProjBias[e] = (float) (dt + Math.log(-Math.expm1(-dt))); // inverse softplus
      }
      for (int e = 0; e < ED; e++) {
        for (int n = 0; n < N; n++) {
          l.aLog[e * N + n] = (float) Math.log(n + 1);
        }
      }
      Arrays.fill(l.dSkip, 1f);
      uniform(l.outProj, 1 / Math.sqrt(ED), rnd);
      if (c.rescalePrenormResidual) {
        float s = (float) (1 / Math.sqrt(c.numLayers));
        for (int i = 0; i < l.outProj.length; i++) {
          l.outProj[i] *= s;
        }
      }
      // in_proj / out_proj biases stay 0
    }
    Arrays.fill(w.normF, 1f);
    if (!c.tieWordEmbeddings) {
      uniform(w.lmHead, 1 / Math.sqrt(D), rnd);
    }
    return w;
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

  private static void uniform(float[] a, double bound, SplittableRandom rnd) {
    for (int i = 0; i < a.length; i++) {
      a[i] = (float) ((2 * rnd.nextDouble() - 1) * bound);
    }
  }
}
