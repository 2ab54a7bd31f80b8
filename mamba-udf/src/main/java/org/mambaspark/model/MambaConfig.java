package org.mambaspark.model;

import java.util.Objects;

/**
 * The shape and hyper-parameters of a Mamba language model, as in Hugging Face's {@code
 * MambaConfig}.
 *
 * <p>Glossary (Gu &amp; Dao 2023): D = {@link #hiddenSize}, ED = {@link #intermediateSize}
 * (expand·D), N = {@link #stateSize}, R = {@link #timeStepRank}, K = {@link #convKernel}, V =
 * {@link #vocabSize}. Reading and writing {@code config.json} (both the HF and the original
 * mamba_ssm field names) lives in {@code io.ConfigJson}.
 */
public final class MambaConfig implements java.io.Serializable {
  private static final long serialVersionUID = 1L;

  /** V: rows of the embedding and of lm_head, already padded to {@code pad_vocab_size_multiple}. */
  public final int vocabSize;

  /** D: the residual stream width. */
  public final int hiddenSize;

  /** ED: the inner (expanded) width of the mixer. */
  public final int intermediateSize;

  /** N: SSM state size per channel. */
  public final int stateSize;

  /** R: rank of the Δ projection. */
  public final int timeStepRank;

  /** K: causal depthwise convolution width. */
  public final int convKernel;

  public final int numLayers;
  public final float layerNormEpsilon;

  /** in_proj and out_proj carry a bias. */
  public final boolean useBias;

  /** conv1d carries a bias. */
  public final boolean useConvBias;

  /** lm_head shares the embedding matrix. */
  public final boolean tieWordEmbeddings;

  public final int bosTokenId;
  public final int eosTokenId;
  public final int padTokenId;

  // Initialisation (mamba_ssm / HF _init_weights); used when training from scratch.
  public final float initializerRange;
  public final float timeStepMin;
  public final float timeStepMax;
  public final float timeStepFloor;
  public final float timeStepScale;
  public final boolean rescalePrenormResidual;

  private MambaConfig(Builder b) {
    this.vocabSize = b.vocabSize;
    this.hiddenSize = b.hiddenSize;
    this.intermediateSize = b.intermediateSize > 0 ? b.intermediateSize : b.expand * b.hiddenSize;
    this.stateSize = b.stateSize;
    this.timeStepRank = b.timeStepRank > 0 ? b.timeStepRank : (b.hiddenSize + 15) / 16;
    this.convKernel = b.convKernel;
    this.numLayers = b.numLayers;
    this.layerNormEpsilon = b.layerNormEpsilon;
    this.useBias = b.useBias;
    this.useConvBias = b.useConvBias;
    this.tieWordEmbeddings = b.tieWordEmbeddings;
    this.bosTokenId = b.bosTokenId;
    this.eosTokenId = b.eosTokenId;
    this.padTokenId = b.padTokenId;
    this.initializerRange = b.initializerRange;
    this.timeStepMin = b.timeStepMin;
    this.timeStepMax = b.timeStepMax;
    this.timeStepFloor = b.timeStepFloor;
    this.timeStepScale = b.timeStepScale;
    this.rescalePrenormResidual = b.rescalePrenormResidual;
    validate();
  }

  private void validate() {
    check(vocabSize > 0, "vocab_size", vocabSize);
    check(hiddenSize > 0, "hidden_size", hiddenSize);
    check(intermediateSize > 0, "intermediate_size", intermediateSize);
    check(stateSize > 0, "state_size", stateSize);
    check(timeStepRank > 0, "time_step_rank", timeStepRank);
    check(convKernel > 0, "conv_kernel", convKernel);
    check(numLayers > 0, "num_hidden_layers", numLayers);
    check(
        layerNormEpsilon > 0 && Float.isFinite(layerNormEpsilon),
        "layer_norm_epsilon",
        layerNormEpsilon);
    // Every tensor is one Java array: keep each under 2^31 elements.
    check(
        (long) vocabSize * hiddenSize < Integer.MAX_VALUE,
        "vocab_size*hidden_size",
        (long) vocabSize * hiddenSize);
    check(
        2L * intermediateSize * hiddenSize < Integer.MAX_VALUE,
        "2*intermediate_size*hidden_size",
        2L * intermediateSize * hiddenSize);
  }

  private static void check(boolean ok, String field, Object value) {
    if (!ok) {
      throw new IllegalArgumentException("invalid model config: " + field + " = " + value);
    }
  }

  /** Width of the x_proj output: R + 2N (Δ rank, then B, then C). */
  public int xProjSize() {
    return timeStepRank + 2 * stateSize;
  }

  /** Number of parameters, the tied head counted once. */
  public long parameterCount() {
    long D = hiddenSize, ED = intermediateSize, N = stateSize, R = timeStepRank, K = convKernel;
    long perLayer =
        D // norm
            + 2 * ED * D
            + (useBias ? 2 * ED : 0) // in_proj
            + ED * K
            + (useConvBias ? ED : 0) // conv1d
            + (R + 2 * N) * ED // x_proj
            + ED * R
            + ED // dt_proj
            + ED * N
            + ED // A_log, D
            + D * ED
            + (useBias ? D : 0); // out_proj
    return (long) vocabSize * D * (tieWordEmbeddings ? 1 : 2) + numLayers * perLayer + D;
  }

  public Builder toBuilder() {
    Builder b = new Builder();
    b.vocabSize = vocabSize;
    b.hiddenSize = hiddenSize;
    b.intermediateSize = intermediateSize;
    b.stateSize = stateSize;
    b.timeStepRank = timeStepRank;
    b.convKernel = convKernel;
    b.numLayers = numLayers;
    b.layerNormEpsilon = layerNormEpsilon;
    b.useBias = useBias;
    b.useConvBias = useConvBias;
    b.tieWordEmbeddings = tieWordEmbeddings;
    b.bosTokenId = bosTokenId;
    b.eosTokenId = eosTokenId;
    b.padTokenId = padTokenId;
    b.initializerRange = initializerRange;
    b.timeStepMin = timeStepMin;
    b.timeStepMax = timeStepMax;
    b.timeStepFloor = timeStepFloor;
    b.timeStepScale = timeStepScale;
    b.rescalePrenormResidual = rescalePrenormResidual;
    return b;
  }

  public static Builder builder() {
    return new Builder();
  }

  /**
   * The published mamba_ssm sizes (state-spaces/mamba-*-hf): D and layer count; V = 50280
   * (GPT-NeoX, padded to 8).
   */
  public static MambaConfig preset(String name) {
    Builder b = builder().vocabSize(50280);
    switch (name) {
      case "mamba-130m":
        return b.hiddenSize(768).numLayers(24).build();
      case "mamba-370m":
        return b.hiddenSize(1024).numLayers(48).build();
      case "mamba-790m":
        return b.hiddenSize(1536).numLayers(48).build();
      case "mamba-1.4b":
        return b.hiddenSize(2048).numLayers(48).build();
      case "mamba-2.8b":
        return b.hiddenSize(2560).numLayers(64).build();
      default:
        throw new IllegalArgumentException(
            "unknown preset '"
                + name
                + "' (known: mamba-130m, mamba-370m, mamba-790m, mamba-1.4b, mamba-2.8b)");
    }
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof MambaConfig c)) {
      return false;
    }
    return vocabSize == c.vocabSize
        && hiddenSize == c.hiddenSize
        && intermediateSize == c.intermediateSize
        && stateSize == c.stateSize
        && timeStepRank == c.timeStepRank
        && convKernel == c.convKernel
        && numLayers == c.numLayers
        && layerNormEpsilon == c.layerNormEpsilon
        && useBias == c.useBias
        && useConvBias == c.useConvBias
        && tieWordEmbeddings == c.tieWordEmbeddings
        && bosTokenId == c.bosTokenId
        && eosTokenId == c.eosTokenId
        && padTokenId == c.padTokenId;
  }

  @Override
  public int hashCode() {
    return Objects.hash(
        vocabSize, hiddenSize, intermediateSize, stateSize, timeStepRank, convKernel, numLayers);
  }

  @Override
  public String toString() {
    return "MambaConfig{V="
        + vocabSize
        + ", D="
        + hiddenSize
        + ", ED="
        + intermediateSize
        + ", N="
        + stateSize
        + ", R="
        + timeStepRank
        + ", K="
        + convKernel
        + ", layers="
        + numLayers
        + ", eps="
        + layerNormEpsilon
        + ", bias="
        + useBias
        + ", convBias="
        + useConvBias
        + ", tied="
        + tieWordEmbeddings
        + "}";
  }

  /** Defaults are HF MambaConfig's. */
  public static final class Builder {
    private int vocabSize = 50280;
    private int hiddenSize = 768;
    private int intermediateSize = -1; // expand * hiddenSize
    private int expand = 2;
    private int stateSize = 16;
    private int timeStepRank = -1; // "auto": ceil(D / 16)
    private int convKernel = 4;
    private int numLayers = 32;
    private float layerNormEpsilon = 1e-5f;
    private boolean useBias = false;
    private boolean useConvBias = true;
    private boolean tieWordEmbeddings = true;
    private int bosTokenId = 0;
    private int eosTokenId = 0;
    private int padTokenId = 0;
    private float initializerRange = 0.1f;
    private float timeStepMin = 0.001f;
    private float timeStepMax = 0.1f;
    private float timeStepFloor = 1e-4f;
    private float timeStepScale = 1.0f;
    private boolean rescalePrenormResidual = false;

    public Builder vocabSize(int v) {
      vocabSize = v;
      return this;
    }

    public Builder hiddenSize(int v) {
      hiddenSize = v;
      return this;
    }

    public Builder intermediateSize(int v) {
      intermediateSize = v;
      return this;
    }

    public Builder expand(int v) {
      expand = v;
      return this;
    }

    public Builder stateSize(int v) {
      stateSize = v;
      return this;
    }

    public Builder timeStepRank(int v) {
      timeStepRank = v;
      return this;
    }

    public Builder convKernel(int v) {
      convKernel = v;
      return this;
    }

    public Builder numLayers(int v) {
      numLayers = v;
      return this;
    }

    public Builder layerNormEpsilon(float v) {
      layerNormEpsilon = v;
      return this;
    }

    public Builder useBias(boolean v) {
      useBias = v;
      return this;
    }

    public Builder useConvBias(boolean v) {
      useConvBias = v;
      return this;
    }

    public Builder tieWordEmbeddings(boolean v) {
      tieWordEmbeddings = v;
      return this;
    }

    public Builder bosTokenId(int v) {
      bosTokenId = v;
      return this;
    }

    public Builder eosTokenId(int v) {
      eosTokenId = v;
      return this;
    }

    public Builder padTokenId(int v) {
      padTokenId = v;
      return this;
    }

    public Builder initializerRange(float v) {
      initializerRange = v;
      return this;
    }

    public Builder timeStepMin(float v) {
      timeStepMin = v;
      return this;
    }

    public Builder timeStepMax(float v) {
      timeStepMax = v;
      return this;
    }

    public Builder timeStepFloor(float v) {
      timeStepFloor = v;
      return this;
    }

    public Builder timeStepScale(float v) {
      timeStepScale = v;
      return this;
    }

    public Builder rescalePrenormResidual(boolean v) {
      rescalePrenormResidual = v;
      return this;
    }

    public MambaConfig build() {
      return new MambaConfig(this);
    }
  }
}
