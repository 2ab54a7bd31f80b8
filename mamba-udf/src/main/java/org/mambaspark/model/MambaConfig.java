package org.mambaspark.model;

import java.util.Objects;

/**
 * The shape and hyper-parameters of a Mamba-family language model, as in Hugging Face's {@code
 * MambaConfig}, {@code Mamba2Config} and {@code FalconMambaConfig}: {@link #architecture} says
 * which.
 *
 * <p>Glossary (Gu &amp; Dao 2023, Dao &amp; Gu 2024): D = {@link #hiddenSize}, ED = {@link
 * #intermediateSize} (expand·D), N = {@link #stateSize}, R = {@link #timeStepRank} (Mamba-1 and
 * Falcon-Mamba), K = {@link #convKernel}, V = {@link #vocabSize}; Mamba-2 only: H = {@link
 * #numHeads} heads of P = {@link #headDim} channels (H·P = ED), G = {@link #nGroups} groups of
 * heads sharing B and C. Reading and writing {@code config.json} (both the HF and the original
 * mamba_ssm field names) lives in {@code io.ConfigJson}.
 */
public final class MambaConfig implements java.io.Serializable {
  private static final long serialVersionUID = 1L;

  /** Which member of the family, hence which mixer and which parameters. */
  public final Architecture architecture;

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

  /** Mamba-2: H, the number of heads (one scalar A, Δ and D each). */
  public final int numHeads;

  /** Mamba-2: P, channels per head. */
  public final int headDim;

  /** Mamba-2: G, groups of heads; the heads of a group share B and C. */
  public final int nGroups;

  /** Mamba-2: positions per chunk of the state-space-dual scan (a speed setting, not the math). */
  public final int chunkSize;

  /** Mamba-2: Δ is clamped to [timeStepLimitMin, timeStepLimitMax] after the softplus. */
  public final float timeStepLimitMin;

  public final float timeStepLimitMax;

  /** Falcon-Mamba: ε of the weightless RMSNorms on Δ's input, B and C. */
  public final float mixerRmsEps;

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
    this.architecture = b.architecture;
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
    boolean ssd = b.architecture == Architecture.MAMBA2;
    this.headDim = ssd ? b.headDim : 0;
    this.numHeads =
        !ssd ? 0 : b.numHeads > 0 ? b.numHeads : b.headDim > 0 ? intermediateSize / b.headDim : 0;
    this.nGroups = ssd ? b.nGroups : 0;
    this.chunkSize = b.chunkSize;
    this.timeStepLimitMin = b.timeStepLimitMin;
    this.timeStepLimitMax = b.timeStepLimitMax;
    this.mixerRmsEps = b.mixerRmsEps;
    this.initializerRange = b.initializerRange;
    this.timeStepMin = b.timeStepMin;
    this.timeStepMax = b.timeStepMax;
    this.timeStepFloor = b.timeStepFloor;
    this.timeStepScale = b.timeStepScale;
    this.rescalePrenormResidual = b.rescalePrenormResidual;
    validate();
  }

  private void validate() {
    check(architecture != null, "architecture", architecture);
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
    // Δ's initialisation draws log-uniformly from [time_step_min, time_step_max]
    check(
        timeStepMin > 0 && timeStepMin <= timeStepMax && Float.isFinite(timeStepMax),
        "time_step_min, time_step_max",
        timeStepMin + ", " + timeStepMax);
    check(timeStepFloor >= 0 && Float.isFinite(timeStepFloor), "time_step_floor", timeStepFloor);
    if (architecture == Architecture.MAMBA2) {
      check(headDim > 0, "head_dim", headDim);
      check(numHeads > 0, "num_heads", numHeads);
      check(nGroups > 0, "n_groups", nGroups);
      check(chunkSize > 0, "chunk_size", chunkSize);
      if ((long) numHeads * headDim != intermediateSize) {
        throw new IllegalArgumentException(
            "invalid model config: num_heads * head_dim = "
                + numHeads
                + " * "
                + headDim
                + " must equal the inner width expand * hidden_size = "
                + intermediateSize);
      }
      if (intermediateSize % hiddenSize != 0) {
        throw new IllegalArgumentException(
            "invalid model config: expand = "
                + intermediateSize
                + " / "
                + hiddenSize
                + " is not a whole number (transformers' Mamba2Config stores an integer expand)");
      }
      if (numHeads % nGroups != 0) {
        throw new IllegalArgumentException(
            "invalid model config: num_heads = "
                + numHeads
                + " is not a multiple of n_groups = "
                + nGroups);
      }
      check(
          timeStepLimitMin >= 0 && timeStepLimitMin <= timeStepLimitMax,
          "time_step_limit",
          "[" + timeStepLimitMin + ", " + timeStepLimitMax + "]");
    }
    if (architecture == Architecture.FALCON_MAMBA) {
      check(mixerRmsEps > 0 && Float.isFinite(mixerRmsEps), "mixer_rms_eps", mixerRmsEps);
    }
    // Every tensor is one Java array: keep each under 2^31 elements.
    check(
        (long) vocabSize * hiddenSize < Integer.MAX_VALUE,
        "vocab_size*hidden_size",
        (long) vocabSize * hiddenSize);
    check(
        (long) inProjSize() * hiddenSize < Integer.MAX_VALUE,
        "in_proj rows*hidden_size",
        (long) inProjSize() * hiddenSize);
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

  /** Channels of the causal conv: ED (Mamba-1's x), or ED + 2GN (Mamba-2's x, B and C together). */
  public int convChannels() {
    return architecture == Architecture.MAMBA2
        ? intermediateSize + 2 * nGroups * stateSize
        : intermediateSize;
  }

  /** Rows of in_proj: 2ED ([x | z]), or 2ED + 2GN + H ([z | x B C | Δ]) for Mamba-2. */
  public int inProjSize() {
    return architecture == Architecture.MAMBA2
        ? intermediateSize + convChannels() + numHeads
        : 2 * intermediateSize;
  }

  /** Number of parameters, the tied head counted once. */
  public long parameterCount() {
    long D = hiddenSize, ED = intermediateSize, N = stateSize, R = timeStepRank, K = convKernel;
    if (architecture == Architecture.MAMBA2) {
      long H = numHeads, C = convChannels(), I = inProjSize();
      long perLayer =
          D // norm
              + I * D
              + (useBias ? I : 0) // in_proj
              + C * K
              + (useConvBias ? C : 0) // conv1d
              + 3 * H // dt_bias, A_log, D
              + ED // gated norm
              + D * ED
              + (useBias ? D : 0); // out_proj
      return (long) vocabSize * D * (tieWordEmbeddings ? 1 : 2) + numLayers * perLayer + D;
    }
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
    b.architecture = architecture;
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
    if (architecture == Architecture.MAMBA2) {
      b.numHeads = numHeads;
      b.headDim = headDim;
      b.nGroups = nGroups;
    }
    b.chunkSize = chunkSize;
    b.timeStepLimitMin = timeStepLimitMin;
    b.timeStepLimitMax = timeStepLimitMax;
    b.mixerRmsEps = mixerRmsEps;
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

  /** The names {@link #preset} knows. */
  public static final java.util.List<String> PRESETS =
      java.util.List.of(
          "mamba-130m",
          "mamba-370m",
          "mamba-790m",
          "mamba-1.4b",
          "mamba-2.8b",
          "mamba2-130m",
          "mamba2-370m",
          "mamba2-780m",
          "mamba2-1.3b",
          "mamba2-2.7b",
          "falcon-mamba-7b");

  /**
   * The published sizes. state-spaces/mamba-*-hf: D and layer count; V = 50280 (GPT-NeoX, padded to
   * 8). state-spaces/mamba2-*: mamba_ssm's Mamba2 defaults (N = 128, P = 64, G = 1, chunk 256); V =
   * 50288 (padded to 16). tiiuae/falcon-mamba-7b: D 4096, 64 layers, ED 8192, R 256, V 65024,
   * untied head.
   */
  public static MambaConfig preset(String name) {
    Builder m1 = builder().vocabSize(50280);
    Builder m2 =
        builder()
            .architecture(Architecture.MAMBA2)
            .vocabSize(50288)
            .stateSize(128)
            .headDim(64)
            .nGroups(1)
            .chunkSize(256);
    switch (name) {
      case "mamba-130m":
        return m1.hiddenSize(768).numLayers(24).build();
      case "mamba-370m":
        return m1.hiddenSize(1024).numLayers(48).build();
      case "mamba-790m":
        return m1.hiddenSize(1536).numLayers(48).build();
      case "mamba-1.4b":
        return m1.hiddenSize(2048).numLayers(48).build();
      case "mamba-2.8b":
        return m1.hiddenSize(2560).numLayers(64).build();
      case "mamba2-130m":
        return m2.hiddenSize(768).numLayers(24).build();
      case "mamba2-370m":
        return m2.hiddenSize(1024).numLayers(48).build();
      case "mamba2-780m":
        return m2.hiddenSize(1536).numLayers(48).build();
      case "mamba2-1.3b":
        return m2.hiddenSize(2048).numLayers(48).build();
      case "mamba2-2.7b":
        return m2.hiddenSize(2560).numLayers(64).build();
      case "falcon-mamba-7b":
        return builder()
            .architecture(Architecture.FALCON_MAMBA)
            .vocabSize(65024)
            .hiddenSize(4096)
            .numLayers(64)
            .intermediateSize(8192)
            .timeStepRank(256)
            .tieWordEmbeddings(false)
            .build();
      default:
        throw new IllegalArgumentException(
            "unknown preset '" + name + "' (known: " + String.join(", ", PRESETS) + ")");
    }
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof MambaConfig c)) {
      return false;
    }
    return architecture == c.architecture
        && vocabSize == c.vocabSize
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
        && padTokenId == c.padTokenId
        && numHeads == c.numHeads
        && headDim == c.headDim
        && nGroups == c.nGroups
        && chunkSize == c.chunkSize
        && timeStepLimitMin == c.timeStepLimitMin
        && timeStepLimitMax == c.timeStepLimitMax
        && mixerRmsEps == c.mixerRmsEps;
  }

  @Override
  public int hashCode() {
    return Objects.hash(
        architecture,
        vocabSize,
        hiddenSize,
        intermediateSize,
        stateSize,
        timeStepRank,
        convKernel,
        numLayers);
  }

  @Override
  public String toString() {
    String mixer =
        architecture == Architecture.MAMBA2
            ? ", H=" + numHeads + ", P=" + headDim + ", G=" + nGroups + ", chunk=" + chunkSize
            : ", R=" + timeStepRank;
    return (architecture == Architecture.MAMBA ? "MambaConfig" : architecture.hfClass + " config")
        + "{V="
        + vocabSize
        + ", D="
        + hiddenSize
        + ", ED="
        + intermediateSize
        + ", N="
        + stateSize
        + mixer
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

  /**
   * Defaults are HF MambaConfig's; the Mamba-2 fields' are mamba_ssm's Mamba2 block's (P = 64, G =
   * 1, chunk 256, Δ unclamped), H = ED / P unless set.
   */
  public static final class Builder {
    private Architecture architecture = Architecture.MAMBA;
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
    private int numHeads = -1; // ED / headDim
    private int headDim = 64;
    private int nGroups = 1;
    private int chunkSize = 256;
    private float timeStepLimitMin = 0f;
    private float timeStepLimitMax = Float.POSITIVE_INFINITY;
    private float mixerRmsEps = 1e-6f;

    public Builder architecture(Architecture v) {
      architecture = v;
      return this;
    }

    public Builder numHeads(int v) {
      numHeads = v;
      return this;
    }

    public Builder headDim(int v) {
      headDim = v;
      return this;
    }

    public Builder nGroups(int v) {
      nGroups = v;
      return this;
    }

    public Builder chunkSize(int v) {
      chunkSize = v;
      return this;
    }

    public Builder timeStepLimit(float min, float max) {
      timeStepLimitMin = min;
      timeStepLimitMax = max;
      return this;
    }

    public Builder mixerRmsEps(float v) {
      mixerRmsEps = v;
      return this;
    }

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
