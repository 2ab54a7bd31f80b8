package org.mambaspark.io;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.mambaspark.model.Architecture;
import org.mambaspark.model.MambaConfig;

/**
 * Reads and writes {@code config.json} for a Mamba-family language model: Mamba-1 ({@code
 * model_type "mamba"}), Mamba-2 ({@code "mamba2"}) and Falcon-Mamba ({@code "falcon_mamba"}).
 *
 * <p>Two dialects are read. Hugging Face's {@code MambaConfig}, {@code Mamba2Config} and {@code
 * FalconMambaConfig} ({@code hidden_size}, {@code num_hidden_layers}, {@code state_size}, ...;
 * state-spaces/mamba-*-hf, tiiuae/falcon-mamba-* and anything {@code save_pretrained} wrote); the
 * architecture is {@code model_type}, else {@code architectures[0]}, else Mamba-1. And the original
 * mamba_ssm {@code MambaConfig} ({@code d_model}, {@code n_layer}, {@code ssm_cfg: {layer, d_state,
 * d_conv, expand, dt_rank, headdim, ngroups, ...}}; state-spaces/mamba-* and mamba2-*), whose
 * vocabulary is padded up to {@code pad_vocab_size_multiple} (default 8) exactly as {@code
 * MambaLMHeadModel.__init__} does, since the embedding in those checkpoints has the padded row
 * count; {@code ssm_cfg.layer} ("Mamba1", the default, or "Mamba2") picks the architecture. A file
 * is mamba_ssm-style when it has {@code d_model} and no {@code hidden_size}. Absent optional fields
 * take that dialect's defaults; unknown fields are ignored; a JSON null counts as absent. Anything
 * this engine does not compute (hybrid attention, per-layer MLPs, LayerNorm, an activation other
 * than SiLU, an ungated or norm-before-gate Mamba-2 norm) is refused with a message naming the
 * field, never silently run as something else.
 *
 * <p>{@link #write} always writes the Hugging Face dialect, with every field transformers' config
 * class needs, so that {@code MambaForCausalLM} / {@code Mamba2ForCausalLM} / {@code
 * FalconMambaForCausalLM.from_pretrained(dir)} loads what we train.
 */
public final class ConfigJson {
  private ConfigJson() {}

  public static MambaConfig read(Path configJson) {
    JsonNode root = Json.readObjectFile(configJson, "config.json");
    Fields f = new Fields(configJson, root, "");
    boolean mambaSsm = !root.hasNonNull("hidden_size") && root.hasNonNull("d_model");
    refuseHybrid(f);
    MambaConfig.Builder b = mambaSsm ? readMambaSsm(f) : readHf(f, architecture(f));
    try {
      return b.build();
    } catch (IllegalArgumentException e) {
      throw new CheckpointException(configJson, e.getMessage(), e);
    }
  }

  /** HF dialect: model_type, else architectures[0], else Mamba-1; the two must agree. */
  private static Architecture architecture(Fields f) {
    String modelType = f.optString("model_type", null);
    Architecture byType = modelType == null ? null : Architecture.ofModelType(modelType);
    if (modelType != null && byType == null) {
      throw f.error(
          "model_type",
          "is \""
              + modelType
              + "\": not a model this engine runs (it runs \"mamba\", \"mamba2\" and"
              + " \"falcon_mamba\")");
    }
    JsonNode archs = f.node("architectures");
    Architecture byClass = null;
    if (archs != null && archs.isArray() && archs.size() > 0 && archs.get(0).isTextual()) {
      byClass = Architecture.ofHfClass(archs.get(0).textValue());
    }
    if (byType != null && byClass != null && byType != byClass) {
      throw f.error(
          "architectures",
          "is "
              + archs
              + " but model_type is \""
              + modelType
              + "\"; they name different architectures");
    }
    return byType != null ? byType : byClass != null ? byClass : Architecture.MAMBA;
  }

  /** Layers other than the mixers this engine has: refused in either dialect. */
  private static void refuseHybrid(Fields f) {
    JsonNode attn = f.node("attn_layer_idx");
    if (attn != null && !(attn.isArray() && attn.size() == 0)) {
      throw f.error("attn_layer_idx", "is " + attn + ": hybrid attention layers are not supported");
    }
    if (f.optInt("d_intermediate", 0) != 0) {
      throw f.error(
          "d_intermediate",
          "is " + f.node("d_intermediate") + ": per-layer MLPs are not supported");
    }
  }

  /** transformers' {@code MambaConfig} / {@code FalconMambaConfig} / {@code Mamba2Config}. */
  private static MambaConfig.Builder readHf(Fields f, Architecture arch) {
    String act = f.optString("hidden_act", "silu");
    if (!act.equals("silu")) {
      throw f.error("hidden_act", "is \"" + act + "\"; only \"silu\" is supported");
    }
    boolean ssd = arch == Architecture.MAMBA2;
    int D = f.reqInt("hidden_size");
    int ED =
        f.has("intermediate_size")
            ? f.reqPositiveInt("intermediate_size")
            : expandedWidth(f, "expand", D);
    MambaConfig.Builder b =
        MambaConfig.builder()
            .architecture(arch)
            .vocabSize(f.reqInt("vocab_size"))
            .hiddenSize(D)
            .numLayers(f.reqInt("num_hidden_layers"))
            .intermediateSize(ED)
            .stateSize(f.optInt("state_size", ssd ? 128 : 16))
            .timeStepRank(rank(f, "time_step_rank", D))
            .convKernel(f.optInt("conv_kernel", 4))
            .layerNormEpsilon(f.optFloat("layer_norm_epsilon", 1e-5f))
            .useBias(f.optBool("use_bias", false))
            .useConvBias(f.optBool("use_conv_bias", true))
            .tieWordEmbeddings(f.optBool("tie_word_embeddings", !ssd))
            .bosTokenId(f.optTokenId("bos_token_id"))
            .eosTokenId(f.optTokenId("eos_token_id"))
            .padTokenId(f.optTokenId("pad_token_id"))
            .initializerRange(f.optFloat("initializer_range", 0.1f))
            .timeStepMin(f.optFloat("time_step_min", 0.001f))
            .timeStepMax(f.optFloat("time_step_max", 0.1f))
            .timeStepFloor(f.optFloat("time_step_floor", 1e-4f))
            .timeStepScale(f.optFloat("time_step_scale", 1.0f))
            .rescalePrenormResidual(f.optBool("rescale_prenorm_residual", false));
    if (arch == Architecture.FALCON_MAMBA) {
      b.mixerRmsEps(f.optFloat("mixer_rms_eps", 1e-6f));
    }
    if (ssd) {
      if (!f.optBool("rms_norm", true)) {
        throw f.error("rms_norm", "is false: Mamba-2 without its gated RMSNorm is not supported");
      }
      float[] limit = timeStepLimit(f, "time_step_limit");
      b.numHeads(f.optInt("num_heads", 128))
          .headDim(f.optInt("head_dim", 64))
          .nGroups(f.optInt("n_groups", 8))
          .chunkSize(f.optInt("chunk_size", 256))
          .timeStepLimit(limit[0], limit[1]);
    }
    return b;
  }

  /**
   * mamba_ssm's {@code MambaConfig} (mamba_ssm/models/config_mamba.py) with the {@code Mamba} /
   * {@code Mamba2} block defaults (mamba_ssm/modules/mamba_simple.py, mamba2.py) and {@code
   * _init_weights} defaults (initializer_range 0.02, rescale on).
   */
  private static MambaConfig.Builder readMambaSsm(Fields f) {
    Fields ssm = f.optObject("ssm_cfg");
    String layer = ssm.optString("layer", "Mamba1");
    if (!layer.equals("Mamba1") && !layer.equals("Mamba2")) {
      throw ssm.error("layer", "is \"" + layer + "\": only \"Mamba1\" and \"Mamba2\" load");
    }
    boolean ssd = layer.equals("Mamba2");
    if (!f.optBool("rms_norm", true)) {
      throw f.error("rms_norm", "is false: LayerNorm blocks are not supported (RMSNorm only)");
    }
    int D = f.reqInt("d_model");
    long vocab = f.reqInt("vocab_size");
    int multiple = f.optInt("pad_vocab_size_multiple", 8);
    if (multiple <= 0) {
      throw f.error("pad_vocab_size_multiple", "must be positive, found " + multiple);
    }
    long padded = (vocab + multiple - 1) / multiple * multiple;
    if (padded > Integer.MAX_VALUE) {
      throw f.error(
          "vocab_size", vocab + " padded to a multiple of " + multiple + " overflows an int");
    }
    Fields init = f.optObject("initializer_cfg");
    int ED = expandedWidth(ssm, "expand", D);
    MambaConfig.Builder b =
        MambaConfig.builder()
            .architecture(ssd ? Architecture.MAMBA2 : Architecture.MAMBA)
            .vocabSize((int) padded)
            .hiddenSize(D)
            .numLayers(f.reqInt("n_layer"))
            .intermediateSize(ED)
            .stateSize(ssm.optInt("d_state", ssd ? 128 : 16))
            .timeStepRank(ssd ? (D + 15) / 16 : rank(ssm, "dt_rank", D))
            .convKernel(ssm.optInt("d_conv", 4))
            .layerNormEpsilon(f.optFloat("norm_epsilon", 1e-5f))
            .useBias(ssm.optBool("bias", false))
            .useConvBias(ssm.optBool("conv_bias", true))
            .tieWordEmbeddings(f.optBool("tie_embeddings", true))
            .timeStepMin(ssm.optFloat("dt_min", 0.001f))
            .timeStepMax(ssm.optFloat("dt_max", 0.1f))
            .timeStepFloor(ssm.optFloat("dt_init_floor", 1e-4f))
            .timeStepScale(ssm.optFloat("dt_scale", 1.0f))
            .initializerRange(init.optFloat("initializer_range", 0.02f))
            .rescalePrenormResidual(init.optBool("rescale_prenorm_residual", true));
    if (ssd) {
      if (!ssm.optBool("rmsnorm", true)) {
        throw ssm.error("rmsnorm", "is false: Mamba-2 without its gated RMSNorm is not supported");
      }
      if (ssm.optBool("norm_before_gate", false)) {
        throw ssm.error(
            "norm_before_gate",
            "is true: only the gate before the norm (the default) is supported");
      }
      if (ssm.optBool("D_has_hdim", false)) {
        throw ssm.error("D_has_hdim", "is true: only one D per head (the default) is supported");
      }
      if (ssm.has("d_ssm") && ssm.reqInt("d_ssm") != ED) {
        throw ssm.error(
            "d_ssm",
            "is "
                + ssm.node("d_ssm")
                + ": an SSM over part of the "
                + ED
                + " inner channels"
                + " is not supported");
      }
      int headDim = ssm.optInt("headdim", 64);
      if (headDim <= 0 || ED % headDim != 0) {
        throw ssm.error(
            "headdim",
            "is " + headDim + ": it must divide the inner width expand * d_model = " + ED);
      }
      float[] limit = timeStepLimit(ssm, "dt_limit");
      b.headDim(headDim)
          .numHeads(ED / headDim)
          .nGroups(ssm.optInt("ngroups", 1))
          .chunkSize(ssm.optInt("chunk_size", 256))
          .timeStepLimit(limit[0], limit[1]);
    }
    return b;
  }

  /**
   * Δ's clamp [lo, hi], default [0, ∞): a two-number list, either written as a number, a bare
   * {@code Infinity}, a string such as "inf", or transformers' {@code {"__float__": "Infinity"}}.
   */
  private static float[] timeStepLimit(Fields f, String field) {
    JsonNode v = f.node(field);
    if (v == null) {
      return new float[] {0f, Float.POSITIVE_INFINITY};
    }
    if (!v.isArray() || v.size() != 2) {
      throw f.error(field, "must be a list [min, max], found " + v);
    }
    float[] r = new float[2];
    for (int i = 0; i < 2; i++) {
      JsonNode e = v.get(i);
      if (e.isObject() && e.has("__float__")) {
        e = e.get("__float__");
      }
      double d =
          e.isNumber() ? e.doubleValue() : e.isTextual() ? parseLimit(e.textValue()) : Double.NaN;
      if (Double.isNaN(d)) {
        throw f.error(field, "must be a list of two numbers (Infinity allowed), found " + v);
      }
      r[i] = (float) d;
    }
    if (!(r[0] >= 0 && r[0] <= r[1])) {
      throw f.error(field, "must be [min, max] with 0 <= min <= max, found " + v);
    }
    return r;
  }

  /** ED = int(expand * D), as both transformers and mamba_ssm compute it; expand defaults to 2. */
  private static int expandedWidth(Fields f, String field, int D) {
    double expand = f.optDouble(field, 2.0);
    double ed = expand * D;
    if (!(ed >= 1) || ed >= Integer.MAX_VALUE) {
      throw f.error(
          field,
          "must be a positive number with 1 <= "
              + field
              + " * hidden size < 2^31, found "
              + expand);
    }
    return (int) ed;
  }

  /** R: an integer, or "auto" (also when absent) = ceil(D / 16). */
  private static int rank(Fields f, String field, int D) {
    JsonNode v = f.node(field);
    if (v == null || (v.isTextual() && v.textValue().equals("auto"))) {
      return (D + 15) / 16;
    }
    if (!v.isTextual()) {
      return f.reqPositiveInt(field);
    }
    throw f.error(field, "must be an integer or \"auto\", found " + v);
  }

  /**
   * Writes the Hugging Face dialect of the config's architecture, keys sorted as transformers
   * writes them, atomically.
   */
  public static void write(MambaConfig c, Path configJson) {
    Map<String, Object> m = new TreeMap<>();
    m.put("architectures", Collections.singletonList(c.architecture.hfClass));
    m.put("model_type", c.architecture.modelType);
    m.put("vocab_size", c.vocabSize);
    m.put("hidden_size", c.hiddenSize);
    m.put("state_size", c.stateSize);
    m.put("time_step_rank", c.timeStepRank);
    m.put("conv_kernel", c.convKernel);
    m.put("num_hidden_layers", c.numLayers);
    m.put("layer_norm_epsilon", decimal(c.layerNormEpsilon));
    m.put("use_bias", c.useBias);
    m.put("use_conv_bias", c.useConvBias);
    m.put("tie_word_embeddings", c.tieWordEmbeddings);
    m.put("bos_token_id", c.bosTokenId);
    m.put("eos_token_id", c.eosTokenId);
    m.put("pad_token_id", c.padTokenId);
    m.put("initializer_range", decimal(c.initializerRange));
    m.put("time_step_min", decimal(c.timeStepMin));
    m.put("time_step_max", decimal(c.timeStepMax));
    m.put("time_step_floor", decimal(c.timeStepFloor));
    m.put("rescale_prenorm_residual", c.rescalePrenormResidual);
    m.put("hidden_act", "silu");
    m.put("residual_in_fp32", true);
    m.put("use_cache", true);
    m.put("torch_dtype", "float32");
    if (c.architecture == Architecture.MAMBA2) {
      // Mamba2Config derives the inner width as expand * hidden_size (MambaConfig checks it whole)
      m.put("expand", c.intermediateSize / c.hiddenSize);
      m.put("num_heads", c.numHeads);
      m.put("head_dim", c.headDim);
      m.put("n_groups", c.nGroups);
      m.put("chunk_size", c.chunkSize);
      m.put("rms_norm", true);
      m.put(
          "time_step_limit",
          List.of(limitValue(c.timeStepLimitMin), limitValue(c.timeStepLimitMax)));
    } else {
      m.put("intermediate_size", c.intermediateSize);
      // transformers types expand as an int and derives int(expand * hidden_size) from it, but a
      // stored intermediate_size overrides that (checked with transformers 5.18): so for a
      // non-integral ED/D, expand is only the nearest integer, and intermediate_size carries the
      // truth.
      m.put("expand", Math.max(1, Math.round((double) c.intermediateSize / c.hiddenSize)));
      m.put("time_step_scale", decimal(c.timeStepScale));
      m.put("time_step_init_scheme", "random");
      m.put("use_mambapy", false);
      m.put("use_associative_scan", true);
      if (c.architecture == Architecture.FALCON_MAMBA) {
        m.put("mixer_rms_eps", decimal(c.mixerRmsEps));
      }
    }
    AtomicFiles.write(configJson, Json.pretty(m));
  }

  /** "Infinity", "inf", "-inf", "1e-3", ...; NaN if none of these. */
  private static double parseLimit(String text) {
    String t = text.trim().toLowerCase(java.util.Locale.ROOT);
    boolean negative = t.startsWith("-");
    String u = t.startsWith("-") || t.startsWith("+") ? t.substring(1) : t;
    if (u.equals("inf") || u.equals("infinity")) {
      return negative ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY;
    }
    try {
      return Double.parseDouble(t);
    } catch (NumberFormatException e) {
      return Double.NaN;
    }
  }

  /** A limit as transformers writes it: a number, or {"__float__": "Infinity"} for ∞. */
  private static Object limitValue(float v) {
    return Float.isInfinite(v)
        ? Collections.singletonMap("__float__", v > 0 ? "Infinity" : "-Infinity")
        : (Object) decimal(v);
  }

  /**
   * A float as the double of its shortest decimal form, so 1e-5f is written 1.0E-5, not
   * 9.999999747378752E-6.
   */
  private static double decimal(float v) {
    return Double.parseDouble(Float.toString(v));
  }

  /**
   * Typed access to one JSON object's fields, with errors that name the file and the (dotted)
   * field.
   */
  private static final class Fields {
    final Path file;
    final JsonNode
        obj; // an ObjectNode, or null for an absent optional section (then every field is absent)
    final String prefix;

    Fields(Path file, JsonNode obj, String prefix) {
      this.file = file;
      this.obj = obj;
      this.prefix = prefix;
    }

    CheckpointException error(String field, String detail) {
      return new CheckpointException(file, "field '" + prefix + field + "' " + detail);
    }

    /** The field's node, or null if absent or JSON null. */
    JsonNode node(String field) {
      JsonNode v = obj == null ? null : obj.get(field);
      return v == null || v.isNull() ? null : v;
    }

    boolean has(String field) {
      return node(field) != null;
    }

    int reqInt(String field) {
      JsonNode v = node(field);
      if (v == null) {
        throw error(field, "is required but missing");
      }
      if (!v.isIntegralNumber() || !v.canConvertToInt()) {
        throw error(field, "must be an integer, found " + v);
      }
      return v.intValue();
    }

    /**
     * Zero or negative would be taken for "derive it" by {@link MambaConfig.Builder}: refuse it
     * here.
     */
    int reqPositiveInt(String field) {
      int v = reqInt(field);
      if (v <= 0) {
        throw error(field, "must be positive, found " + v);
      }
      return v;
    }

    int optInt(String field, int dflt) {
      return has(field) ? reqInt(field) : dflt;
    }

    double optDouble(String field, double dflt) {
      JsonNode v = node(field);
      if (v == null) {
        return dflt;
      }
      if (!v.isNumber()) {
        throw error(field, "must be a number, found " + v);
      }
      return v.doubleValue();
    }

    float optFloat(String field, float dflt) {
      return (float) optDouble(field, dflt);
    }

    boolean optBool(String field, boolean dflt) {
      JsonNode v = node(field);
      if (v == null) {
        return dflt;
      }
      if (!v.isBoolean()) {
        throw error(field, "must be true or false, found " + v);
      }
      return v.booleanValue();
    }

    String optString(String field, String dflt) {
      JsonNode v = node(field);
      if (v == null) {
        return dflt;
      }
      if (!v.isTextual()) {
        throw error(field, "must be a string, found " + v);
      }
      return v.textValue();
    }

    /**
     * A token id: an integer; absent or null means 0 (HF's default); a list (as some configs hold)
     * its first.
     */
    int optTokenId(String field) {
      JsonNode v = node(field);
      if (v != null && v.isArray()) {
        if (v.size() == 0 || !v.get(0).isIntegralNumber() || !v.get(0).canConvertToInt()) {
          throw error(field, "must be an integer or a list of integers, found " + v);
        }
        return v.get(0).intValue();
      }
      return optInt(field, 0);
    }

    /** A nested object (ssm_cfg, initializer_cfg); absent gives an empty section. */
    Fields optObject(String field) {
      JsonNode v = node(field);
      if (v != null && !v.isObject()) {
        throw error(field, "must be an object, found " + v);
      }
      return new Fields(file, v, prefix + field + ".");
    }
  }
}
