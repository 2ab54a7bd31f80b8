package org.mambaspark.model;

import org.mambaspark.ops.Parallel;
import org.mambaspark.ops.Simd;

/**
 * The engine's own multi-threaded CPU path behind the {@link Backend} interface: each call is the
 * plain {@link MambaModel#forward}, {@link Scoring} or {@link Backprop} on a per-thread workspace.
 */
public final class CpuBackend implements Backend {
  static final CpuBackend INSTANCE = new CpuBackend();

  private CpuBackend() {}

  @Override
  public Kind kind() {
    return Kind.CPU;
  }

  @Override
  public String device() {
    return "CPU, "
        + Parallel.threads()
        + " threads, "
        + (Simd.ENABLED ? "Vector API" : "scalar loops (no Vector API)");
  }

  @Override
  public ModelRunner open(MambaModel model) {
    return new Runner(model);
  }

  @Override
  public String toString() {
    return "cpu: " + device();
  }

  /**
   * Workspaces per thread: the model is immutable and shared, a workspace is not. The thread-locals
   * are per runner on purpose (a thread may use several models).
   */
  @SuppressWarnings("ThreadLocalUsage")
  private static final class Runner implements ModelRunner {
    private final MambaModel model;
    private final ThreadLocal<Workspace> workspaces;
    private final ThreadLocal<Trainer[]> trainers = new ThreadLocal<>();

    Runner(MambaModel model) {
      this.model = model;
      this.workspaces = ThreadLocal.withInitial(() -> new Workspace(model.config));
    }

    @Override
    public MambaModel model() {
      return model;
    }

    @Override
    public Backend backend() {
      return INSTANCE;
    }

    @Override
    public void forward(float[] hidden, int[] ids, int B, int L, MambaState state) {
      Workspace ws = workspaces.get();
      model.forward(ws, ids, B, L, state, null);
      if (hidden != null) {
        System.arraycopy(ws.hidden, 0, hidden, 0, B * L * model.config.hiddenSize);
      }
    }

    @Override
    public void forwardLastLogits(float[] logits, int[] ids, int B, int L, MambaState state) {
      Workspace ws = workspaces.get();
      model.forward(ws, ids, B, L, state, null);
      int D = model.config.hiddenSize;
      model.lmHeadForward(logits, 0, ws.hidden, (L - 1) * D, L * D, B); // each row's last position
    }

    @Override
    public double nextTokenLossSum(float[] logprobs, int[] ids, int B, int L) {
      if (L < 2) {
        throw new IllegalArgumentException(
            "a loss needs sequences of at least 2 tokens, got length " + L);
      }
      Workspace ws = workspaces.get();
      model.forward(ws, ids, B, L, null, null);
      double sum = 0;
      for (int b = 0; b < B; b++) {
        sum +=
            Scoring.crossEntropySum(
                model, ws, ws.hidden, b * L, ids, b * L + 1, L - 1, logprobs, b * (L - 1));
      }
      return sum;
    }

    @Override
    public double forwardBackward(MambaWeights grads, int[] ids, int B, int L, double scale) {
      return forwardBackward(grads, ids, B, L, scale, Backprop.DEFAULT_SCAN_CHUNK);
    }

    @Override
    public double forwardBackward(
        MambaWeights grads, int[] ids, int B, int L, double scale, int scanChunk) {
      Trainer[] ts = trainers.get();
      if (ts == null) {
        ts = new Trainer[2];
        trainers.set(ts);
      }
      // two per thread: a trainer's full micro-batches and its one short last micro-batch
      Trainer t = null;
      for (Trainer c : ts) {
        if (c != null && c.B == B && c.L == L && c.scanChunk == scanChunk) {
          t = c;
        }
      }
      if (t == null) {
        t = new Trainer(new Backprop(model, B, L, scanChunk), B, L, scanChunk);
        ts[1] = ts[0];
        ts[0] = t;
      }
      return t.backprop.forwardBackward(ids, grads, scale);
    }

    @Override
    public void reloadWeights() {
      // the CPU path reads the weights on every call
    }

    @Override
    public void close() {
      workspaces.remove();
      trainers.remove();
    }
  }

  /** A thread's Backprop (its training workspace is for one (B, L, scan chunk)). */
  private static final class Trainer {
    final Backprop backprop;
    final int B;
    final int L;
    final int scanChunk;

    Trainer(Backprop backprop, int B, int L, int scanChunk) {
      this.backprop = backprop;
      this.B = B;
      this.L = L;
      this.scanChunk = scanChunk;
    }
  }
}
