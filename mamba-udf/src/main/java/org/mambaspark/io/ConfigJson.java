package org.mambaspark.io;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;
import org.mambaspark.model.MambaConfig;

/**
 * Reads and writes {@code config.json} for a Mamba (v1) language model.
 *
 * <p>Two dialects are read. Hugging Face's {@code MambaConfig} ({@code hidden_size}, {@code
 * num_hidden_layers}, {@code state_size}, ...; state-spaces/mamba-*-hf and anything {@code
 * save_pretrained} wrote). And the original mamba_ssm {@code MambaConfig} ({@code d_model}, {@code
 * n_layer}, {@code ssm_cfg: {d_state, d_conv, expand, dt_rank, ...}}; state-spaces/mamba-*), whose
 * vocabulary is padded up to {@code pad_vocab_size_multiple} (default 8) exactly as {@code
 * MambaLMHeadModel.__init__} does, since the embedding in those checkpoints has the padded row
 * count. A file is mamba_ssm-style when it has {@code d_model} and no {@code hidden_size}. Absent
 * optional fields take that dialect's defaults; unknown fields are ignored; a JSON null counts as
 * absent. Anything this engine does not compute (Mamba2, hybrid attention, LayerNorm, an activation
 * other than SiLU) is refused with a message, never silently run as something else.
 *
 * <p>{@link #write} always writes the Hugging Face dialect, with every field transformers' {@code
 * MambaConfig} needs, so that {@code MambaForCausalLM.from_pretrained(dir)} loads what we train.
 */
public final class ConfigJson {
  private ConfigJson() {}

  public static MambaConfig read(Path configJson) {
    JsonNode root = Json.readObjectFile(configJson, "config.json");
    Fields f = new Fields(configJson, root, "");
    String modelType = f.optString("model_type", null);
    if (modelType != null && !modelType.equals("mamba")) {
      throw new CheckpointException(
          configJson,
          "model_type '"
              + modelType
              + "': "
              + (modelType.equals("mamba2") ? "Mamba2 is not supported" : "not a Mamba model")
              + " (this engine runs Mamba1, model_type \"mamba\")");
    }
    boolean mambaSsm = !root.hasNonNull("hidden_size") && root.hasNonNull("d_model");
    MambaConfig.Builder b = mambaSsm ? readMambaSsm(f) : readHf(f);
    try {
      return b.build();
    } catch (IllegalArgumentException e) {
      throw new CheckpointException(configJson, e.getMessage(), e);
    }
  }

  /** transformers' {@code MambaConfig} field names and defaults. */
  private static MambaConfig.Builder readHf(Fields f) {
    String act = f.optString("hidden_act", "silu");
    if (!act.equals("silu")) {
      throw f.error("hidden_act", "is \"" + act + "\"; only \"silu\" is supported");
    }
    int D = f.reqInt("hidden_size");
    int ED =
        f.has("intermediate_size")
            ? f.reqPositiveInt("intermediate_size")
            : expandedWidth(f, "expand", D);
    return MambaConfig.builder()
        .vocabSize(f.reqInt("vocab_size"))
        .hiddenSize(D)
        .numLayers(f.reqInt("num_hidden_layers"))
        .intermediateSize(ED)
        .stateSize(f.optInt("state_size", 16))
        .timeStepRank(rank(f, "time_step_rank", D))
        .convKernel(f.optInt("conv_kernel", 4))
        .layerNormEpsilon(f.optFloat("layer_norm_epsilon", 1e-5f))
        .useBias(f.optBool("use_bias", false))
        .useConvBias(f.optBool("use_conv_bias", true))
        .tieWordEmbeddings(f.optBool("tie_word_embeddings", true))
        .bosTokenId(f.optTokenId("bos_token_id"))
        .eosTokenId(f.optTokenId("eos_token_id"))
        .padTokenId(f.optTokenId("pad_token_id"))
        .initializerRange(f.optFloat("initializer_range", 0.1f))
        .timeStepMin(f.optFloat("time_step_min", 0.001f))
        .timeStepMax(f.optFloat("time_step_max", 0.1f))
        .timeStepFloor(f.optFloat("time_step_floor", 1e-4f))
        .timeStepScale(f.optFloat("time_step_scale", 1.0f))
        .rescalePrenormResidual(f.optBool("rescale_prenorm_residual", false));
  }

  /**
   * mamba_ssm's {@code MambaConfig} (mamba_ssm/models/config_mamba.py) with the {@code Mamba} block
   * defaults (mamba_ssm/modules/mamba_simple.py) and {@code _init_weights} defaults
   * (initializer_range 0.02, rescale on).
   */
  private static MambaConfig.Builder readMambaSsm(Fields f) {
    Fields ssm = f.optObject("ssm_cfg");
    String layer = ssm.optString("layer", "Mamba1");
    if (!layer.equals("Mamba1")) {
      throw ssm.error(
          "layer", "is \"" + layer + "\": Mamba2 is not supported (only Mamba1 checkpoints load)");
    }
    if (!f.optBool("rms_norm", true)) {
      throw f.error("rms_norm", "is false: LayerNorm blocks are not supported (RMSNorm only)");
    }
    JsonNode attn = f.node("attn_layer_idx");
    if (attn != null && !(attn.isArray() && attn.size() == 0)) {
      throw f.error(
          "attn_layer_idx",
          "is " + f.node("attn_layer_idx") + ": hybrid attention layers are not supported");
    }
    if (f.optInt("d_intermediate", 0) != 0) {
      throw f.error(
          "d_intermediate",
          "is " + f.node("d_intermediate") + ": per-layer MLPs are not supported");
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
    return MambaConfig.builder()
        .vocabSize((int) padded)
        .hiddenSize(D)
        .numLayers(f.reqInt("n_layer"))
        .intermediateSize(expandedWidth(ssm, "expand", D))
        .stateSize(ssm.optInt("d_state", 16))
        .timeStepRank(rank(ssm, "dt_rank", D))
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

  /** Writes the Hugging Face dialect, keys sorted as transformers writes them, atomically. */
  public static void write(MambaConfig c, Path configJson) {
    Map<String, Object> m = new TreeMap<>();
    m.put("architectures", Collections.singletonList("MambaForCausalLM"));
    m.put("model_type", "mamba");
    m.put("vocab_size", c.vocabSize);
    m.put("hidden_size", c.hiddenSize);
    m.put("intermediate_size", c.intermediateSize);
    // transformers types expand as an int and derives int(expand * hidden_size) from it, but a
    // stored
    // intermediate_size overrides that (checked with transformers 5.18): so for a non-integral
    // ED/D, expand is
    // only the nearest integer, and intermediate_size carries the truth.
    m.put("expand", Math.max(1, Math.round((double) c.intermediateSize / c.hiddenSize)));
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
    m.put("time_step_scale", decimal(c.timeStepScale));
    m.put("time_step_init_scheme", "random");
    m.put("rescale_prenorm_residual", c.rescalePrenormResidual);
    m.put("hidden_act", "silu");
    m.put("residual_in_fp32", true);
    m.put("use_cache", true);
    m.put("use_mambapy", false);
    m.put("torch_dtype", "float32");
    AtomicFiles.write(configJson, Json.pretty(m));
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
