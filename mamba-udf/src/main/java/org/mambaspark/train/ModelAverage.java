package org.mambaspark.train;

import java.io.Serializable;
import java.util.List;
import org.mambaspark.model.Backend;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.ModelRunner;
import org.mambaspark.model.NamedTensor;

/**
 * Periodic model averaging (local SGD): every share of the data starts from the same weights and
 * AdamW state ({@link Start}), takes H local steps on its part of each step's global batch ({@link
 * #localSteps}: mean, guard, clip and AdamW exactly as {@link TrainStep#apply}), and the results
 * are averaged, weighted by the tokens each share trained on ({@link #add}, {@link #applyTo}). With
 * one share it is the single-process loop, bit for bit. Sums combine in double from the float
 * results (a float times an integer token count is exact in double), so the average does not depend
 * on the order Spark combines the shares beyond double rounding.
 */
public final class ModelAverage implements Serializable {
  private static final long serialVersionUID = 1L;

  /** The state every share starts from: weights, AdamW moments and step, as shipped. */
  public static final class Start implements Serializable {
    private static final long serialVersionUID = 1L;
    final MambaConfig config;
    final float[][] weights;
    final float[][] m;
    final float[][] v;
    final long step;
    final float beta1;
    final float beta2;
    final float eps;
    final float weightDecay;

    /** Takes references, not copies: ship it before the driver changes the weights. */
    public Start(MambaWeights w, AdamW opt) {
      config = w.config;
      weights = arrays(w);
      m = arrays(opt.m);
      v = arrays(opt.v);
      step = opt.step;
      beta1 = opt.beta1;
      beta2 = opt.beta2;
      eps = opt.eps;
      weightDecay = opt.weightDecay;
    }

    /** Bytes of weights and moments: what one broadcast of it moves. */
    public long bytes() {
      long n = 0;
      for (float[] a : weights) {
        n += 4L * a.length;
      }
      return 3 * n;
    }
  }

  // leaves: one share's float results (weight = its token count); combined: double sums
  private float[][][] leaf; // [3][param][] weights, m, v
  private double[][][] sum; // Σ tokens · leaf
  private long weight; //     Σ tokens that carry weights

  /** Per local step h: Σ loss, Σ tokens, Σ tokens · grad norm, shares that skipped it. */
  public final double[] lossSum;

  public final long[] tokens;
  public final double[] gradNormSum;
  public final int[] skipped;

  /** Σ and max over the shares of the time spent computing, as in {@link GradientSum}. */
  public long computeNanos;

  public long maxComputeNanos;

  private ModelAverage(int H) {
    lossSum = new double[H];
    tokens = new long[H];
    gradNormSum = new double[H];
    skipped = new int[H];
  }

  /**
   * H local steps from {@code start} on this share: step h uses {@code shares.get(h)} (possibly
   * empty: then the share only advances the step count) at {@code schedule.lr(start.step + h)}.
   */
  public static ModelAverage localSteps(
      Start start,
      Backend backend,
      List<List<int[]>> shares,
      LrSchedule schedule,
      float clip,
      int microBatch,
      int L,
      int scanChunk) {
    int H = shares.size();
    MambaWeights w = new MambaWeights(start.config);
    copy(start.weights, w);
    AdamW opt = new AdamW(w, start.beta1, start.beta2, start.eps, start.weightDecay);
    copy(start.m, opt.m);
    copy(start.v, opt.v);
    opt.step = start.step;
    MambaWeights scratch = MambaWeights.zerosLike(w);
    ModelAverage out = new ModelAverage(H);
    long t0 = System.nanoTime();
    try (ModelRunner runner = backend.open(new MambaModel(w))) {
      for (int h = 0; h < H; h++) {
        List<int[]> seqs = shares.get(h);
        if (seqs.isEmpty()) {
          opt.step++;
          continue;
        }
        GradientSum g = TrainStep.gradient(runner, seqs, microBatch, L, scanChunk);
        TrainStep.Applied a = TrainStep.apply(w, opt, g, scratch, schedule, clip);
        runner.reloadWeights();
        out.lossSum[h] = g.lossSum;
        out.tokens[h] = g.tokens;
        if (a.skipped) {
          out.skipped[h] = 1;
        } else {
          out.gradNormSum[h] = a.gradNorm * g.tokens;
          out.weight += g.tokens;
        }
      }
    }
    out.computeNanos = System.nanoTime() - t0;
    out.maxComputeNanos = out.computeNanos;
    out.leaf = new float[][][] {arrays(w), arrays(opt.m), arrays(opt.v)};
    return out;
  }

  /** this + other (a Spark combOp): a new sum; a combined operand's arrays are reused. */
  public ModelAverage add(ModelAverage o) {
    int H = lossSum.length;
    ModelAverage r = new ModelAverage(H);
    for (int h = 0; h < H; h++) {
      r.lossSum[h] = lossSum[h] + o.lossSum[h];
      r.tokens[h] = tokens[h] + o.tokens[h];
      r.gradNormSum[h] = gradNormSum[h] + o.gradNormSum[h];
      r.skipped[h] = skipped[h] + o.skipped[h];
    }
    r.computeNanos = computeNanos + o.computeNanos;
    r.maxComputeNanos = Math.max(maxComputeNanos, o.maxComputeNanos);
    r.weight = weight + o.weight;
    r.sum = sums();
    double[][][] b = o.sums();
    for (int k = 0; k < 3; k++) {
      for (int i = 0; i < r.sum[k].length; i++) {
        double[] x = r.sum[k][i], y = b[k][i];
        for (int j = 0; j < x.length; j++) {
          x[j] += y[j];
        }
      }
    }
    return r;
  }

  private double[][][] sums() {
    if (sum != null) {
      return sum; // a combined sum is consumed by the combination (Spark allows it)
    }
    double[][][] s = new double[3][][];
    for (int k = 0; k < 3; k++) {
      s[k] = new double[leaf[k].length][];
      for (int i = 0; i < leaf[k].length; i++) {
        float[] a = leaf[k][i];
        double[] d = new double[a.length];
        for (int j = 0; j < a.length; j++) {
          d[j] = (double) a[j] * weight;
        }
        s[k][i] = d;
      }
    }
    return s;
  }

  /**
   * Sets the driver's weights and AdamW moments to the token-weighted average, and its step count
   * to {@code start step + H}. Returns false (and changes nothing but the step count) when no share
   * took a finite step.
   */
  public boolean applyTo(MambaWeights w, AdamW opt) {
    opt.step += lossSum.length;
    if (weight == 0) {
      return false;
    }
    MambaWeights[] dst = {w, opt.m, opt.v};
    for (int k = 0; k < 3; k++) {
      List<NamedTensor> ps = dst[k].parameters();
      for (int i = 0; i < ps.size(); i++) {
        float[] d = ps.get(i).data;
        if (sum == null) { // one share: its result as it is
          System.arraycopy(leaf[k][i], 0, d, 0, d.length);
        } else {
          double[] s = sum[k][i];
          for (int j = 0; j < d.length; j++) {
            d[j] = (float) (s[j] / weight);
          }
        }
      }
    }
    return true;
  }

  private static float[][] arrays(MambaWeights w) {
    List<NamedTensor> ps = w.parameters();
    float[][] a = new float[ps.size()][];
    for (int i = 0; i < a.length; i++) {
      a[i] = ps.get(i).data;
    }
    return a;
  }

  private static void copy(float[][] src, MambaWeights dst) {
    List<NamedTensor> ps = dst.parameters();
    for (int i = 0; i < ps.size(); i++) {
      System.arraycopy(src[i], 0, ps.get(i).data, 0, src[i].length);
    }
  }
}
