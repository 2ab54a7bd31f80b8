package org.mambaspark.train;

/**
 * Hyper-parameters of a training run. A step sees {@code batch} sequences of {@code seqLen} tokens,
 * processed in micro-batches of {@code microBatch} sequences whose gradients accumulate; the loss
 * is the mean next-token cross-entropy over the step's tokens.
 */
public final class TrainOptions {
  public int seqLen = 128;
  public int batch = 8;
  public int microBatch = 8;
  public long steps = 300;
  public String schedule = "cosine";
  public float lr = 3e-3f;
  public float minLr = 3e-4f;
  public long warmupSteps = 20;
  public float weightDecay = 0.01f;
  public float beta1 = 0.9f;
  public float beta2 = 0.999f;
  public float eps = 1e-8f;

  /** Global gradient-norm clip; 0 = off. */
  public float clip = 1.0f;

  /** Seeds the batch sampler (and the initialisation when training from scratch). */
  public long seed = 0;

  /** Held-out fraction of the corpus for the eval loss. */
  public double evalFraction = 0.1;

  public int evalEvery = 50;
  public int evalBatches = 4;

  /** Save a checkpoint every this many steps (0 = only at the end). */
  public int saveEvery = 0;

  /** Stop after this many non-finite steps in a row. */
  public int maxBadSteps = 5;

  /** Positions per saved scan state in the backward pass. */
  public int scanChunk = 256;

  public LrSchedule lrSchedule() {
    return LrSchedule.of(schedule, lr, minLr, warmupSteps, steps);
  }

  public void validate() {
    if (seqLen < 2 || batch <= 0 || microBatch <= 0 || steps < 0 || batch % microBatch != 0) {
      throw new IllegalArgumentException(
          "training options: need seq-len >= 2, batch > 0, micro-batch > 0 dividing"
              + " batch, steps >= 0; got seq-len "
              + seqLen
              + ", batch "
              + batch
              + ", micro-batch "
              + microBatch
              + ", steps "
              + steps);
    }
    if (!(evalFraction > 0 && evalFraction < 1)) {
      throw new IllegalArgumentException("eval fraction must be in (0, 1), got " + evalFraction);
    }
    lrSchedule(); // validates the schedule
  }
}
