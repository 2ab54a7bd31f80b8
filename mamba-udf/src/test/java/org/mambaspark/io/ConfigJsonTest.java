package org.mambaspark.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mambaspark.io.IoTestSupport.assertMentions;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambaspark.model.Architecture;
import org.mambaspark.model.MambaConfig;

/**
 * config.json in both dialects (transformers, mamba_ssm), what we write, and every way a config is
 * refused.
 */
class ConfigJsonTest {
  @TempDir Path tmp;

  @Test
  void readsFixtureConfigs() {
    MambaConfig tiny = ConfigJson.read(IoTestSupport.fixtureModel("tiny").resolve("config.json"));
    assertEquals(128, tiny.vocabSize);
    assertEquals(32, tiny.hiddenSize);
    assertEquals(64, tiny.intermediateSize);
    assertEquals(16, tiny.stateSize);
    assertEquals(2, tiny.timeStepRank);
    assertEquals(4, tiny.convKernel);
    assertEquals(2, tiny.numLayers);
    assertEquals(1e-5f, tiny.layerNormEpsilon);
    assertTrue(tiny.tieWordEmbeddings && tiny.useConvBias && !tiny.useBias);
    MambaConfig small = ConfigJson.read(IoTestSupport.fixtureModel("small").resolve("config.json"));
    assertEquals(512, small.vocabSize);
    assertEquals(256, small.intermediateSize);
    assertEquals(8, small.timeStepRank);
    assertEquals(3, small.numLayers);
    System.out.println("fixture configs: " + tiny + ", " + small);
  }

  @Test
  void writeThenReadIsIdentityAndLoadableByTransformers() throws IOException {
    MambaConfig c =
        MambaConfig.builder()
            .vocabSize(1000)
            .hiddenSize(48)
            .intermediateSize(96)
            .stateSize(8)
            .timeStepRank(5)
            .convKernel(3)
            .numLayers(4)
            .layerNormEpsilon(1e-6f)
            .useBias(true)
            .useConvBias(false)
            .tieWordEmbeddings(false)
            .bosTokenId(1)
            .eosTokenId(2)
            .padTokenId(3)
            .initializerRange(0.02f)
            .timeStepMin(0.002f)
            .timeStepMax(0.2f)
            .timeStepFloor(2e-4f)
            .timeStepScale(0.5f)
            .rescalePrenormResidual(true)
            .build();
    Path file = tmp.resolve("config.json");
    ConfigJson.write(c, file);
    MambaConfig back = ConfigJson.read(file);
    assertEquals(c, back);
    assertEquals(c.initializerRange, back.initializerRange);
    assertEquals(c.timeStepMin, back.timeStepMin);
    assertEquals(c.timeStepMax, back.timeStepMax);
    assertEquals(c.timeStepFloor, back.timeStepFloor);
    assertEquals(c.timeStepScale, back.timeStepScale);
    assertEquals(c.rescalePrenormResidual, back.rescalePrenormResidual);

    String text = Files.readString(file, StandardCharsets.UTF_8);
    JsonNode j = Json.MAPPER.readTree(text);
    assertEquals("mamba", j.get("model_type").textValue());
    assertEquals("MambaForCausalLM", j.get("architectures").get(0).textValue());
    assertEquals("silu", j.get("hidden_act").textValue());
    assertTrue(j.get("residual_in_fp32").booleanValue());
    assertEquals(2, j.get("expand").intValue());
    assertTrue(j.get("expand").isInt(), "expand written as an integer when ED/D is one");
    assertEquals(96, j.get("intermediate_size").intValue());
    assertEquals(5, j.get("time_step_rank").intValue());
    assertEquals(
        "1.0E-6", j.get("layer_norm_epsilon").asText(), "float written as its shortest decimal");
    assertTrue(text.contains("\n  \"architectures\": [\n    \"MambaForCausalLM\"\n  ],"), text);
    assertTrue(text.endsWith("}\n"));
    try (var files = Files.list(tmp)) {
      assertEquals(1, files.count(), "no temporary file left");
    }
    System.out.println("config write/read identity: " + back + "\n" + text);
  }

  @Test
  void nonIntegralExpandKeepsIntermediateSize() throws IOException {
    MambaConfig c =
        MambaConfig.builder()
            .vocabSize(100)
            .hiddenSize(64)
            .intermediateSize(96)
            .numLayers(1)
            .build();
    Path file = tmp.resolve("config.json");
    ConfigJson.write(c, file);
    JsonNode j = Json.MAPPER.readTree(file.toFile());
    assertTrue(j.get("expand").isInt(), "transformers 5 types expand as int");
    assertEquals(
        96,
        j.get("intermediate_size").intValue(),
        "which transformers lets override int(expand * D)");
    assertEquals(96, ConfigJson.read(file).intermediateSize);
    System.out.println(
        "ED/D = 1.5: written expand " + j.get("expand") + ", intermediate_size 96, read back 96");
  }

  @Test
  void hfDefaultsAutoRankAndExpandOnly() {
    MambaConfig c =
        read(
            "{\"vocab_size\": 100, \"hidden_size\": 100, \"num_hidden_layers\": 1, \"expand\": 3,"
                + " \"time_step_rank\": \"auto\", \"pad_token_id\": null, \"eos_token_id\": [7, 8], \"some_future_field\":"
                + " {\"x\": [1]}, \"use_mambapy\": true}");
    assertEquals(300, c.intermediateSize);
    assertEquals(7, c.timeStepRank, "ceil(100 / 16)");
    assertEquals(16, c.stateSize);
    assertEquals(4, c.convKernel);
    assertEquals(0, c.padTokenId);
    assertEquals(7, c.eosTokenId);
    assertTrue(c.tieWordEmbeddings, "tie_word_embeddings defaults to true");
    System.out.println("HF defaults: " + c);
  }

  @Test
  void mambaSsmConfigPadsVocabulary() {
    // state-spaces/mamba-130m's config.json, verbatim.
    MambaConfig c =
        read(
            "{\"d_model\": 768, \"n_layer\": 24, \"vocab_size\": 50277, \"ssm_cfg\": {},"
                + " \"rms_norm\": true, \"residual_in_fp32\": true, \"fused_add_norm\": true, \"pad_vocab_size_multiple\": 8}");
    assertEquals(50280, c.vocabSize, "50277 rounded up to a multiple of 8");
    assertEquals(768, c.hiddenSize);
    assertEquals(1536, c.intermediateSize);
    assertEquals(48, c.timeStepRank);
    assertEquals(24, c.numLayers);
    assertEquals(16, c.stateSize);
    assertEquals(4, c.convKernel);
    assertTrue(c.tieWordEmbeddings && c.useConvBias && !c.useBias);
    assertEquals(0.02f, c.initializerRange, "mamba_ssm _init_weights default");
    assertEquals(MambaConfig.preset("mamba-130m"), c, "equals the mamba-130m preset");

    MambaConfig d =
        read(
            "{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 1000, \"pad_vocab_size_multiple\": 16,"
                + " \"tie_embeddings\": false, \"norm_epsilon\": 1e-6, \"ssm_cfg\": {\"d_state\": 8, \"d_conv\": 3,"
                + " \"expand\": 3, \"dt_rank\": 5, \"conv_bias\": false, \"bias\": true, \"dt_min\": 0.01, \"layer\":"
                + " \"Mamba1\"}}");
    assertEquals(1008, d.vocabSize);
    assertEquals(192, d.intermediateSize);
    assertEquals(8, d.stateSize);
    assertEquals(3, d.convKernel);
    assertEquals(5, d.timeStepRank);
    assertEquals(1e-6f, d.layerNormEpsilon);
    assertEquals(0.01f, d.timeStepMin);
    assertTrue(!d.tieWordEmbeddings && !d.useConvBias && d.useBias);
    MambaConfig e = read("{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 1000}");
    assertEquals(1000, e.vocabSize, "default multiple 8 keeps 1000");
    System.out.println("mamba_ssm configs: " + c + ", " + d);
  }

  @Test
  void readsMamba2AndFalconConfigsInBothDialects() throws IOException {
    MambaConfig m2 =
        ConfigJson.read(IoTestSupport.fixtureModel("mamba2_small").resolve("config.json"));
    assertEquals(Architecture.MAMBA2, m2.architecture);
    assertEquals(8, m2.numHeads);
    assertEquals(32, m2.headDim);
    assertEquals(2, m2.nGroups);
    assertEquals(64, m2.chunkSize);
    assertEquals(256, m2.intermediateSize);
    assertEquals(256 + 2 * 2 * 32, m2.convChannels());
    assertEquals(0f, m2.timeStepLimitMin);
    assertEquals(Float.POSITIVE_INFINITY, m2.timeStepLimitMax, "{\"__float__\": \"Infinity\"}");
    MambaConfig falcon =
        ConfigJson.read(IoTestSupport.fixtureModel("falcon_tiny").resolve("config.json"));
    assertEquals(Architecture.FALCON_MAMBA, falcon.architecture);
    assertEquals(1e-6f, falcon.mixerRmsEps);
    String hf =
        "{\"architectures\": [\"Mamba2ForCausalLM\"], \"hidden_size\": 64,"
            + " \"num_hidden_layers\": 2, \"vocab_size\": 100, \"num_heads\": 8,"
            + " \"head_dim\": 16, \"n_groups\": 2, \"state_size\": 12, \"time_step_limit\": ";
    for (String limit : new String[] {"[0.0, Infinity]", "[0.0, \"inf\"]", "[0.001, 0.5]"}) {
      MambaConfig c = read(hf + limit + "}");
      assertEquals(Architecture.MAMBA2, c.architecture, "by architectures[0]");
      assertEquals(limit.contains("0.5") ? 0.5f : Float.POSITIVE_INFINITY, c.timeStepLimitMax);
      assertTrue(!c.tieWordEmbeddings, "Mamba2Config's default: untied");
    }
    // state-spaces/mamba2-130m's config.json: mamba_ssm's Mamba2 defaults, vocabulary padded
    MambaConfig ssm =
        read(
            "{\"d_model\": 768, \"d_intermediate\": 0, \"n_layer\": 24, \"vocab_size\": 50277,"
                + " \"ssm_cfg\": {\"layer\": \"Mamba2\"}, \"attn_layer_idx\": [], \"attn_cfg\": {},"
                + " \"rms_norm\": true, \"residual_in_fp32\": true, \"fused_add_norm\": true,"
                + " \"pad_vocab_size_multiple\": 16, \"tie_embeddings\": true}");
    assertEquals(MambaConfig.preset("mamba2-130m"), ssm.toBuilder().build());
    assertEquals(50288, ssm.vocabSize);
    assertEquals(24, ssm.numHeads);
    assertEquals(128, ssm.stateSize);
    assertEquals(1, ssm.nGroups);
    // write then read, and the fields the fixtures' configs have
    for (MambaConfig c :
        new MambaConfig[] {
          m2.toBuilder().useBias(true).tieWordEmbeddings(false).timeStepLimit(0.01f, 2f).build(),
          m2,
          falcon.toBuilder().mixerRmsEps(1e-5f).build()
        }) {
      Path file = tmp.resolve("config.json");
      ConfigJson.write(c, file);
      MambaConfig back = ConfigJson.read(file);
      assertEquals(c, back);
      String fixture = c.architecture == Architecture.MAMBA2 ? "mamba2_small" : "falcon_tiny";
      java.util.Set<String> want =
          fieldNames(
              Json.MAPPER.readTree(
                  IoTestSupport.fixtureModel(fixture).resolve("config.json").toFile()));
      java.util.Set<String> got = fieldNames(Json.MAPPER.readTree(file.toFile()));
      // the dtype's key and the writer's version are transformers' own bookkeeping
      want.removeAll(java.util.List.of("dtype", "transformers_version"));
      got.remove("torch_dtype");
      assertEquals(want, got, "the fields of transformers' " + c.architecture.hfClass);
      System.out.println("written " + c + ":\n" + Files.readString(file));
    }
  }

  private static java.util.Set<String> fieldNames(JsonNode j) {
    java.util.Set<String> names = new java.util.TreeSet<>();
    j.fieldNames().forEachRemaining(names::add);
    return names;
  }

  @Test
  void refusesWhatThisEngineDoesNotRun() {
    assertMentions(
        fails(
            "{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 100,"
                + " \"ssm_cfg\": {\"layer\": \"Mamba3\"}}"),
        "config.json",
        "ssm_cfg.layer",
        "Mamba3");
    assertMentions(
        fails(
            "{\"model_type\": \"mamba2\", \"hidden_size\": 64, \"num_hidden_layers\": 2,"
                + " \"vocab_size\": 100, \"num_heads\": 4, \"head_dim\": 16}"),
        "config.json",
        "num_heads * head_dim = 4 * 16",
        "128");
    assertMentions(
        fails(
            "{\"model_type\": \"mamba2\", \"hidden_size\": 64, \"num_hidden_layers\": 2,"
                + " \"vocab_size\": 100, \"num_heads\": 8, \"head_dim\": 16, \"n_groups\": 3}"),
        "config.json",
        "n_groups = 3");
    assertMentions(
        fails(
            "{\"model_type\": \"mamba2\", \"hidden_size\": 64, \"num_hidden_layers\": 2,"
                + " \"vocab_size\": 100, \"num_heads\": 8, \"head_dim\": 16, \"rms_norm\": false}"),
        "config.json",
        "rms_norm");
    assertMentions(
        fails(
            "{\"model_type\": \"mamba2\", \"architectures\": [\"MambaForCausalLM\"],"
                + " \"hidden_size\": 64, \"num_hidden_layers\": 2, \"vocab_size\": 100}"),
        "config.json",
        "architectures",
        "model_type");
    assertMentions(
        fails(
            "{\"model_type\": \"mamba2\", \"hidden_size\": 64, \"num_hidden_layers\": 2,"
                + " \"vocab_size\": 100, \"num_heads\": 8, \"head_dim\": 16, \"n_groups\": 1,"
                + " \"time_step_limit\": [0.0]}"),
        "config.json",
        "time_step_limit");
    assertMentions(
        fails(
            "{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 100,"
                + " \"ssm_cfg\": {\"layer\": \"Mamba2\", \"headdim\": 48}}"),
        "config.json",
        "ssm_cfg.headdim");
    assertMentions(
        fails(
            "{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 100,"
                + " \"ssm_cfg\": {\"layer\": \"Mamba2\", \"headdim\": 16},"
                + " \"attn_layer_idx\": [1], \"attn_cfg\": {\"num_heads\": 4}}"),
        "config.json",
        "attn_layer_idx");
    assertMentions(
        fails(
            "{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 100,"
                + " \"ssm_cfg\": {\"layer\": \"Mamba2\", \"headdim\": 16,"
                + " \"norm_before_gate\": true}}"),
        "config.json",
        "ssm_cfg.norm_before_gate");
    assertMentions(
        fails("{\"model_type\": \"llama\", \"hidden_size\": 64}"), "config.json", "llama");
    assertMentions(
        fails(
            "{\"hidden_act\": \"gelu\", \"hidden_size\": 64, \"num_hidden_layers\": 2,"
                + " \"vocab_size\": 100}"),
        "config.json",
        "hidden_act",
        "gelu");
    assertMentions(
        fails("{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 100, \"rms_norm\": false}"),
        "config.json",
        "rms_norm");
    assertMentions(
        fails("{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 100, \"attn_layer_idx\": [1]}"),
        "config.json",
        "attn_layer_idx");
    assertMentions(
        fails("{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 100, \"d_intermediate\": 256}"),
        "config.json",
        "d_intermediate");
  }

  @Test
  void wrongTypesAndMissingFieldsNameTheField() {
    String base = "\"vocab_size\": 100, \"num_hidden_layers\": 2";
    assertMentions(
        fails("{" + base + ", \"hidden_size\": \"64\"}"),
        "config.json",
        "'hidden_size'",
        "integer");
    assertMentions(
        fails("{" + base + ", \"hidden_size\": 64.5}"), "config.json", "'hidden_size'", "integer");
    assertMentions(
        fails("{" + base + ", \"hidden_size\": 64, \"use_bias\": 1}"),
        "config.json",
        "'use_bias'",
        "true or false");
    assertMentions(
        fails("{" + base + ", \"hidden_size\": 64, \"layer_norm_epsilon\": \"1e-5\"}"),
        "config.json",
        "'layer_norm_epsilon'",
        "number");
    assertMentions(
        fails("{" + base + ", \"hidden_size\": 64, \"time_step_rank\": \"big\"}"),
        "config.json",
        "'time_step_rank'",
        "\"auto\"");
    assertMentions(
        fails("{" + base + ", \"hidden_size\": 64, \"intermediate_size\": 0}"),
        "config.json",
        "'intermediate_size'",
        "positive");
    assertMentions(
        fails("{" + base + ", \"hidden_size\": 64, \"state_size\": -1}"),
        "config.json",
        "state_size");
    assertMentions(
        fails("{\"vocab_size\": 100, \"hidden_size\": 64}"),
        "config.json",
        "'num_hidden_layers'",
        "missing");
    assertMentions(
        fails("{\"d_model\": 64, \"n_layer\": 2, \"ssm_cfg\": {\"d_state\": 16}}"),
        "config.json",
        "'vocab_size'",
        "missing");
    assertMentions(
        fails(
            "{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 100, \"ssm_cfg\": {\"d_conv\": true}}"),
        "config.json",
        "'ssm_cfg.d_conv'",
        "integer");
    assertMentions(
        fails("{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 100, \"ssm_cfg\": [1]}"),
        "config.json",
        "'ssm_cfg'",
        "object");
    assertMentions(
        fails(
            "{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 100, \"pad_vocab_size_multiple\": 0}"),
        "config.json",
        "pad_vocab_size_multiple");
    assertMentions(fails("{ not json"), "config.json", "not valid JSON");
    assertMentions(fails("[1, 2]"), "config.json", "not a JSON object");
    assertMentions(
        fails("{" + base + ", \"hidden_size\": 64, \"hidden_size\": 65}"),
        "config.json",
        "Duplicate");
    assertMentions(
        assertThrows(CheckpointException.class, () -> ConfigJson.read(tmp.resolve("none.json"))),
        "none.json",
        "does not exist");
    assertFalse(Files.exists(tmp.resolve("none.json")));
  }

  private MambaConfig read(String json) {
    return ConfigJson.read(
        IoTestSupport.write(tmp.resolve("config.json"), json.getBytes(StandardCharsets.UTF_8)));
  }

  private CheckpointException fails(String json) {
    return assertThrows(CheckpointException.class, () -> read(json), json);
  }
}
