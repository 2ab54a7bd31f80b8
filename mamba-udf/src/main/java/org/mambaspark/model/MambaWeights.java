package org.mambaspark.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * All parameters of a {@code MambaForCausalLM}. {@link #parameters()} is the one walk over them by
 * checkpoint name, in a fixed order, shared by checkpoint I/O, the optimizer and gradient
 * aggregation. A gradient is a {@code MambaWeights} too ({@link #zerosLike}).
 */
public final class MambaWeights {
  public static final String EMBEDDINGS = "backbone.embeddings.weight";
  public static final String NORM_F = "backbone.norm_f.weight";
  public static final String LM_HEAD = "lm_head.weight";

  public final MambaConfig config;
  public final float[] embeddings; // (V, D)
  public final LayerWeights[] layers;
  public final float[] normF; //      (D)

  /** (V, D); the same array as {@link #embeddings} when the head is tied. */
  public final float[] lmHead;

  private final List<NamedTensor> parameters;

  /** Zero-filled weights of the given shape. */
  public MambaWeights(MambaConfig c) {
    this(c, true);
  }

  private MambaWeights(MambaConfig c, boolean allocate) {
    this.config = c;
    int V = c.vocabSize, D = c.hiddenSize;
    embeddings = LayerWeights.zeros(V * D, allocate);
    layers = new LayerWeights[c.numLayers];
    for (int i = 0; i < layers.length; i++) {
      layers[i] = new LayerWeights(c, allocate);
    }
    normF = LayerWeights.zeros(D, allocate);
    lmHead = c.tieWordEmbeddings ? embeddings : LayerWeights.zeros(V * D, allocate);
    parameters = Collections.unmodifiableList(buildParameters());
  }

  /**
   * Every parameter's name and shape, as {@link #parameters()} lists them, with empty data: what a
   * checkpoint must hold, known without allocating the weights (the Spark driver checks a model
   * file against it).
   */
  public static List<NamedTensor> shapes(MambaConfig c) {
    return new MambaWeights(c, false).parameters;
  }

  public static MambaWeights zerosLike(MambaWeights w) {
    return new MambaWeights(w.config);
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
    long V = c.vocabSize,
        D = c.hiddenSize,
        ED = c.intermediateSize,
        N = c.stateSize,
        R = c.timeStepRank;
    long K = c.convKernel;
    List<NamedTensor> p = new ArrayList<>();
    p.add(new NamedTensor(EMBEDDINGS, new long[] {V, D}, embeddings));
    for (int i = 0; i < layers.length; i++) {
      LayerWeights l = layers[i];
      String pre = "backbone.layers." + i + ".";
      String mx = pre + "mixer.";
      p.add(new NamedTensor(pre + "norm.weight", new long[] {D}, l.norm));
      p.add(new NamedTensor(mx + "in_proj.weight", new long[] {2 * ED, D}, l.inProj));
      if (l.inProjBias != null) {
        p.add(new NamedTensor(mx + "in_proj.bias", new long[] {2 * ED}, l.inProjBias));
      }
      p.add(new NamedTensor(mx + "conv1d.weight", new long[] {ED, 1, K}, l.conv1dWeight));
      if (l.conv1dBias != null) {
        p.add(new NamedTensor(mx + "conv1d.bias", new long[] {ED}, l.conv1dBias));
      }
      p.add(new NamedTensor(mx + "x_proj.weight", new long[] {R + 2 * N, ED}, l.xProj));
      p.add(new NamedTensor(mx + "dt_proj.weight", new long[] {ED, R}, l.dtProj));
      p.add(new NamedTensor(mx + "dt_proj.bias", new long[] {ED}, l.dtProjBias));
      p.add(new NamedTensor(mx + "A_log", new long[] {ED, N}, l.aLog));
      p.add(new NamedTensor(mx + "D", new long[] {ED}, l.dSkip));
      p.add(new NamedTensor(mx + "out_proj.weight", new long[] {D, ED}, l.outProj));
      if (l.outProjBias != null) {
        p.add(new NamedTensor(mx + "out_proj.bias", new long[] {D}, l.outProjBias));
      }
    }
    p.add(new NamedTensor(NORM_F, new long[] {D}, normF));
    if (!c.tieWordEmbeddings) {
      p.add(new NamedTensor(LM_HEAD, new long[] {V, D}, lmHead));
    }
    return p;
  }
}
