package org.mambaspark.train;

/**
 * Learning rate per step (0-based, the step about to be taken): constant, or linear warm-up from
 * lr/warmup to lr over {@code warmupSteps}, then cosine decay to {@code minLr} at {@code
 * totalSteps} (held there after).
 */
public final class LrSchedule implements java.io.Serializable {
  private static final long serialVersionUID = 1L;

  public final String kind; // "constant" | "cosine"
  public final float maxLr;
  public final float minLr;
  public final long warmupSteps;
  public final long totalSteps;

  private LrSchedule(String kind, float maxLr, float minLr, long warmupSteps, long totalSteps) {
    if (!(maxLr > 0)
        || !(minLr >= 0)
        || minLr > maxLr
        || warmupSteps < 0
        || totalSteps < warmupSteps) {
      throw new IllegalArgumentException(
          "learning-rate schedule: need 0 <= min <= max, max > 0, 0 <= warmup <= total;"
              + " got max "
              + maxLr
              + ", min "
              + minLr
              + ", warmup "
              + warmupSteps
              + ", total "
              + totalSteps);
    }
    this.kind = kind;
    this.maxLr = maxLr;
    this.minLr = minLr;
    this.warmupSteps = warmupSteps;
    this.totalSteps = totalSteps;
  }

  public static LrSchedule constant(float lr) {
    return new LrSchedule("constant", lr, lr, 0, 0);
  }

  public static LrSchedule warmupCosine(
      float maxLr, float minLr, long warmupSteps, long totalSteps) {
    return new LrSchedule("cosine", maxLr, minLr, warmupSteps, totalSteps);
  }

  public static LrSchedule of(
      String kind, float maxLr, float minLr, long warmupSteps, long totalSteps) {
    switch (kind) {
      case "constant":
        return constant(maxLr);
      case "cosine":
        return warmupCosine(maxLr, minLr, warmupSteps, totalSteps);
      default:
        throw new IllegalArgumentException("unknown schedule '" + kind + "' (constant | cosine)");
    }
  }

  public float lr(long step) {
    if (kind.equals("constant")) {
      return maxLr;
    }
    if (step < warmupSteps) {
      return maxLr * (step + 1) / warmupSteps;
    }
    long decay = totalSteps - warmupSteps;
    double progress = decay <= 0 ? 1.0 : Math.min(1.0, (double) (step - warmupSteps) / decay);
    return (float) (minLr + 0.5 * (maxLr - minLr) * (1 + Math.cos(Math.PI * progress)));
  }
}
