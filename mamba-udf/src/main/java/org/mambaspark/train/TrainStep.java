package org.mambaspark.train;

import java.util.List;
import org.mambaspark.model.Backends;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.ModelRunner;
import org.mambaspark.model.NamedTensor;

/**
 * One synchronous training step in two halves, shared by the single-process loop and the Spark job
 * (MLlib's pattern): {@link #gradient} runs wherever a share of the batch lives and returns a
 * {@link GradientSum}; {@link #apply} runs once on the summed shares: mean, non-finite guard,
 * clipping, AdamW at the scheduled rate.
 */
public final class TrainStep {
  private TrainStep() {}

  /** The outcome of {@link #apply}. */
  public static final class Applied {
    public final double loss;
    public final double gradNorm;
    public final float lr;
    public final boolean skipped;

    Applied(double loss, double gradNorm, float lr, boolean skipped) {
      this.loss = loss;
      this.gradNorm = gradNorm;
      this.lr = lr;
      this.skipped = skipped;
    }
  }

  /**
   * Σ over seqs of the next-token losses and their gradient, on the CPU ({@link
   * #gradient(ModelRunner, List, int, int, int)} with the CPU backend).
   */
  public static GradientSum gradient(
      MambaModel model, List<int[]> seqs, int microBatch, int L, int scanChunk) {
    try (ModelRunner cpu = Backends.cpu().open(model)) {
      return gradient(cpu, seqs, microBatch, L, scanChunk);
    }
  }

  /**
   * Σ over seqs of the next-token losses and their gradient, in micro-batches of at most {@code
   * microBatch} sequences, computed by the runner's backend (the CPU, or a GPU with the weights
   * resident: call {@link ModelRunner#reloadWeights} after changing them). Deterministic and
   * side-effect free: a retried Spark task returns the same sum.
   *
   * @param seqs each exactly {@code L} ids long
   */
  public static GradientSum gradient(
      ModelRunner runner, List<int[]> seqs, int microBatch, int L, int scanChunk) {
    // the runner accumulates each micro-batch's gradient into the sum's own arrays
    MambaWeights g = MambaWeights.zerosLike(runner.model().weights);
    GradientSum sum = new GradientSum(g);
    long t0 = System.nanoTime();
    for (int first = 0; first < seqs.size(); first += microBatch) {
      int n = Math.min(microBatch, seqs.size() - first);
      int[] ids = packIds(seqs, first, n, L);
      sum.lossSum += runner.forwardBackward(g, ids, n, L, 1.0, scanChunk);
      sum.tokens += (long) n * (L - 1);
      sum.sequences += n;
    }
    sum.computeNanos = System.nanoTime() - t0;
    sum.maxComputeNanos = sum.computeNanos;
    return sum;
  }

  /** Sequences first..first+n (each exactly L ids) as one (n, L) row-major id array. */
  private static int[] packIds(List<int[]> seqs, int first, int n, int L) {
    int[] ids = new int[n * L];
    for (int i = 0; i < n; i++) {
      int[] s = seqs.get(first + i);
      if (s.length != L) {
        throw new IllegalArgumentException(
            "sequence " + (first + i) + " has " + s.length + " ids, expected " + L);
      }
      System.arraycopy(s, 0, ids, i * L, L);
    }
    return ids;
  }

  /**
   * Σ over seqs of the next-token losses without a gradient (evaluation), in micro-batches: {loss
   * sum, token count}.
   */
  public static double[] lossSum(ModelRunner runner, List<int[]> seqs, int microBatch, int L) {
    double sum = 0;
    long tokens = 0;
    for (int first = 0; first < seqs.size(); first += microBatch) {
      int n = Math.min(microBatch, seqs.size() - first);
      int[] ids = packIds(seqs, first, n, L);
      sum += runner.nextTokenLossSum(null, ids, n, L);
      tokens += (long) n * (L - 1);
    }
    return new double[] {sum, tokens};
  }

  /**
   * Divides the summed gradient by its token count, guards against non-finite values, clips, and
   * steps AdamW at {@code schedule.lr(opt.step())}. A skipped step still advances the optimizer's
   * step count (schedule and data move on) but leaves weights and moments untouched.
   */
  public static Applied apply(
      MambaWeights weights,
      AdamW opt,
      GradientSum total,
      MambaWeights scratch,
      LrSchedule schedule,
      float clip) {
    long step = opt.step();
    double loss = total.lossSum / total.tokens;
    total.copyInto(scratch, (float) (1.0 / total.tokens));
    double norm = Gradients.clipGlobalNorm(scratch, clip);
    float lr = schedule.lr(step);
    if (!Double.isFinite(loss) || !Double.isFinite(norm)) {
      opt.step++;
      return new Applied(loss, norm, lr, true);
    }
    opt.update(weights, scratch, lr);
    return new Applied(loss, norm, lr, false);
  }

  /** The parameters' total byte size: what one broadcast (or one gradient) moves per executor. */
  public static long parameterBytes(MambaWeights w) {
    long n = 0;
    for (NamedTensor t : w.parameters()) {
      n += 4L * t.data.length;
    }
    return n;
  }
}
