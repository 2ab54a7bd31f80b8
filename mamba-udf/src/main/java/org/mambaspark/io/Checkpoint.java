package org.mambaspark.io;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.mambaspark.model.Architecture;
import org.mambaspark.model.Backend;
import org.mambaspark.model.Backends;
import org.mambaspark.model.MambaConfig;
import org.mambaspark.model.MambaModel;
import org.mambaspark.model.MambaWeights;
import org.mambaspark.model.NamedTensor;
import org.mambaspark.ops.WeightMatrix;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A model directory in the Hugging Face layout: {@code config.json} plus {@code model.safetensors},
 * or plus {@code model.safetensors.index.json} and its shards. Loads published checkpoints
 * (state-spaces/mamba-*-hf, tiiuae/falcon-mamba-*, state-spaces/mamba2-* and the original mamba_ssm
 * ones once converted to safetensors) and saves what transformers' {@code MambaForCausalLM}, {@code
 * Mamba2ForCausalLM} or {@code FalconMambaForCausalLM.from_pretrained} loads: the tensor names are
 * each architecture's own (listed by {@link MambaWeights#parameters}).
 *
 * <p>Loading is strict, because a silently half-loaded model produces plausible garbage: every
 * tensor must be a parameter the config implies, with the shape it implies, and every parameter
 * must be present. The only tolerances are the ones real checkpoints need: {@code
 * backbone.embedding.weight} (mamba_ssm's name) for {@code backbone.embeddings.weight}; conv1d
 * weights as (ED, K) as well as (ED, 1, K); any floating dtype (F32, F16, BF16, F64, converted to
 * float); and a redundant {@code lm_head.weight} next to a tied embedding, which is ignored as
 * transformers ignores it. All failures are {@link CheckpointException}s that name the file.
 */
public final class Checkpoint {
  private static final Logger LOG = LoggerFactory.getLogger(Checkpoint.class);

  public static final String CONFIG = "config.json";
  public static final String WEIGHTS = "model.safetensors";
  public static final String INDEX = "model.safetensors.index.json";

  /** The embedding's name in original mamba_ssm checkpoints. */
  public static final String EMBEDDING_ALIAS = "backbone.embedding.weight";

  private static final Pattern LAYER_INDEX = Pattern.compile("^backbone\\.layers\\.(\\d+)\\.");

  private Checkpoint() {}

  /** Reads config.json and the weights of a checkpoint directory into new float32 weights. */
  public static MambaWeights load(Path dir) {
    long t0 = System.nanoTime();
    MambaConfig config = readConfig(dir);
    MambaWeights weights = new MambaWeights(config);
    List<SafetensorsFile> opened = new ArrayList<>();
    try {
      Map<NamedTensor, TensorSource> found =
          checkedSources(dir, config, weights.parameters(), opened);
      for (Map.Entry<NamedTensor, TensorSource> e : found.entrySet()) {
        e.getValue().file.readFloats(e.getValue().name, e.getKey().data);
      }
    } finally {
      closeAll(opened);
    }
    LOG.info(
        "loaded {} from {}: {} parameters in {} tensors, {} ms",
        config,
        dir,
        config.parameterCount(),
        weights.parameters().size(),
        (System.nanoTime() - t0) / 1_000_000);
    return weights;
  }

  /**
   * Reads a checkpoint into an inference model whose big matrices ({@link MambaWeights#isMatrix})
   * are held in {@code dtype}: each is read alone, in fp32, and converted before the next, so the
   * model never exists in fp32 as a whole (a bf16 checkpoint's matrices come back bit for bit). The
   * model's {@code weights} then hold the other parameters only; fp32 is {@link #load} itself.
   * Where the JVM's backend is a GPU, a bf16 model keeps its fp32 arrays: the GPU uploads those (as
   * bf16). int8 stays CPU-only (the GPU backend refuses it loudly and runs the model on the CPU).
   */
  public static MambaModel loadModel(Path dir, WeightMatrix.Dtype dtype) {
    if (dtype == WeightMatrix.Dtype.FP32) {
      return new MambaModel(load(dir));
    }
    if (dtype == WeightMatrix.Dtype.BF16 && Backends.get().kind() == Backend.Kind.GPU) {
      return new MambaModel(load(dir), dtype);
    }
    long t0 = System.nanoTime();
    MambaConfig config = readConfig(dir);
    MambaWeights weights = MambaWeights.withoutMatrices(config);
    Map<String, WeightMatrix> converted = new HashMap<>();
    List<SafetensorsFile> opened = new ArrayList<>();
    try {
      Map<NamedTensor, TensorSource> found =
          checkedSources(dir, config, weights.parameters(), opened);
      for (Map.Entry<NamedTensor, TensorSource> e : found.entrySet()) {
        NamedTensor p = e.getKey();
        SafetensorsFile f = e.getValue().file;
        if (MambaWeights.isMatrix(p.name)) {
          float[] fp32 = new float[Math.toIntExact(p.numel())];
          f.readFloats(e.getValue().name, fp32);
          int rows = (int) p.shape[0];
          converted.put(p.name, WeightMatrix.of(fp32, rows, fp32.length / rows, dtype));
        } else {
          f.readFloats(e.getValue().name, p.data);
        }
      }
    } finally {
      closeAll(opened);
    }
    MambaModel model = new MambaModel(weights, dtype, converted);
    LOG.info(
        "loaded {} from {}: {} parameters, matrices in {} ({} MB), {} ms",
        config,
        dir,
        config.parameterCount(),
        dtype.label(),
        model.matrixBytes() >> 20,
        (System.nanoTime() - t0) / 1_000_000);
    return model;
  }

  /**
   * Checks everything {@link #load} checks without reading the weights' data: config.json, every
   * tensor's name, dtype and shape against it, every byte range against the file's size, the shards
   * against the index. Costs the headers' bytes, whatever the model's size: the Spark driver runs
   * it before any task starts.
   *
   * @return the model's configuration
   * @throws CheckpointException naming the file and the tensor at fault
   */
  public static MambaConfig validate(Path dir) {
    MambaConfig config = readConfig(dir);
    List<SafetensorsFile> opened = new ArrayList<>();
    try {
      checkedSources(dir, config, MambaWeights.shapes(config), opened);
    } finally {
      closeAll(opened);
    }
    return config;
  }

  /** Where a parameter's data is: the file and the tensor's name in it. */
  private record TensorSource(SafetensorsFile file, String name) {}

  private static MambaConfig readConfig(Path dir) {
    if (!Files.isDirectory(dir)) {
      throw new CheckpointException(
          dir,
          Files.exists(dir)
              ? "is not a directory (a checkpoint is a directory with "
                  + CONFIG
                  + " and "
                  + WEIGHTS
                  + ")"
              : "checkpoint directory does not exist");
    }
    Path configFile = dir.resolve(CONFIG);
    if (!Files.isRegularFile(configFile)) {
      throw new CheckpointException(configFile, "missing: a checkpoint directory needs " + CONFIG);
    }
    return ConfigJson.read(configFile);
  }

  /**
   * Opens the weight files (into {@code opened}, for the caller to close) and pairs every expected
   * parameter with its tensor, each checked against the config before any is read.
   */
  private static Map<NamedTensor, TensorSource> checkedSources(
      Path dir, MambaConfig config, List<NamedTensor> expected, List<SafetensorsFile> opened) {
    Map<String, SafetensorsFile> source = new LinkedHashMap<>(); // tensor name -> its file
    Path described = openSources(dir, source, opened); // model.safetensors, or the index
    Map<NamedTensor, String> found = match(config, expected, source, described);
    Map<NamedTensor, TensorSource> out = new LinkedHashMap<>();
    for (Map.Entry<NamedTensor, String> e : found.entrySet()) {
      SafetensorsFile f = source.get(e.getValue());
      checkTensor(f, e.getValue(), e.getKey(), config);
      out.put(e.getKey(), new TensorSource(f, e.getValue()));
    }
    return out;
  }

  /**
   * Writes {@code config.json} and a single {@code model.safetensors} (F32, metadata format=pt, a
   * tied head stored once, as the embedding), each atomically. A stale sharded index in {@code dir}
   * is left alone: loaders prefer {@code model.safetensors}.
   */
  public static void save(MambaWeights w, Path dir) {
    SafetensorsWriter writer = new SafetensorsWriter().metadata("format", "pt");
    for (NamedTensor p : w.parameters()) {
      writer.add(p);
    }
    writer.write(dir.resolve(WEIGHTS));
    ConfigJson.write(w.config, dir.resolve(CONFIG));
    LOG.info("saved {} to {}", w.config, dir);
  }

  /**
   * Opens the weight files of {@code dir}, each once, and fills {@code source}. Returns the file
   * that lists the tensors: model.safetensors itself, or the index.
   */
  private static Path openSources(
      Path dir, Map<String, SafetensorsFile> source, List<SafetensorsFile> opened) {
    Path described = openSources(dir, WEIGHTS, INDEX, source, opened);
    if (described != null) {
      return described;
    }
    Path pickle = findPickle(dir);
    if (pickle != null) {
      throw new CheckpointException(
          pickle,
          "PyTorch pickle weights are not read (they can run code); this engine"
              + " needs "
              + WEIGHTS
              + ". Convert with transformers: MambaForCausalLM.from_pretrained(dir)"
              + ".save_pretrained(dir, safe_serialization=True)");
    }
    throw new CheckpointException(
        dir, "no " + WEIGHTS + " or " + INDEX + " in the checkpoint directory");
  }

  /**
   * Opens a set of tensors kept as one file ({@code single}) or as an index and its shards, each
   * file once, and fills {@code source}. Returns the file that lists the tensors, or null when
   * {@code dir} has neither.
   */
  private static Path openSources(
      Path dir,
      String single,
      String index,
      Map<String, SafetensorsFile> source,
      List<SafetensorsFile> opened) {
    Path one = dir.resolve(single);
    if (Files.exists(one)) {
      SafetensorsFile f = SafetensorsFile.open(one);
      opened.add(f);
      for (String name : f.names()) {
        source.put(name, f);
      }
      return one;
    }
    Path listed = dir.resolve(index);
    if (Files.exists(listed)) {
      openShards(dir, listed, source, opened);
      return listed;
    }
    return null;
  }

  /**
   * Where every parameter's data lies in the checkpoint {@code dir}, in {@link
   * MambaWeights#parameters()} order, after every check {@link #load} makes; reads the headers
   * only. What a process needs to read any range of the weights without loading them: a Spark
   * executor reads its own slice's bytes, the driver never holds the model.
   */
  public static List<TensorLocation> locate(Path dir) {
    MambaConfig config = readConfig(dir);
    List<NamedTensor> expected = MambaWeights.shapes(config);
    List<SafetensorsFile> opened = new ArrayList<>();
    try {
      Map<NamedTensor, TensorSource> found = checkedSources(dir, config, expected, opened);
      List<TensorLocation> out = new ArrayList<>();
      for (NamedTensor p : expected) {
        TensorSource src = found.get(p);
        out.add(TensorLocation.of(src.file, src.name));
      }
      return out;
    } finally {
      closeAll(opened);
    }
  }

  /**
   * Every tensor of a set kept in {@code dir} as one file ({@code single}) or as {@code index} and
   * its shards (the training state's layout follows the model's), by name, from the headers.
   *
   * @throws CheckpointException naming the directory when it holds neither
   */
  public static Map<String, TensorLocation> locateAll(Path dir, String single, String index) {
    Map<String, SafetensorsFile> source = new LinkedHashMap<>();
    List<SafetensorsFile> opened = new ArrayList<>();
    try {
      requireSources(dir, single, index, source, opened);
      Map<String, TensorLocation> out = new LinkedHashMap<>();
      for (Map.Entry<String, SafetensorsFile> e : source.entrySet()) {
        out.put(e.getKey(), TensorLocation.of(e.getValue(), e.getKey()));
      }
      return out;
    } finally {
      closeAll(opened);
    }
  }

  /** The {@code __metadata__} of a tensor set's single file, or of its index's first shard. */
  public static Map<String, String> metadata(Path dir, String single, String index) {
    Map<String, SafetensorsFile> source = new LinkedHashMap<>();
    List<SafetensorsFile> opened = new ArrayList<>();
    try {
      requireSources(dir, single, index, source, opened);
      return opened.get(0).metadata();
    } finally {
      closeAll(opened);
    }
  }

  private static void requireSources(
      Path dir,
      String single,
      String index,
      Map<String, SafetensorsFile> source,
      List<SafetensorsFile> opened) {
    if (openSources(dir, single, index, source, opened) == null) {
      throw new CheckpointException(dir, "no " + single + " or " + index + " in the directory");
    }
  }

  /**
   * Writes a Hugging Face index ({@code {"metadata": {"total_size": bytes}, "weight_map": {tensor:
   * file}}}) atomically: what transformers and {@link #load} read for a model in several files.
   */
  public static void writeIndex(Path file, Map<String, String> weightMap, long totalSize) {
    Map<String, Object> root = new LinkedHashMap<>();
    root.put("metadata", Map.of("total_size", totalSize));
    root.put("weight_map", weightMap);
    byte[] json = Json.compact(root);
    AtomicFiles.write(file, ch -> AtomicFiles.writeFully(ch, java.nio.ByteBuffer.wrap(json)));
  }

  /**
   * The index is {"weight_map": {tensor: shard file}}; every shard must exist and hold exactly what
   * maps to it.
   */
  private static void openShards(
      Path dir, Path index, Map<String, SafetensorsFile> source, List<SafetensorsFile> opened) {
    JsonNode root = Json.readObjectFile(index, "index");
    JsonNode weightMap = root.get("weight_map");
    if (weightMap == null || !weightMap.isObject() || weightMap.size() == 0) {
      throw new CheckpointException(
          index,
          "\"weight_map\" must be a non-empty object {tensor: shard file}, found " + weightMap);
    }
    Path base = dir.toAbsolutePath().normalize();
    Map<String, SafetensorsFile> shards = new LinkedHashMap<>(); // shard file name -> opened once
    for (Iterator<Map.Entry<String, JsonNode>> it = weightMap.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      String name = e.getKey();
      if (!e.getValue().isTextual()) {
        throw new CheckpointException(
            index,
            "weight_map entry for tensor '"
                + name
                + "' must be a file name, found "
                + e.getValue());
      }
      String shardName = e.getValue().textValue();
      SafetensorsFile shard = shards.get(shardName);
      if (shard == null) {
        Path shardPath = base.resolve(shardName).normalize();
        if (!shardPath.getParent().equals(base)) {
          throw new CheckpointException(
              index,
              "weight_map maps tensor '"
                  + name
                  + "' to '"
                  + shardName
                  + "', which is not a file name in the checkpoint directory");
        }
        if (!Files.isRegularFile(shardPath)) {
          throw new CheckpointException(
              shardPath, "shard missing (listed in " + INDEX + " for tensor '" + name + "')");
        }
        shard = SafetensorsFile.open(shardPath);
        opened.add(shard);
        shards.put(shardName, shard);
      }
      if (!shard.contains(name)) {
        throw new CheckpointException(
            shard.path(),
            "has no tensor '" + name + "', though " + INDEX + " maps it to this shard");
      }
      source.put(name, shard);
    }
    for (SafetensorsFile shard : shards.values()) {
      for (String name : shard.names()) {
        if (source.get(name) != shard) {
          throw new CheckpointException(
              shard.path(),
              "holds tensor '" + name + "', which " + INDEX + " does not" + " map to this shard");
        }
      }
    }
  }

  /**
   * Pairs every parameter with the tensor name that holds it. Unknown tensors and missing
   * parameters are errors; {@code described} is the file named in those (model.safetensors, or the
   * index).
   */
  private static Map<NamedTensor, String> match(
      MambaConfig c,
      List<NamedTensor> params,
      Map<String, SafetensorsFile> source,
      Path described) {
    Map<String, NamedTensor> expected = new LinkedHashMap<>();
    for (NamedTensor p : params) {
      expected.put(p.name, p);
    }
    Map<NamedTensor, String> found = new LinkedHashMap<>();
    for (String name : source.keySet()) {
      String canonical = name.equals(EMBEDDING_ALIAS) ? MambaWeights.EMBEDDINGS : name;
      if (canonical.equals(MambaWeights.LM_HEAD) && c.tieWordEmbeddings) {
        LOG.info(
            "{}: ignoring {}: config.json ties it to {} (as transformers does)",
            source.get(name).path(),
            name,
            MambaWeights.EMBEDDINGS);
        continue;
      }
      NamedTensor p = expected.get(canonical);
      if (p == null) {
        throw new CheckpointException(
            source.get(name).path(),
            "unknown tensor '" + name + "': not a parameter of " + c + unknownHint(c, name));
      }
      String previous = found.put(p, name);
      if (previous != null) {
        throw new CheckpointException(
            source.get(name).path(),
            "tensors '" + previous + "' and '" + name + "' are both the embedding; keep one");
      }
    }
    List<String> missing = new ArrayList<>();
    for (NamedTensor p : expected.values()) {
      if (!found.containsKey(p)) {
        missing.add(p.name);
      }
    }
    if (!missing.isEmpty()) {
      String first = missing.get(0);
      throw new CheckpointException(
          described,
          "missing tensor '"
              + first
              + "'"
              + missingHint(first)
              + (missing.size() > 1
                  ? " (and " + (missing.size() - 1) + " more: " + abbreviate(missing) + ")"
                  : ""));
    }
    return found;
  }

  private static void checkTensor(SafetensorsFile f, String name, NamedTensor p, MambaConfig c) {
    TensorInfo t = f.info(name);
    Dtype dtype = Dtype.valueOf(t.dtype());
    if (!dtype.floating) {
      throw new CheckpointException(
          f.path(),
          "tensor '"
              + name
              + "' has dtype "
              + t.dtype()
              + "; parameters must be F32, F16, BF16 or F64");
    }
    long[] actual = t.shape();
    if (Arrays.equals(actual, p.shape)) {
      return;
    }
    boolean conv2d =
        p.name.endsWith(".conv1d.weight")
            && actual.length == 2
            && actual[0] == p.shape[0]
            && actual[1] == p.shape[2]; // (ED, K) for (ED, 1, K)
    if (!conv2d) {
      throw new CheckpointException(
          f.path(),
          "tensor '"
              + name
              + "' has shape "
              + Arrays.toString(actual)
              + ", but config.json implies "
              + Arrays.toString(p.shape)
              + " ("
              + c
              + ")"
              + shapeHint(p, actual, c));
    }
  }

  /**
   * mamba_ssm's Mamba-2 with d_intermediate > 0 widens in_proj by a gated MLP of 2·d_mlp rows
   * before z: say so, since config.json may not mention it.
   */
  private static String shapeHint(NamedTensor p, long[] actual, MambaConfig c) {
    long extra = actual.length == 2 ? actual[0] - p.shape[0] : 0;
    if (c.architecture == Architecture.MAMBA2
        && p.name.endsWith(".mixer.in_proj.weight")
        && actual[1] == p.shape[1]
        && extra > 0
        && extra % 2 == 0) {
      return "; the "
          + extra
          + " extra rows are a gated MLP (d_mlp = "
          + extra / 2
          + ", mamba_ssm's d_intermediate), which is not supported";
    }
    return "";
  }

  private static String unknownHint(MambaConfig c, String name) {
    Matcher m = LAYER_INDEX.matcher(name);
    if (m.find() && (m.group(1).length() > 9 || Integer.parseInt(m.group(1)) >= c.numLayers)) {
      return "; config.json has num_hidden_layers=" + c.numLayers;
    }
    if (!c.useBias && (name.endsWith(".in_proj.bias") || name.endsWith(".out_proj.bias"))) {
      return "; config.json has use_bias=false";
    }
    if (!c.useConvBias && name.endsWith(".conv1d.bias")) {
      return "; config.json has use_conv_bias=false";
    }
    return "";
  }

  private static String missingHint(String name) {
    if (name.equals(MambaWeights.LM_HEAD)) {
      return " (config.json has tie_word_embeddings=false)";
    }
    if (name.endsWith(".in_proj.bias") || name.endsWith(".out_proj.bias")) {
      return " (config.json has use_bias=true)";
    }
    if (name.endsWith(".conv1d.bias")) {
      return " (config.json has use_conv_bias=true)";
    }
    return "";
  }

  private static String abbreviate(List<String> names) {
    int shown = Math.min(names.size() - 1, 5);
    String list = String.join(", ", names.subList(1, 1 + shown));
    return names.size() - 1 > shown ? list + ", ..." : list;
  }

  /** A PyTorch-pickle weights file in {@code dir}, or null. */
  private static Path findPickle(Path dir) {
    for (String name : new String[] {"pytorch_model.bin", "pytorch_model.bin.index.json"}) {
      if (Files.exists(dir.resolve(name))) {
        return dir.resolve(name);
      }
    }
    try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "*.{bin,pt,pth,ckpt}")) {
      for (Path p : files) {
        if (!p.getFileName().toString().equals("training_args.bin")) {
          return p;
        }
      }
    } catch (IOException e) {
      throw new CheckpointException(dir, "cannot list directory: " + e, e);
    }
    return null;
  }

  private static void closeAll(List<SafetensorsFile> files) {
    for (SafetensorsFile f : files) {
      try {
        f.close();
      } catch (CheckpointException e) {
        LOG.warn("{}", e.getMessage());
      }
    }
  }
}
