package org.mambaspark.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import org.mambaspark.ops.Parallel;

/**
 * All parameters of a Mamba-family language model ({@code MambaForCausalLM}, {@code
 * Mamba2ForCausalLM}, {@code FalconMambaForCausalLM}). {@link #parameters()} is the one walk over
 * them by checkpoint name, in a fixed order, shared by checkpoint I/O, the optimizer and gradient
 * aggregation. A gradient is a {@code MambaWeights} too ({@link #zerosLike}).
 */
public final class MambaWeights {
  public static final String EMBEDDINGS = "backbone.embeddings.weight";
  public static final String NORM_F = "backbone.norm_f.weight";
  public static final String LM_HEAD = "lm_head.weight";

  public final MambaConfig config;
  public final float[] embeddings; // (V, D)

  /** Every block, whatever the architecture: its norm and its mixer's weights. */
  public final BlockWeights[] blocks;

  /** The same blocks typed as Mamba-1's (Mamba-1 and Falcon-Mamba); empty for Mamba-2. */
  public final LayerWeights[] layers;

  /** The same blocks typed as Mamba-2's; empty for the other architectures. */
  public final Mamba2LayerWeights[] mamba2Layers;

  public final float[] normF; //      (D)

  /** (V, D); the same array as {@link #embeddings} when the head is tied. */
  public final float[] lmHead;

  private final List<NamedTensor> parameters;

  /**
   * Weights of fewer floats than this are zeroed on the calling thread alone ({@link #zerosLike}).
   */
  private static final long PARALLEL_ZEROS = 1 << 20;

  /** Zero-filled weights of the given shape. */
  public MambaWeights(MambaConfig c) {
    this(c, BlockWeights.FRESH, BlockWeights.FRESH);
  }

  /**
   * @param zeros makes every array
   * @param matrices makes the {@link #isMatrix matrices}
   */
  private MambaWeights(MambaConfig c, BlockWeights.Zeros zeros, BlockWeights.Zeros matrices) {
    this.config = c;
    int V = c.vocabSize, D = c.hiddenSize;
    embeddings = matrices.of(V * D);
    boolean ssd = c.architecture == Architecture.MAMBA2;
    layers = new LayerWeights[ssd ? 0 : c.numLayers];
    mamba2Layers = new Mamba2LayerWeights[ssd ? c.numLayers : 0];
    blocks = new BlockWeights[c.numLayers];
    for (int i = 0; i < blocks.length; i++) {
      if (ssd) {
        blocks[i] = mamba2Layers[i] = new Mamba2LayerWeights(c, zeros, matrices);
      } else {
        blocks[i] = layers[i] = new LayerWeights(c, zeros, matrices);
      }
    }
    normF = zeros.of(D);
    lmHead = c.tieWordEmbeddings ? embeddings : matrices.of(V * D);
    parameters = Collections.unmodifiableList(buildParameters());
  }

  /**
   * Every parameter's name and shape, as {@link #parameters()} lists them, with empty data: what a
   * checkpoint must hold, known without allocating the weights (the Spark driver checks a model
   * file against it).
   */
  public static List<NamedTensor> shapes(MambaConfig c) {
    return new MambaWeights(c, BlockWeights.EMPTY, BlockWeights.EMPTY).parameters;
  }

  /**
   * Weights with every parameter allocated except the {@link #isMatrix matrices}, which are empty:
   * an inference model in a 16- or 8-bit format holds those itself ({@link MambaModel}), and a
   * checkpoint is loaded into it one matrix at a time, never as a whole in fp32.
   */
  public static MambaWeights withoutMatrices(MambaConfig c) {
    return new MambaWeights(c, BlockWeights.FRESH, BlockWeights.EMPTY);
  }

  /**
   * Whether a parameter is one of the big matrices that {@link MambaModel} may hold in bf16 or
   * int8: the embedding, lm_head and every layer's in_proj, x_proj and out_proj. dt_proj, conv, A,
   * D, biases and norms stay fp32 (small, and the recurrence is sensitive to them).
   */
  public static boolean isMatrix(String name) {
    return name.equals(EMBEDDINGS)
        || name.equals(LM_HEAD)
        || name.endsWith(".mixer.in_proj.weight")
        || name.endsWith(".mixer.x_proj.weight")
        || name.endsWith(".mixer.out_proj.weight");
  }

  /**
   * Zero-filled weights of w's shape (fresh arrays; a tied lm_head is the embedding, as in w). Java
   * zeroes an array on the thread that allocates it, so the arrays are allocated on the engine's
   * threads ({@link Parallel}), the largest first: a model's gradient buffer (half a gigabyte for
   * mamba-130m) takes one thread 50 to 100 ms.
   */
  public static MambaWeights zerosLike(MambaWeights w) {
    MambaConfig c = w.config;
    List<Integer> sizes = new ArrayList<>(); // in the order the constructor asks for the arrays
    BlockWeights.Zeros sized =
        n -> {
          sizes.add(n);
          return new float[0];
        };
    new MambaWeights(c, sized, sized);
    long total = 0;
    for (int n : sizes) {
      total += n;
    }
    if (total < PARALLEL_ZEROS || Parallel.threads() == 1) {
      return new MambaWeights(c);
    }
    Integer[] bySize = new Integer[sizes.size()];
    for (int i = 0; i < bySize.length; i++) {
      bySize[i] = i;
    }
    Arrays.sort(bySize, (a, b) -> Integer.compare(sizes.get(b), sizes.get(a)));
    float[][] arrays = new float[bySize.length][];
    // one array a piece, taken one at a time: the threads that drew the largest take fewer
    Parallel.forChunks(
        bySize.length,
        1,
        (from, to) -> {
          for (int k = from; k < to; k++) {
            int i = bySize[k];
            arrays[i] = new float[sizes.get(i)];
          }
        });
    int[] next = {0};
    BlockWeights.Zeros allocated =
        n -> {
          float[] a = arrays[next[0]++];
          if (a.length != n) {
            throw new IllegalStateException(
                "array " + (next[0] - 1) + ": " + a.length + " != " + n);
          }
          return a;
        };
    return new MambaWeights(c, allocated, allocated);
  }

  /**
   * Every parameter once, by its HF checkpoint name; a tied lm_head is not listed (it is the
   * embedding).
   */
  public List<NamedTensor> parameters() {
    return parameters;
  }

  /** Looks a parameter up by checkpoint name, or null. */
  public NamedTensor parameter(String name) {
    for (NamedTensor t : parameters) {
      if (t.name.equals(name)) {
        return t;
      }
    }
    return null;
  }

  private List<NamedTensor> buildParameters() {
    MambaConfig c = config;
    long V = c.vocabSize, D = c.hiddenSize;
    List<NamedTensor> p = new ArrayList<>();
    p.add(new NamedTensor(EMBEDDINGS, new long[] {V, D}, embeddings));
    for (int i = 0; i < blocks.length; i++) {
      String pre = "backbone.layers." + i + ".";
      p.add(new NamedTensor(pre + "norm.weight", new long[] {D}, blocks[i].norm));
      blocks[i].addMixerParameters(p, pre + "mixer.", c);
    }
    p.add(new NamedTensor(NORM_F, new long[] {D}, normF));
    if (!c.tieWordEmbeddings) {
      p.add(new NamedTensor(LM_HEAD, new long[] {V, D}, lmHead));
    }
    return p;
  }
}
