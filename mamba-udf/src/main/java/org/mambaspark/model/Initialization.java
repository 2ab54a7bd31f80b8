package org.mambaspark.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

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
 * <p>Deterministic in the seed: the parameters are drawn in {@link MambaWeights#parameters()} order
 * from one stream of uniform doubles (SplittableRandom's for that seed, {@link InitDraws}). Every
 * tensor's draws start at a position known from the shapes alone, so {@link Ranges} computes any
 * range of any parameter without the rest of the model: the same floats whatever the range.
 */
public final class Initialization {
  private Initialization() {}

  public static MambaWeights initialize(MambaConfig c, long seed) {
    MambaWeights w = new MambaWeights(c);
    Mixer mixer = c.architecture.mixer(c);
    InitDraws rnd = new InitDraws(seed, 0);
    normal(w.embeddings, 0, 0, w.embeddings.length, c.initializerRange, rnd, 0);
    rnd.skip(normalDraws(w.embeddings.length));
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
   * The initial values of any range of any parameter, computed alone: what an executor needs to
   * start its slice of a model that no process holds whole. The embedding and an untied head are
   * drawn element by element at their positions in the stream; a block's parameters come from
   * initialising that one block (the last one is kept, so a range walk over a block builds it
   * once). Not thread-safe.
   */
  public static final class Ranges {
    private final MambaConfig c;
    private final long seed;
    private final Mixer mixer;
    private final int perBlock; //          parameters of one block (its norm and the mixer's)
    private final long embeddingDraws;
    private final long blockDraws;
    private int builtBlock = -1;
    private List<NamedTensor> built; //     the parameters of block builtBlock

    public Ranges(MambaConfig c, long seed) {
      this.c = c;
      this.seed = seed;
      this.mixer = c.architecture.mixer(c);
      this.perBlock = blockParameters(mixer.newWeights(), 0).size();
      this.embeddingDraws = normalDraws((long) c.vocabSize * c.hiddenSize);
      InitDraws counter = new InitDraws(seed, 0);
      mixer.initialize(mixer.newWeights(), counter); // every block draws as many
      this.blockDraws = counter.position();
    }

    /**
     * Writes elements [from, from + n) of parameter {@code tensor} (its index in {@link
     * MambaWeights#parameters()}) to dst[off ...].
     */
    public void fill(int tensor, long from, float[] dst, int off, int n) {
      int blocksEnd = 1 + c.numLayers * perBlock;
      if (tensor == 0) {
        normal(dst, off, from, n, c.initializerRange, new InitDraws(seed, 0), 0);
      } else if (tensor < blocksEnd) {
        int b = (tensor - 1) / perBlock;
        if (b != builtBlock) {
          BlockWeights w = mixer.newWeights();
          Arrays.fill(w.norm, 1f);
          mixer.initialize(w, new InitDraws(seed, embeddingDraws + b * blockDraws));
          built = blockParameters(w, b);
          builtBlock = b;
        }
        System.arraycopy(built.get((tensor - 1) % perBlock).data, (int) from, dst, off, n);
      } else if (tensor == blocksEnd) {
        Arrays.fill(dst, off, off + n, 1f); // norm_f
      } else { // an untied lm_head
        long base = embeddingDraws + c.numLayers * blockDraws;
        InitDraws d = new InitDraws(seed, 0);
        double bound = 1 / Math.sqrt(c.hiddenSize);
        for (int i = 0; i < n; i++) {
          dst[off + i] = (float) ((2 * d.at(base + from + i) - 1) * bound);
        }
      }
    }

    private List<NamedTensor> blockParameters(BlockWeights w, int b) {
      List<NamedTensor> p = new ArrayList<>();
      String pre = "backbone.layers." + b + ".";
      p.add(new NamedTensor(pre + "norm.weight", new long[] {c.hiddenSize}, w.norm));
      w.addMixerParameters(p, pre + "mixer.", c);
      return p;
    }
  }

  /**
   * Δ's bias = softplus⁻¹(dt), dt log-uniform in [time_step_min, time_step_max] floored at
   * time_step_floor, so that softplus(bias) starts at dt (one per channel, or per head).
   */
  static void timeStepBias(float[] bias, MambaConfig c, InitDraws rnd) {
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

  /** Draws a normal tensor of n elements takes: Box-Muller, two uniforms per pair. */
  private static long normalDraws(long n) {
    return 2 * ((n + 1) / 2);
  }

  /**
   * Elements [from, from + n) of a N(0, std²) tensor whose draws start at {@code base}: Box-Muller,
   * element 2p from the cosine and 2p + 1 from the sine of pair p's two uniforms.
   */
  private static void normal(
      float[] dst, int off, long from, int n, double std, InitDraws d, long base) {
    for (int i = 0; i < n; i++) {
      long e = from + i, pair = e / 2;
      double u1 = 1.0 - d.at(base + 2 * pair), u2 = d.at(base + 2 * pair + 1);
      double r = Math.sqrt(-2 * Math.log(u1)), th = 2 * Math.PI * u2;
      dst[off + i] = (float) (std * r * (e % 2 == 0 ? Math.cos(th) : Math.sin(th)));
    }
  }

  static void uniform(float[] a, double bound, InitDraws rnd) {
    for (int i = 0; i < a.length; i++) {
      a[i] = (float) ((2 * rnd.nextDouble() - 1) * bound);
    }
  }
}
