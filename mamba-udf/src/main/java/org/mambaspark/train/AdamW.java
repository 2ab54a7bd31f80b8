package org.mambaspark.train;

import java.util.List;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.NamedTensor;
import org.mambaspark.ops.AdamWStep;

/**
 * AdamW exactly as {@code torch.optim.AdamW} (amsgrad off, maximize off): decoupled weight decay
 * applied to the parameter before the Adam step, bias-corrected moments, eps added after the square
 * root:
 *
 * <pre>
 *   p ← p·(1 − lr·λ)            (λ only where {@link #decays} says so)
 *   m ← β1·m + (1−β1)·g;   v ← β2·v + (1−β2)·g²
 *   p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε)
 * </pre>
 *
 * The moments are a {@link MambaWeights} each, walked with the same {@link
 * MambaWeights#parameters()} order as the weights and gradients.
 */
public final class AdamW {
  public final float beta1;
  public final float beta2;
  public final float eps;
  public final float weightDecay;
  final MambaWeights m; // first moment (exp_avg)
  final MambaWeights v; // second moment (exp_avg_sq)
  long step; //           steps taken

  public AdamW(MambaWeights params, float beta1, float beta2, float eps, float weightDecay) {
    if (!(beta1 >= 0 && beta1 < 1)
        || !(beta2 >= 0 && beta2 < 1)
        || !(eps >= 0)
        || !(weightDecay >= 0)) {
      throw new IllegalArgumentException(
          "AdamW: need 0 <= beta1, beta2 < 1, eps >= 0, weight decay >= 0; got "
              + beta1
              + ", "
              + beta2
              + ", "
              + eps
              + ", "
              + weightDecay);
    }
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
    this.weightDecay = weightDecay;
    this.m = MambaWeights.zerosLike(params);
    this.v = MambaWeights.zerosLike(params);
  }

  /** torch's defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0.01. */
  public static AdamW withDefaults(MambaWeights params) {
    return new AdamW(params, 0.9f, 0.999f, 1e-8f, 0.01f);
  }

  /**
   * Weight decay on every parameter with two or more dimensions except A_log; none on 1-D ones
   * (norm weights, biases, D), as mamba_ssm's {@code _no_weight_decay} and the usual GPT practice.
   */
  public static boolean decays(NamedTensor t) {
    return t.shape.length >= 2 && !t.name.endsWith(".A_log");
  }

  public long step() {
    return step;
  }

  /** The hyper-parameters alone: what a shard of the optimizer needs where its slice lives. */
  public record Settings(float beta1, float beta2, float eps, float weightDecay)
      implements java.io.Serializable {}

  public Settings settings() {
    return new Settings(beta1, beta2, eps, weightDecay);
  }

  /** The first moment (exp_avg), shaped like the parameters. */
  public MambaWeights firstMoment() {
    return m;
  }

  /** The second moment (exp_avg_sq), shaped like the parameters. */
  public MambaWeights secondMoment() {
    return v;
  }

  /** Sets the count of steps taken (a run whose moments live elsewhere, or a skipped step). */
  public void setStep(long step) {
    this.step = step;
  }

  /** One update of params by grads at learning rate lr. */
  public void update(MambaWeights params, MambaWeights grads, float lr) {
    step++;
    Settings h = settings();
    List<NamedTensor> ps = params.parameters(),
        gs = grads.parameters(),
        ms = m.parameters(),
        vs = v.parameters();
    for (int i = 0; i < ps.size(); i++) {
      NamedTensor pt = ps.get(i);
      float[] p = pt.data;
      float[] m1 = ms.get(i).data, v1 = vs.get(i).data;
      update(h, step, lr, decays(pt), p, m1, v1, gs.get(i).data, 0, 1f, p, m1, v1, 0, p.length);
    }
  }

  /**
   * The update of elements [from, to) of flat arrays at optimizer step t (1-based: the step being
   * taken), with or without weight decay, reading p, m, v and writing pOut, mOut, vOut (the same
   * arrays for an update in place), the gradient scaled by gScale as it is read (see {@link
   * AdamWStep}): the same floats as {@link #update} on the tensors they belong to, so a sharded
   * optimizer reproduces the single-process one.
   */
  public static void update(
      Settings h,
      long t,
      float lr,
      boolean decays,
      float[] p,
      float[] m,
      float[] v,
      float[] g,
      int gShift,
      float gScale,
      float[] pOut,
      float[] mOut,
      float[] vOut,
      int from,
      int to) {
    double bc1 = 1 - Math.pow(h.beta1(), (double) t);
    float bc2Sqrt = (float) Math.sqrt(1 - Math.pow(h.beta2(), (double) t));
    float stepSize = (float) (lr / bc1);
    float decay = decays ? 1f - lr * h.weightDecay() : 1f;
    AdamWStep.adamwStep(
        p, m, v, g, gShift, gScale, pOut, mOut, vOut, from, to, h.beta1(), h.beta2(), h.eps(),
        decay, stepSize, bc2Sqrt);
  }
}
